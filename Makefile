# Every command a contributor runs. README points here.
#   make demo           build and run the embedded front on 127.0.0.1:5353 with examples/demo.toml
#   make test           everything: Rust unit/integration/system tests (fuzz corpora replayed),
#                       C harness plain, under ASan+UBSan and under valgrind
#   make test-asan      C harness built with -fsanitize=address,undefined
#   make fuzz           every cargo-fuzz target for FUZZ_SECONDS each (nightly toolchain)
#   make test-valgrind  C harness under valgrind
#   make bench          criterion benchmarks on the 1M-prefix latency table
#   make header         regenerate include/trafficmgr.h

CARGO    ?= cargo
CC       ?= gcc
PROFILE  ?= debug
LIBDIR   := $(CURDIR)/target/$(PROFILE)
CFLAGS   := -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wpedantic -Werror -g -Iinclude
CTESTS   := $(patsubst c-tests/%.c,c-tests/bin/%,$(wildcard c-tests/test_*.c))
LATENCY_1M := $(CURDIR)/target/latency-1m.csv
VALGRIND := valgrind -q --fair-sched=yes --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,possible

FUZZ_SECONDS ?= 60
FUZZ_TARGETS := wire config dlz mmdb latency_csv pdns_request

.PHONY: all deps build test test-rust test-c test-valgrind test-asan demo bench header latency-1m clean fuzz

all: build

deps:
	@sh scripts/install-deps.sh

build:
	$(CARGO) build --locked --lib --examples

# The 1M-prefix table for the performance test and the benchmark: synthetic,
# deterministic, made by the project's own generator (tools/make-latency-table.rs).
latency-1m: $(LATENCY_1M)
$(LATENCY_1M): tools/make-latency-table.rs
	@mkdir -p target
	$(CARGO) run --locked --example make-latency-table -- $@.tmp --ipv6
	mv $@.tmp $@

test: deps build latency-1m test-rust test-c test-asan test-valgrind
	@echo "make test: all passed"

test-rust:
	TM_LATENCY_1M=$(LATENCY_1M) $(CARGO) test --locked

c-tests/bin/%: c-tests/%.c c-tests/check.h c-tests/common.h include/trafficmgr.h $(LIBDIR)/libtrafficmgr.so
	@mkdir -p c-tests/bin
	$(CC) $(CFLAGS) $< -o $@ -L$(LIBDIR) -ltrafficmgr -lpthread -Wl,-rpath,$(LIBDIR)

$(LIBDIR)/libtrafficmgr.so: build

test-c: $(CTESTS)
	@for t in $(CTESTS); do $$t tests/data || exit 1; done

test-valgrind: $(CTESTS)
	@for t in $(CTESTS); do echo "valgrind $$t"; TM_ROUNDS=2 $(VALGRIND) $$t tests/data || exit 1; done

test-asan: build
	@mkdir -p c-tests/bin/asan
	@for s in c-tests/test_*.c; do \
	    b=c-tests/bin/asan/$$(basename $$s .c); \
	    $(CC) $(CFLAGS) -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer $$s -o $$b -L$(LIBDIR) -ltrafficmgr -lpthread -Wl,-rpath,$(LIBDIR) || exit 1; \
	    echo "asan+ubsan $$b"; \
	    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 $$b tests/data || exit 1; \
	done

# Fuzzing (nightly + cargo-fuzz); new inputs land in fuzz/corpus/<target>,
# crashes in fuzz/artifacts/<target>. Stable replays the corpora in make test.
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	@for t in $(FUZZ_TARGETS); do \
	    (cd fuzz && $(CARGO) +nightly fuzz run -O $$t -- -max_total_time=$(FUZZ_SECONDS) -timeout=5 -print_final_stats=1) || exit 1; \
	done

demo:
	$(CARGO) build --release --example serve
	sh examples/demo.sh

bench: latency-1m
	TM_LATENCY_1M=$(LATENCY_1M) $(CARGO) bench --bench lookup
	TM_LATENCY_1M=$(LATENCY_1M) $(CARGO) bench --bench reload

header:
	$(CARGO) build --lib

clean:
	$(CARGO) clean
	rm -rf c-tests/bin

# Every command a contributor runs. README points here.
#   make demo           build and run the embedded front on 127.0.0.1:5353 with examples/demo.toml
#   make test           everything: Rust unit/integration/system tests (fuzz corpora replayed),
#                       C harness plain, under ASan+UBSan and under valgrind
#   make test-asan      C harness built with -fsanitize=address,undefined
#   make fuzz           every cargo-fuzz target for FUZZ_SECONDS each (nightly toolchain)
#   make test-valgrind  C harness under valgrind
#   make bench          criterion benchmarks on the 1M-prefix latency table
#   make header         regenerate include/trafficmgr.h
#   make install        release build installed under PREFIX (/usr/local) into DESTDIR;
#                       the BIND module goes to BINDDLZDIR (/usr/lib/bind), the Knot DNS
#                       module to KNOTMODDIR (knotd's module dir). make uninstall
#   make bench-knot     dnsperf: Knot serving a static zone vs the same answers through
#                       mod-trafficmgr (scripts/bench-knot.sh; docs/PERFORMANCE.md)
#   make deb            target/deb/trafficmgr_<version>_<arch>.deb (dpkg-deb)
#   make test-package   installs that package on this machine, serves through the stock
#                       named, removes and purges it (root; tests/package.rs)

CARGO    ?= cargo
CC       ?= gcc
PROFILE  ?= debug
OUTDIR   := $(CURDIR)/target/$(PROFILE)
CFLAGS   := -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wpedantic -Werror -g -Iinclude
CTESTS   := $(patsubst c-tests/%.c,c-tests/bin/%,$(wildcard c-tests/test_*.c))
LATENCY_1M := $(CURDIR)/target/latency-1m.csv
VALGRIND := valgrind -q --fair-sched=yes --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,possible

FUZZ_SECONDS ?= 60
FUZZ_TARGETS := wire config dlz mmdb latency_csv pdns_request

.PHONY: all deps check-layers build release test test-rust test-c test-valgrind test-asan demo bench header latency-1m clean fuzz \
        install uninstall deb test-package knot-module bench-knot

all: build

deps:
	@sh scripts/install-deps.sh

# The library's SONAME is libtrafficmgr.so.$(ABI): the C harness links
# against it, so the SONAME symlink sits beside the build output.
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
ABI     := $(shell sed -n 's/^\#define TM_ABI_VERSION //p' include/trafficmgr.h)

build:
	$(CARGO) build --locked --lib --bins --examples
	ln -sf libtrafficmgr.so $(OUTDIR)/libtrafficmgr.so.$(ABI)
	$(MAKE) --no-print-directory knot-module

# The Knot DNS query module (mod-trafficmgr, knot/trafficmgr_knot.c): C,
# compiled against the installed Knot headers (libknot-dev), linked to the
# library beside it (RUNPATH $ORIGIN; installed, the linker's own path).
KNOT_CFLAGS := $(shell pkg-config --cflags libknot 2>/dev/null)
KNOT_LIBS   := $(shell pkg-config --libs libknot 2>/dev/null || echo -lknot)
knot-module:
	ln -sf libtrafficmgr.so $(OUTDIR)/libtrafficmgr.so.$(ABI)
	$(CC) -std=gnu11 -O2 -g -fPIC -shared -Wall -Wextra -Werror -Iinclude $(KNOT_CFLAGS) \
	    knot/trafficmgr_knot.c -o $(OUTDIR)/trafficmgr_knot.so \
	    -L$(OUTDIR) -ltrafficmgr $(KNOT_LIBS) -Wl,-rpath,'$$ORIGIN'

# The import graph goes down only (layers in the script; README "Architecture").
check-layers:
	python3 scripts/check-layers.py

# The 1M-prefix table for the performance test and the benchmark: synthetic,
# deterministic, made by the project's own generator (tools/make-latency-table.rs).
latency-1m: $(LATENCY_1M)
$(LATENCY_1M): tools/make-latency-table.rs tools/default-regions.in
	@mkdir -p target
	$(CARGO) run --locked --example make-latency-table -- $@.tmp --ipv6
	mv $@.tmp $@

test: deps check-layers build latency-1m test-rust test-c test-asan test-valgrind test-package
	@echo "make test: all passed"

test-rust:
	TM_LATENCY_1M=$(LATENCY_1M) $(CARGO) test --locked

c-tests/bin/%: c-tests/%.c c-tests/check.h c-tests/common.h include/trafficmgr.h $(OUTDIR)/libtrafficmgr.so
	@mkdir -p c-tests/bin
	$(CC) $(CFLAGS) $< -o $@ -L$(OUTDIR) -ltrafficmgr -lpthread -Wl,-rpath,$(OUTDIR)

$(OUTDIR)/libtrafficmgr.so: build

test-c: $(CTESTS)
	@for t in $(CTESTS); do $$t tests/data || exit 1; done

test-valgrind: $(CTESTS)
	@for t in $(CTESTS); do echo "valgrind $$t"; TM_ROUNDS=2 $(VALGRIND) $$t tests/data || exit 1; done

test-asan: build
	@mkdir -p c-tests/bin/asan
	@for s in c-tests/test_*.c; do \
	    b=c-tests/bin/asan/$$(basename $$s .c); \
	    $(CC) $(CFLAGS) -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer $$s -o $$b -L$(OUTDIR) -ltrafficmgr -lpthread -Wl,-rpath,$(OUTDIR) || exit 1; \
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
	$(CARGO) build --release --bin trafficmgr
	sh examples/demo.sh

bench: latency-1m
	TM_LATENCY_1M=$(LATENCY_1M) $(CARGO) bench --bench lookup
	TM_LATENCY_1M=$(LATENCY_1M) $(CARGO) bench --bench reload

header:
	$(CARGO) build --lib

clean:
	$(CARGO) clean
	rm -rf c-tests/bin

# ---- install -------------------------------------------------------------
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DATADIR    ?= $(PREFIX)/share
MANDIR     ?= $(DATADIR)/man
DOCDIR     ?= $(DATADIR)/doc/trafficmgr
# /usr installs keep their configuration in /etc, as Debian and the FHS do.
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR    ?= $(PREFIX)/lib/systemd/system
# Debian's AppArmor profile for named maps modules only from /usr/lib/bind/*.so.
BINDDLZDIR ?= /usr/lib/bind
# knotd loads every .so in its module dir at start (Debian 12: .../knot/modules-3.2).
KNOTMODDIR ?= $(or $(shell pkg-config --variable=module_instdir knotd 2>/dev/null),$(LIBDIR)/knot)
REL        := $(CURDIR)/target/release
SUBST      := sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
                  -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@VERSION@|$(VERSION)|g'

release:
	$(CARGO) build --locked --release --lib --bin trafficmgr
	ln -sf libtrafficmgr.so $(REL)/libtrafficmgr.so.$(ABI)
	$(MAKE) --no-print-directory knot-module OUTDIR=$(REL)

install: release
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR) \
	    $(DESTDIR)$(BINDDLZDIR) $(DESTDIR)$(KNOTMODDIR) $(DESTDIR)$(DATADIR)/trafficmgr/examples $(DESTDIR)$(DOCDIR) \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(SYSCONFDIR)/trafficmgr $(DESTDIR)$(SYSCONFDIR)/default
	install -m 0644 $(REL)/libtrafficmgr.so $(DESTDIR)$(LIBDIR)/libtrafficmgr.so.$(VERSION)
	ln -sf libtrafficmgr.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libtrafficmgr.so.$(ABI)
	ln -sf libtrafficmgr.so.$(ABI) $(DESTDIR)$(LIBDIR)/libtrafficmgr.so
	install -m 0644 $(REL)/libtrafficmgr.so $(DESTDIR)$(BINDDLZDIR)/libtrafficmgr.so
	install -m 0644 $(REL)/trafficmgr_knot.so $(DESTDIR)$(KNOTMODDIR)/trafficmgr.so
	install -m 0644 include/trafficmgr.h $(DESTDIR)$(INCLUDEDIR)/trafficmgr.h
	$(SUBST) packaging/trafficmgr.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/trafficmgr.pc
	install -m 0755 $(REL)/trafficmgr $(DESTDIR)$(BINDIR)/trafficmgr
	install -m 0644 share/trafficmgr/dnsdist.lua $(DESTDIR)$(DATADIR)/trafficmgr/dnsdist.lua
	install -m 0644 share/trafficmgr/pdns-lua2.lua $(DESTDIR)$(DATADIR)/trafficmgr/pdns-lua2.lua
	sed 's|/usr/share/trafficmgr/|$(DATADIR)/trafficmgr/|' examples/dnsdist/dnsdist.conf \
	    > $(DESTDIR)$(DATADIR)/trafficmgr/examples/dnsdist.conf
	install -m 0644 examples/bind/named.conf examples/powerdns/pdns.conf examples/knot/knot.conf examples/demo.toml \
	    examples/demo-latency.csv $(DESTDIR)$(DATADIR)/trafficmgr/examples/
	for u in trafficmgr-serve trafficmgr-pdns-remote; do \
	    $(SUBST) packaging/systemd/$$u.service.in > $(DESTDIR)$(UNITDIR)/$$u.service || exit 1; \
	done
	install -m 0644 man/trafficmgr-serve.8 man/trafficmgr-pdns-remote.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 man/trafficmgr.toml.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 man/trafficmgr.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 README.md CHANGELOG.md docs/*.md $(DESTDIR)$(DOCDIR)/
	@# The configuration is the operator's: never overwritten.
	[ -e $(DESTDIR)$(SYSCONFDIR)/trafficmgr/trafficmgr.toml ] || \
	    install -m 0644 packaging/trafficmgr.toml $(DESTDIR)$(SYSCONFDIR)/trafficmgr/trafficmgr.toml
	[ -e $(DESTDIR)$(SYSCONFDIR)/default/trafficmgr ] || \
	    install -m 0644 packaging/debian/default $(DESTDIR)$(SYSCONFDIR)/default/trafficmgr
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then ldconfig; fi

# Removes what install put there, but the configuration in SYSCONFDIR.
uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libtrafficmgr.so $(DESTDIR)$(LIBDIR)/libtrafficmgr.so.$(ABI) \
	    $(DESTDIR)$(LIBDIR)/libtrafficmgr.so.$(VERSION) $(DESTDIR)$(LIBDIR)/pkgconfig/trafficmgr.pc \
	    $(DESTDIR)$(BINDDLZDIR)/libtrafficmgr.so $(DESTDIR)$(KNOTMODDIR)/trafficmgr.so $(DESTDIR)$(INCLUDEDIR)/trafficmgr.h \
	    $(DESTDIR)$(BINDIR)/trafficmgr \
	    $(DESTDIR)$(UNITDIR)/trafficmgr-serve.service $(DESTDIR)$(UNITDIR)/trafficmgr-pdns-remote.service \
	    $(DESTDIR)$(MANDIR)/man8/trafficmgr-serve.8 $(DESTDIR)$(MANDIR)/man8/trafficmgr-pdns-remote.8 \
	    $(DESTDIR)$(MANDIR)/man5/trafficmgr.toml.5 $(DESTDIR)$(MANDIR)/man1/trafficmgr.1
	rm -rf $(DESTDIR)$(DATADIR)/trafficmgr $(DESTDIR)$(DOCDIR)

# ---- Debian package --------------------------------------------------------
deb: release
	sh scripts/make-deb.sh

# Installs the package on this machine, checks it serves through Debian's own
# named (as the bind user, stock /etc/bind tree, a loopback port), removes and
# purges it. Root only (skipped otherwise, saying so); it restores the machine.
# Knot serving a static zone vs the same answers through mod-trafficmgr.
bench-knot: release
	sh scripts/bench-knot.sh

test-package: deb
	TM_DEB=$$(ls -t target/deb/trafficmgr_*.deb | head -n 1) $(CARGO) test --locked --test package -- --nocapture

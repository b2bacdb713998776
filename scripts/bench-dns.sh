#!/bin/sh
# Every host path next to its peer or its ceiling, in ONE run, on ONE query
# file (200 names, each a `subnet` profile of 3 endpoints; dnsperf's
# 127.0.0.1 matches the 127.0.0.0/8 endpoint), dnsperf -c 8:
#
#   front     trafficmgr serve (the embedded front, default threads)
#   gdnsd     gdnsd 3.8's geoip plugin, a `nets` map giving the same answers
#   dd-tm     dnsdist + trafficmgr (share/trafficmgr/dnsdist.lua, Lua FFI)
#   dd-ffi    dnsdist + a trivial LuaFFIPerThreadAction writing a fixed reply
#             through the same dnsdist calls (the FFI path's own ceiling)
#   dd-native dnsdist answering natively (SpoofAction)
#   dlz-tm    named + trafficmgr's DLZ module
#   dlz-min   named + a minimal C DLZ module (one hard-coded A record)
#
# The servers run side by side; each round runs dnsperf against each of them
# in turn (interleaved, so a slow spell of this shared machine hits every row
# alike), and the table gives each row's median over the rounds and the
# ratio to its peer. It first checks that every server gives the same answer.
# Needs dnsperf, gdnsd, dnsdist, bind9 and a C compiler (Debian); as root it
# installs the missing ones.
#
# Usage: sh scripts/bench-dns.sh [seconds per run] [rounds]   (default 10 3)
# Env: ROWS="front gdnsd ..." runs only those rows; PERF=1 profiles each
# server (perf record) during its first run and prints where its CPU went; FRONT_ARGS adds options
# to `trafficmgr serve`; PORT=N moves the ports (default 15600..15606).
set -eu
cd "$(dirname "$0")/.."
SECS="${1:-10}"
ROUNDS="${2:-3}"
ROWS="${ROWS:-front gdnsd dd-tm dd-ffi dd-native dlz-tm dlz-min}"
PORT="${PORT:-15600}"
sh scripts/install-deps.sh dnsperf
if ! command -v gdnsd >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then apt-get install -y gdnsd >/dev/null; else echo "bench-dns: install gdnsd" >&2; exit 1; fi
fi
cargo build --release --lib --bin trafficmgr >/dev/null 2>&1
W=$(mktemp -d)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; sleep 1; if [ -n "${KEEP:-}" ]; then echo "kept $W"; else rm -rf "$W"; fi; }
trap cleanup EXIT INT TERM
N=200

# The trafficmgr config: N subnet profiles of 3 endpoints.
{
    printf '[[zone]]\nname = "tm.example"\nnameservers = ["ns1.tm.example", "ns2.tm.example"]\nhostmaster = "hostmaster.tm.example"\nttl = 300\n'
    i=0
    while [ $i -lt $N ]; do
        printf '\n[[profile]]\nname = "n%d"\nrouting = "subnet"\nttl = 60\n' $i
        printf '[[profile.endpoint]]\nname = "a"\naddresses = ["192.0.2.1"]\nsubnets = ["10.0.0.0/8"]\n'
        printf '[[profile.endpoint]]\nname = "b"\naddresses = ["192.0.2.2"]\nsubnets = ["127.0.0.0/8"]\n'
        printf '[[profile.endpoint]]\nname = "c"\naddresses = ["192.0.2.3"]\n'
        i=$((i + 1))
    done
} > "$W/tm.toml"
i=0
while [ $i -lt $N ]; do echo "n$i.tm.example A"; i=$((i + 1)); done > "$W/queries"

port() { # row -> port
    case "$1" in
        front) echo $((PORT + 0)) ;; gdnsd) echo $((PORT + 1)) ;; dd-tm) echo $((PORT + 2)) ;;
        dd-ffi) echo $((PORT + 3)) ;; dd-native) echo $((PORT + 4)) ;; dlz-tm) echo $((PORT + 5)) ;;
        dlz-min) echo $((PORT + 6)) ;;
    esac
}
has() { case " $ROWS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
CORES=$(nproc)

# gdnsd: the geoip plugin with a nets-only map: 10/8 -> a, 127/8 -> b,
# anything else -> c (the map's first datacenter), one UDP thread per core
# (as the front's default).
mkdir -p "$W/gdnsd/zones"
cat > "$W/gdnsd/config" <<EOF
options => { listen => [ 127.0.0.1 ], dns_port => $(port gdnsd), run_dir => $W/gdnsd/run,
  state_dir => $W/gdnsd/state, udp_threads => $CORES, tcp_threads => 1 }
plugins => { geoip => {
  maps => { m => { datacenters => [c, a, b], nets => { 10.0.0.0/8 => [a], 127.0.0.0/8 => [b] } } }
  resources => { r => { map => m, dcmap => { a => 192.0.2.1, b => 192.0.2.2, c => 192.0.2.3 } } }
} }
EOF
{
    printf '$TTL 300\n@ SOA ns1 hostmaster 1 900 300 2419200 300\n@ NS ns1\n@ NS ns2\n'
    i=0
    while [ $i -lt $N ]; do echo "n$i 60 DYNA geoip!r"; i=$((i + 1)); done
} > "$W/gdnsd/zones/tm.example"

# dnsdist: the same listener in all three (the example config's one UDP
# listener); only the action differs.
ABI=$(sed -n 's/^#define TM_ABI_VERSION //p' include/trafficmgr.h)
sed -e "s|local TM_ABI = 1|local TM_ABI = $ABI|" share/trafficmgr/dnsdist.lua > "$W/dnsdist.lua"
dd_conf() { # row body
    printf 'setLocal("127.0.0.1:%s")\nsetSecurityPollSuffix("")\n%s\n' "$(port "$1")" "$2" > "$W/$1.conf"
}
dd_conf dd-tm "dofile(\"$W/dnsdist.lua\")
trafficmgr{ lib = \"$PWD/target/release/libtrafficmgr.so\", config = \"$W/tm.toml\", zones = {\"tm.example.\"} }"
# The ceiling of the FFI path: what the glue does per query (get_len,
# set_size, get_header, the client address, TCP or not, and the same split
# that lets LuaJIT compile it), but the answer is a fixed A record written
# after the question (any OPT record dropped).
dd_conf dd-ffi "local zones = newSuffixMatchNode(); zones:add(newDNSName('tm.example.'))
addAction(SuffixMatchNodeRule(zones), LuaFFIPerThreadAction([[
local ffi = require('ffi')
ffi.cdef[=[
typedef struct dnsdist_ffi_dnsquestion_t dnsdist_ffi_dnsquestion_t;
void *dnsdist_ffi_dnsquestion_get_header(const dnsdist_ffi_dnsquestion_t *dq);
uint16_t dnsdist_ffi_dnsquestion_get_len(const dnsdist_ffi_dnsquestion_t *dq);
bool dnsdist_ffi_dnsquestion_set_size(dnsdist_ffi_dnsquestion_t *dq, size_t size);
bool dnsdist_ffi_dnsquestion_get_tcp(const dnsdist_ffi_dnsquestion_t *dq);
void dnsdist_ffi_dnsquestion_get_remoteaddr(const dnsdist_ffi_dnsquestion_t *dq, const void **addr, size_t *size);
void dnsdist_ffi_dnsquestion_get_qname_raw(const dnsdist_ffi_dnsquestion_t *dq, const char **qname, size_t *qnameSize);
]=]
local C = ffi.C
local addr = ffi.new('const void *[1]')
local alen = ffi.new('size_t[1]')
local qname = ffi.new('const char *[1]')
local qnlen = ffi.new('size_t[1]')
-- name pointer, A, IN, TTL 60, 4 octets, 192.0.2.2
local RR = '\\192\\012\\000\\001\\000\\001\\000\\000\\000\\060\\000\\004\\192\\000\\002\\002'
local NONE, MODIFY = DNSAction.None, DNSAction.HeaderModify
local DQ = ffi.typeof('dnsdist_ffi_dnsquestion_t *')
local U8 = ffi.typeof('uint8_t *')
local function answer(dq)
  local qlen = C.dnsdist_ffi_dnsquestion_get_len(dq)
  if not C.dnsdist_ffi_dnsquestion_set_size(dq, 4096) then return NONE end
  local buf = ffi.cast(U8, C.dnsdist_ffi_dnsquestion_get_header(dq))
  C.dnsdist_ffi_dnsquestion_get_remoteaddr(dq, addr, alen)
  local tcp = C.dnsdist_ffi_dnsquestion_get_tcp(dq)
  -- the end of the question (any OPT record after it is dropped), from
  -- dnsdist's parsed name: no loop, so the whole action is one trace
  C.dnsdist_ffi_dnsquestion_get_qname_raw(dq, qname, qnlen)
  local e = 12 + tonumber(qnlen[0]) + 4
  if e > qlen then return NONE end
  buf[2] = bit.bor(buf[2], 0x84)
  buf[3] = 0
  buf[6] = 0
  buf[7] = 1
  buf[10] = 0
  buf[11] = 0
  ffi.copy(buf + e, RR, 16)
  C.dnsdist_ffi_dnsquestion_set_size(dq, e + 16)
  return MODIFY
end
-- as the glue does: dq converted outside the JIT, the rest compiled
local function entry(dq) return answer(ffi.cast(DQ, dq)) end
jit.off(entry)
return entry
]]))"
dd_conf dd-native "local zones = newSuffixMatchNode(); zones:add(newDNSName('tm.example.'))
addAction(SuffixMatchNodeRule(zones), SpoofAction({'192.0.2.2'}, {ttl = 60, aa = true}))"

# named: trafficmgr's DLZ module, and a minimal C module answering one A
# record for every name of the zone (and SOA/NS at the apex).
cat > "$W/dlzmin.c" <<'EOF'
#include <stdarg.h>
#include <string.h>
typedef int (*putrr_t)(void *lookup, const char *type, unsigned int ttl, const char *data);
static putrr_t putrr;
int dlz_version(unsigned int *flags) { *flags |= 1; return 3; }
int dlz_create(const char *dlzname, unsigned int argc, char *argv[], void **dbdata, ...) {
    va_list ap; const char *name;
    (void)dlzname; (void)argc; (void)argv;
    va_start(ap, dbdata);
    while ((name = va_arg(ap, const char *)) != NULL) {
        void *f = va_arg(ap, void *);
        if (strcmp(name, "putrr") == 0) putrr = (putrr_t)f;
    }
    va_end(ap);
    *dbdata = &putrr;
    return 0;
}
void dlz_destroy(void *dbdata) { (void)dbdata; }
int dlz_findzonedb(void *dbdata, const char *name, void *m, void *ci) {
    (void)dbdata; (void)m; (void)ci;
    return strcmp(name, "tm.example") == 0 ? 0 : 23;
}
int dlz_lookup(const char *zone, const char *name, void *dbdata, void *lookup, void *m, void *ci) {
    (void)zone; (void)dbdata; (void)m; (void)ci;
    if (strcmp(name, "@") == 0) {
        putrr(lookup, "SOA", 300, "ns1.tm.example. hostmaster.tm.example. 1 900 300 2419200 300");
        putrr(lookup, "NS", 300, "ns1.tm.example.");
        putrr(lookup, "NS", 300, "ns2.tm.example.");
        return 0;
    }
    if (name[0] != 'n') return 23;
    return putrr(lookup, "A", 60, "192.0.2.2");
}
EOF
cc -O2 -shared -fPIC -o "$W/dlzmin.so" "$W/dlzmin.c"
U=""
[ "$(id -u)" -eq 0 ] && U="-u root"
named_conf() { # row dlz-database
    mkdir -p "$W/$1"
    cat > "$W/$1/named.conf" <<CONF
options { directory "$W/$1"; listen-on port $(port "$1") { 127.0.0.1; }; listen-on-v6 { none; }; recursion no;
  minimal-responses yes; pid-file "$W/$1/named.pid"; session-keyfile "$W/$1/s.key"; managed-keys-directory "$W/$1"; };
controls { };
dlz "tm" { database "dlopen $2"; };
CONF
}
named_conf dlz-tm "$PWD/target/release/libtrafficmgr.so $W/tm.toml"
named_conf dlz-min "$W/dlzmin.so"

start() { # row
    case "$1" in
        # shellcheck disable=SC2086
        front) target/release/trafficmgr serve --config "$W/tm.toml" --listen "127.0.0.1:$(port front)" ${FRONT_ARGS:-} 2>"$W/front.log" & ;;
        gdnsd) gdnsd -c "$W/gdnsd" start >"$W/gdnsd.log" 2>&1 & ;;
        dd-*) dnsdist --supervised --disable-syslog -C "$W/$1.conf" >"$W/$1.log" 2>&1 & ;;
        # shellcheck disable=SC2086
        dlz-*) named -g $U -c "$W/$1/named.conf" -n "$CORES" >"$W/$1.log" 2>&1 & ;;
    esac
    PIDS="$PIDS $!"
    echo $! > "$W/pid.$1"
}
for r in $ROWS; do start "$r"; done
sleep 3
# The same answer everywhere (the 127.0.0.0/8 endpoint's address).
for r in $ROWS; do
    a=$(dig @127.0.0.1 -p "$(port "$r")" n7.tm.example A +short +tries=3 +time=2)
    if [ "$a" != "192.0.2.2" ]; then
        echo "bench-dns: $r answers '$a', not 192.0.2.2 (log: $(tail -3 "$W/$r.log" 2>/dev/null))" >&2
        exit 1
    fi
done
if has front && has gdnsd; then
    for s in 10.9.0.0/16 192.0.2.0/24; do
        f=$(dig @127.0.0.1 -p "$(port front)" n7.tm.example A +short +subnet=$s)
        g=$(dig @127.0.0.1 -p "$(port gdnsd)" n7.tm.example A +short +subnet=$s)
        [ "$f" = "$g" ] || { echo "bench-dns: front answers $f, gdnsd $g for ECS $s" >&2; exit 1; }
    done
fi

echo "dnsperf -l $SECS -c 8 -q 200, $N names (subnet profiles, 3 endpoints), $ROUNDS rounds interleaved, $CORES cores shared with dnsperf"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
round=1
while [ "$round" -le "$ROUNDS" ]; do
    for r in $ROWS; do
        if [ -n "${PERF:-}" ] && [ "$round" -eq 1 ]; then
            perf record -q -e cpu-clock -g -p "$(cat "$W/pid.$r")" -o "$W/perf.data.$r" -- sleep $((SECS - 1)) >/dev/null 2>&1 &
            PERF_PID=$!
        fi
        dnsperf -s 127.0.0.1 -p "$(port "$r")" -d "$W/queries" -l "$SECS" -c 8 -q 200 > "$W/perf" 2>&1 || true
        [ -z "${PERF_PID:-}" ] || wait "$PERF_PID"
        PERF_PID=""
        q=$(awk '/Queries per second/ {print $4}' "$W/perf")
        l=$(awk '/Queries lost/ {print $3}' "$W/perf")
        echo "$r ${q:-0} ${l:-?}" >> "$W/results"
    done
    round=$((round + 1))
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "${PERF:-}" ]; then
    for r in $ROWS; do
        echo "== $r: where the server's CPU goes (perf, round 1)"
        perf report -q -i "$W/perf.data.$r" --no-children --sort dso -g none 2>/dev/null | head -8
        perf report -q -i "$W/perf.data.$r" --no-children --sort sym -g none 2>/dev/null | head -${PERF_SYMS:-12}
    done
fi
python3 - "$W/results" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    r, q, l = line.split()
    rows.setdefault(r, []).append((float(q), l))
names = {
    "front": "embedded front (trafficmgr serve)",
    "gdnsd": "gdnsd 3.8 geoip plugin",
    "dd-tm": "dnsdist + trafficmgr (Lua FFI)",
    "dd-ffi": "dnsdist, trivial FFI action",
    "dd-native": "dnsdist, native SpoofAction",
    "dlz-tm": "named + trafficmgr DLZ",
    "dlz-min": "named + minimal C DLZ module",
}
med = {r: statistics.median(q for q, _ in v) for r, v in rows.items()}
print("| path | median qps | rounds (qps, lost) |")
print("| --- | --- | --- |")
for r in names:
    if r in rows:
        runs = ", ".join("%.1fk/%s" % (q / 1000, l) for q, l in rows[r])
        print("| %s | %.1fk | %s |" % (names[r], med[r] / 1000, runs))
def ratio(a, b, what):
    if a in med and b in med and med[b] > 0:
        pair = [qa / qb for (qa, _), (qb, _) in zip(rows[a], rows[b]) if qb > 0]
        print("%-44s %.2f  (per round: %s)" % (what, med[a] / med[b], ", ".join("%.2f" % p for p in pair)))
ratio("front", "gdnsd", "front / gdnsd geoip (goal >= 1.2):")
ratio("dd-tm", "dd-ffi", "dnsdist+trafficmgr / trivial FFI (>= 0.95):")
ratio("dd-tm", "dd-native", "dnsdist+trafficmgr / native:")
ratio("dd-ffi", "dd-native", "trivial FFI / native:")
ratio("dlz-tm", "dlz-min", "named DLZ trafficmgr / minimal C module:")
EOF

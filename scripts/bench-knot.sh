#!/bin/sh
# Knot DNS throughput with dnsperf: the same answers (tests/data/basic.toml's
# names) served by
#   1. knotd from a static zone file, and
#   2. knotd through mod-trafficmgr (release build of the library and module),
# both with the same server settings (2 UDP workers, edns-client-subnet on),
# measured alternately, ROUNDS times each. Prints each run's qps, the medians
# and the module/static ratio (goal: >= 0.9). Needs knot, dnsperf (Debian).
# Usage: sh scripts/bench-knot.sh [seconds] [rounds]   (default 10 3)
set -eu
cd "$(dirname "$0")/.."
SECS="${1:-10}"
ROUNDS="${2:-3}"
sh scripts/install-deps.sh dnsperf
cargo build --locked --release --lib >/dev/null 2>&1
make --no-print-directory -s knot-module OUTDIR="$PWD/target/release" >/dev/null
W=$(mktemp -d)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; sleep 1; rm -rf "$W"; }
trap cleanup EXIT INT TERM
sed "s|\"latency.csv\"|\"$PWD/tests/data/latency.csv\"|" tests/data/basic.toml > "$W/tm.toml"
APEX='$TTL 300
@ IN SOA ns1.tm.example. hostmaster.tm.example. 1 900 300 2419200 300
@ IN NS ns1.tm.example.
@ IN NS ns2.tm.example.'
printf '%s\n' "$APEX" > "$W/module.zone"
# What the module answers from 127.0.0.1, as static records.
cat > "$W/static.zone" <<ZONE
$APEX
prio 30 IN CNAME primary.contoso.example.
perf 60 IN CNAME eu.contoso.example.
addrs 60 IN A 192.0.2.10
weighted 20 IN A 192.0.2.1
weighted 20 IN AAAA 2001:db8::1
deep.sub 60 IN AAAA 2001:db8::a
ZONE
printf 'prio.tm.example A\nperf.tm.example A\naddrs.tm.example A\nweighted.tm.example A\ndeep.sub.tm.example AAAA\nnope.tm.example A\n' > "$W/queries"
conf() { # name port zonefile [module line]
    mkdir -p "$W/$1"
    cat > "$W/$1/knot.conf" <<CONF
server:
    rundir: $W/$1
    listen: 127.0.0.1@$2
    edns-client-subnet: on
    udp-workers: 2
    tcp-workers: 1
    background-workers: 1
database:
    storage: $W/$1
log:
  - target: stderr
    any: warning
module:
  - id: mod-trafficmgr
    file: $PWD/target/release/trafficmgr_knot.so
mod-trafficmgr:
  - id: tm
    config: $W/tm.toml
template:
  - id: default
    storage: $W
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: tm.example
    file: $W/$3
$4
CONF
}
conf static 15511 static.zone ""
conf module 15512 module.zone "    module: mod-trafficmgr/tm"
knotd -c "$W/static/knot.conf" >"$W/static.log" 2>&1 & PIDS="$PIDS $!"
knotd -c "$W/module/knot.conf" >"$W/module.log" 2>&1 & PIDS="$PIDS $!"
sleep 2
for p in 15511 15512; do
    a=$(dig @127.0.0.1 -p $p prio.tm.example A +short)
    [ "$a" = "primary.contoso.example." ] || { echo "knotd on $p does not answer: $a" >&2; cat "$W"/*.log >&2; exit 1; }
done
# The two servers give the same answers for the deterministic names.
for q in "prio.tm.example A" "addrs.tm.example A" "deep.sub.tm.example AAAA" "nope.tm.example A"; do
    # shellcheck disable=SC2086
    s=$(dig @127.0.0.1 -p 15511 $q +noall +answer +authority +comments | grep -E 'status|IN')
    # shellcheck disable=SC2086
    m=$(dig @127.0.0.1 -p 15512 $q +noall +answer +authority +comments | grep -E 'status|IN')
    [ "$(echo "$s" | sed 's/id: [0-9]*//')" = "$(echo "$m" | sed 's/id: [0-9]*//')" ] || { echo "answers differ for $q:\n$s\n$m" >&2; exit 1; }
done
run() { # port -> prints qps; keeps dnsperf's summary in $W/perf.<port>
    dnsperf -s 127.0.0.1 -p "$1" -d "$W/queries" -l "$SECS" -c 8 -q 200 > "$W/perf.$1" 2>&1 || true
    awk '/Queries per second/ {print $4}' "$W/perf.$1"
}
lost() { awk '/Queries lost/ {print $3}' "$W/perf.$1"; }
echo "dnsperf -l $SECS -c 8 -q 200, 6 names (CNAME, A, AAAA, NXDOMAIN), knotd 2 UDP workers, 2 cores shared with dnsperf"
S=""; M=""
i=0
while [ "$i" -lt "$ROUNDS" ]; do
    s=$(run 15511); ls=$(lost 15511); m=$(run 15512); lm=$(lost 15512)
    printf 'round %d: static zone %10s qps (lost %s)   mod-trafficmgr %10s qps (lost %s)\n' "$((i + 1))" "$s" "$ls" "$m" "$lm"
    S="$S $s"; M="$M $m"; i=$((i + 1))
done
python3 - "$S" "$M" <<'PY'
import statistics, sys
s = [float(x) for x in sys.argv[1].split()]
m = [float(x) for x in sys.argv[2].split()]
ms, mm = statistics.median(s), statistics.median(m)
print("median: knotd static zone %.0f qps, knotd + mod-trafficmgr %.0f qps; ratio module / static: %.2f" % (ms, mm, mm / ms))
PY

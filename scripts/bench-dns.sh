#!/bin/sh
# DNS throughput with dnsperf, in one run and on one query file:
#   1. named + our DLZ module (release build) serving tests/data/basic.toml
#   2. named serving the same answers from a static zone file
#   3. the embedded front (trafficmgr serve)
#   4. dnsdist + trafficmgr through its Lua FFI (examples/dnsdist/dnsdist.conf)
# Prints qps of each and the DLZ/static ratio. Needs bind9, dnsperf (Debian).
# Usage: sh scripts/bench-dns.sh [seconds]   (default 10)
set -eu
cd "$(dirname "$0")/.."
SECS="${1:-10}"
sh scripts/install-deps.sh dnsperf
cargo build --release --lib --bin trafficmgr >/dev/null 2>&1
W=$(mktemp -d)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; sleep 1; rm -rf "$W"; }
trap cleanup EXIT INT TERM
sed "s|\"latency.csv\"|\"$PWD/tests/data/latency.csv\"|" tests/data/basic.toml > "$W/tm.toml"
cat > "$W/tm.zone" <<'ZONE'
$TTL 300
@ IN SOA ns1.tm.example. hostmaster.tm.example. 1 900 300 2419200 300
@ IN NS ns1.tm.example.
@ IN NS ns2.tm.example.
prio 30 IN CNAME primary.contoso.example.
perf 60 IN CNAME eu.contoso.example.
addrs 60 IN A 192.0.2.10
weighted 20 IN A 192.0.2.1
weighted 20 IN AAAA 2001:db8::1
deep.sub 60 IN AAAA 2001:db8::a
ZONE
printf 'prio.tm.example A\nperf.tm.example A\naddrs.tm.example A\nweighted.tm.example A\ndeep.sub.tm.example AAAA\nnope.tm.example A\n' > "$W/queries"
U=""
[ "$(id -u)" -eq 0 ] && U="-u root"
conf() { # name port body
    mkdir -p "$W/$1"
    cat > "$W/$1/named.conf" <<CONF
options { directory "$W/$1"; listen-on port $2 { 127.0.0.1; }; listen-on-v6 { none; }; recursion no;
  minimal-responses yes; pid-file "$W/$1/named.pid"; session-keyfile "$W/$1/s.key"; managed-keys-directory "$W/$1"; };
controls { };
$3
CONF
}
conf dlz 15501 "dlz \"tm\" { database \"dlopen $PWD/target/release/libtrafficmgr.so $W/tm.toml\"; };"
conf static 15502 "zone \"tm.example\" { type primary; file \"$W/tm.zone\"; };"
run() { # port -> prints qps; keeps dnsperf's summary in $W/perf.<port>
    dnsperf -s 127.0.0.1 -p "$1" -d "$W/queries" -l "$SECS" -c 4 -q 200 > "$W/perf.$1" 2>&1 || true
    awk '/Queries per second/ {print $4}' "$W/perf.$1"
}
lost() { awk '/Queries lost/ {print $3}' "$W/perf.$1"; }
# shellcheck disable=SC2086
named -g $U -c "$W/dlz/named.conf" -n 2 >"$W/dlz.log" 2>&1 & PIDS="$PIDS $!"
# shellcheck disable=SC2086
named -g $U -c "$W/static/named.conf" -n 2 >"$W/static.log" 2>&1 & PIDS="$PIDS $!"
target/release/trafficmgr serve --config "$W/tm.toml" --listen 127.0.0.1:15503 --threads 2 2>"$W/serve.log" & PIDS="$PIDS $!"
ABI=$(sed -n 's/^#define TM_ABI_VERSION //p' include/trafficmgr.h)
sed -e "s|local TM_ABI = 1|local TM_ABI = $ABI|" share/trafficmgr/dnsdist.lua > "$W/dnsdist.lua"
sed -e "s|127.0.0.1:5300|127.0.0.1:15504|" -e "s|127.0.0.1:5301|127.0.0.1:15502|" \
    -e "s|/usr/share/trafficmgr/dnsdist.lua|$W/dnsdist.lua|" \
    -e "s|^trafficmgr{|trafficmgr{ lib = \"$PWD/target/release/libtrafficmgr.so\",|" \
    -e "s|/etc/trafficmgr/trafficmgr.toml|$W/tm.toml|" \
    -e "s|\"trafficmanager.example.\"|\"tm.example.\"|" examples/dnsdist/dnsdist.conf > "$W/dnsdist.conf"
dnsdist --supervised --disable-syslog -C "$W/dnsdist.conf" >"$W/dnsdist.log" 2>&1 & PIDS="$PIDS $!"
sleep 2
for p in 15501 15502 15503 15504; do dig @127.0.0.1 -p $p prio.tm.example A +short >/dev/null; done
echo "dnsperf -l $SECS -c 4 -q 200, 6 names (CNAME, A, AAAA, NXDOMAIN), 2 named workers (-n 2), 2 cores shared with dnsperf"
DLZ=$(run 15501); STATIC=$(run 15502); FRONT=$(run 15503); DIST=$(run 15504)
printf '%-32s %10s qps  (lost %s)\n' "named + trafficmgr DLZ" "$DLZ" "$(lost 15501)"
printf '%-32s %10s qps  (lost %s)\n' "named, static zone file" "$STATIC" "$(lost 15502)"
printf '%-32s %10s qps  (lost %s)\n' "embedded front (serve)" "$FRONT" "$(lost 15503)"
printf '%-32s %10s qps  (lost %s)\n' "dnsdist + trafficmgr (Lua FFI)" "$DIST" "$(lost 15504)"
python3 -c "print('ratio DLZ / static zone: %.2f; dnsdist / DLZ: %.2f; front / DLZ: %.2f' % ($DLZ / $STATIC, $DIST / $DLZ, $FRONT / $DLZ))"

#!/bin/sh
# PowerDNS throughput with dnsperf, in one run and on one query file:
#   1. pdns_server + the trafficmgr remote-backend adapter
#   2. pdns_server with LUA records (ifurlup health-checked failover, the
#      peer PowerDNS users build by hand) from a bind-backend zone
#   3. pdns_server with the same answers from a static bind-backend zone
# All with PowerDNS's caches off, as per-client answers require.
# Usage: sh scripts/bench-pdns.sh [seconds]   (default 10)
set -eu
cd "$(dirname "$0")/.."
SECS="${1:-10}"
sh scripts/install-deps.sh dnsperf
cargo build --release --bin trafficmgr >/dev/null 2>&1
W=$(mktemp -d)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; sleep 1; rm -rf "$W"; }
trap cleanup EXIT INT TERM
mkdir -p "$W/www" && echo ok > "$W/www/index.html"
python3 -m http.server 18090 --bind 127.0.0.1 -d "$W/www" >/dev/null 2>&1 & PIDS="$PIDS $!"
cat > "$W/tm.toml" <<TOML
[[zone]]
name = "tm.example"
nameservers = ["ns1.tm.example"]
[[profile]]
name = "app"
routing = "priority"
ttl = 30
[profile.monitor]
interval = "5s"
timeout = "2s"
[[profile.endpoint]]
name = "a"
addresses = ["192.0.2.1"]
probe = { host = "127.0.0.1", port = 18090 }
[[profile.endpoint]]
name = "b"
addresses = ["192.0.2.2"]
probe = { host = "127.0.0.1", port = 18090 }
TOML
SOA='@ IN SOA ns1.tm.example. hostmaster.tm.example. 1 900 300 2419200 300
@ IN NS ns1.tm.example.'
printf '$TTL 300\n%s\napp 30 IN LUA A "ifurlup('"'"'http://127.0.0.1:18090/'"'"', {'"'"'192.0.2.1'"'"', '"'"'192.0.2.2'"'"'})"\n' "$SOA" > "$W/lua.zone"
printf '$TTL 300\n%s\napp 30 IN A 192.0.2.1\n' "$SOA" > "$W/static.zone"
printf 'app.tm.example A\n' > "$W/queries"
pdnsconf() { # dir port backend-lines
    mkdir -p "$W/$1"
    cat > "$W/$1/pdns.conf" <<CONF
$3
local-address=127.0.0.1
local-port=$2
edns-subnet-processing=yes
cache-ttl=0
query-cache-ttl=0
negquery-cache-ttl=0
zone-cache-refresh-interval=0
security-poll-suffix=
socket-dir=$W/$1
guardian=no
daemon=no
disable-syslog=yes
webserver=no
api=no
CONF
}
target/release/trafficmgr pdns-backend --config "$W/tm.toml" --socket "$W/tm.sock" 2>"$W/adapter.log" & PIDS="$PIDS $!"
sleep 1
pdnsconf adapter 15801 "launch=remote
remote-connection-string=unix:path=$W/tm.sock,timeout=2000"
echo "zone \"tm.example\" { type master; file \"$W/lua.zone\"; };" > "$W/lua.conf"
pdnsconf lua 15802 "launch=bind
bind-config=$W/lua.conf
enable-lua-records=yes"
echo "zone \"tm.example\" { type master; file \"$W/static.zone\"; };" > "$W/static.conf"
pdnsconf static 15803 "launch=bind
bind-config=$W/static.conf"
for d in adapter lua static; do
    pdns_server --config-dir="$W/$d" >"$W/$d.log" 2>&1 & PIDS="$PIDS $!"
done
sleep 3
for p in 15801 15802 15803; do dig @127.0.0.1 -p $p app.tm.example A +short >/dev/null; done
sleep 2
run() {
    dnsperf -s 127.0.0.1 -p "$1" -d "$W/queries" -l "$SECS" -c 4 -q 200 > "$W/perf.$1" 2>&1 || true
    awk '/Queries per second/ {print $4}' "$W/perf.$1"
}
lost() { awk '/Queries lost/ {print $3}' "$W/perf.$1"; }
echo "dnsperf -l $SECS -c 4 -q 200, app.tm.example A, PowerDNS caches off, 2 cores shared with dnsperf"
for p in 15801 15802 15803; do dig @127.0.0.1 -p $p app.tm.example A +short | sed "s/^/  port $p answers /"; done
AD=$(run 15801); LUA=$(run 15802); ST=$(run 15803)
printf '%-40s %10s qps  (lost %s)\n' "pdns + trafficmgr remote adapter" "$AD" "$(lost 15801)"
printf '%-40s %10s qps  (lost %s)\n' "pdns LUA record (ifurlup)" "$LUA" "$(lost 15802)"
printf '%-40s %10s qps  (lost %s)\n' "pdns static bind-backend zone" "$ST" "$(lost 15803)"
python3 -c "print('ratio adapter / LUA: %.2f; adapter / static: %.2f' % ($AD / $LUA, $AD / $ST))"

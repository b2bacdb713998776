#!/bin/sh
# PowerDNS throughput with dnsperf, in one run and on one query file:
#   1. pdns_server + the trafficmgr remote-backend adapter
#   2. pdns_server with LUA records (ifurlup health-checked failover, the
#      peer PowerDNS users build by hand) from a bind-backend zone
#   3. pdns_server with the same answers from a static bind-backend zone
#   4. pdns_server + a trivial lua2 script returning one fixed A record:
#      the lua2 path's own ceiling
#   5. pdns_server + trafficmgr in-process through lua2
#      (share/trafficmgr/pdns-lua2.lua, LuaJIT FFI)
# All with PowerDNS's caches off, as per-client answers require.
# Usage: sh scripts/bench-pdns.sh [seconds]   (default 10)
set -eu
cd "$(dirname "$0")/.."
SECS="${1:-10}"
sh scripts/install-deps.sh dnsperf
cargo build --release --lib --bin trafficmgr >/dev/null 2>&1
W=$(mktemp -d)
# Six free ports (other benchmarks may run on this machine).
set -- $(python3 -c '
import socket
ss = [socket.socket() for _ in range(6)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
P1=$1; P2=$2; P3=$3; P4=$4; P5=$5; HTTP=$6
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; sleep 1; rm -rf "$W"; }
trap cleanup EXIT INT TERM
mkdir -p "$W/www" && echo ok > "$W/www/index.html"
python3 -m http.server $HTTP --bind 127.0.0.1 -d "$W/www" >/dev/null 2>&1 & PIDS="$PIDS $!"
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
probe = { host = "127.0.0.1", port = $HTTP }
[[profile.endpoint]]
name = "b"
addresses = ["192.0.2.2"]
probe = { host = "127.0.0.1", port = $HTTP }
TOML
SOA='@ IN SOA ns1.tm.example. hostmaster.tm.example. 1 900 300 2419200 300
@ IN NS ns1.tm.example.'
printf '$TTL 300\n%s\napp 30 IN LUA A "ifurlup('"'"'http://127.0.0.1:'"$HTTP"'/'"'"', {'"'"'192.0.2.1'"'"', '"'"'192.0.2.2'"'"'})"\n' "$SOA" > "$W/lua.zone"
printf '$TTL 300\n%s\napp 30 IN A 192.0.2.1\n' "$SOA" > "$W/static.zone"
printf 'app.tm.example A\n' > "$W/queries"
pdnsconf() { # dir port backend-lines [zone-cache-refresh-interval]
    mkdir -p "$W/$1"
    cat > "$W/$1/pdns.conf" <<CONF
$3
zone-cache-refresh-interval=${4:-0}
local-address=127.0.0.1
local-port=$2
edns-subnet-processing=yes
cache-ttl=0
query-cache-ttl=0
negquery-cache-ttl=0
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
pdnsconf adapter $P1 "launch=remote
remote-connection-string=unix:path=$W/tm.sock,timeout=2000"
echo "zone \"tm.example\" { type master; file \"$W/lua.zone\"; };" > "$W/lua.conf"
pdnsconf lua $P2 "launch=bind
bind-config=$W/lua.conf
enable-lua-records=yes"
echo "zone \"tm.example\" { type master; file \"$W/static.zone\"; };" > "$W/static.conf"
pdnsconf static $P3 "launch=bind
bind-config=$W/static.conf"
cat > "$W/trivial.lua" <<'LUA'
-- The lua2 path's ceiling: one fixed A record (and the SOA PowerDNS asks
-- for to find the zone), no library.
local soa = { { type = "SOA", name = newDN("tm.example."), ttl = 300, auth = true,
                content = "ns1.tm.example. hostmaster.tm.example. 1 900 300 2419200 300" } }
function dns_lookup(qtype, qname, domain_id, ctx)
  local t = qtype:getCode()
  local n = tostring(qname)
  if n == "app.tm.example." and (t == 1 or t == 255) then
    return { { type = "A", name = qname, ttl = 30, content = "192.0.2.1", auth = true } }
  end
  if n == "tm.example." and (t == 6 or t == 255) then return soa end
  return {}
end
-- The zone cache knows the zone (as pdns-lua2.lua does with its zones).
local domains = { [newDN("tm.example.")] = { id = 1, serial = 1, kind = "native" } }
function dns_get_all_domains() return domains end
LUA
pdnsconf trivial $P4 "launch=lua2
lua2-filename=$W/trivial.lua" 300
cat > "$W/tm.lua" <<LUA
TRAFFICMGR = { config = "$W/tm.toml", zones = { "tm.example" },
               lib = "$PWD/target/release/libtrafficmgr.so" }
dofile("$PWD/share/trafficmgr/pdns-lua2.lua")
LUA
pdnsconf lua2tm $P5 "launch=lua2
lua2-filename=$W/tm.lua" 300
for d in adapter lua static trivial lua2tm; do
    pdns_server --config-dir="$W/$d" >"$W/$d.log" 2>&1 & PIDS="$PIDS $!"
done
sleep 3
for p in $P1 $P2 $P3 $P4 $P5; do dig @127.0.0.1 -p $p app.tm.example A +short >/dev/null; done
sleep 2
# pid of the pdns_server on a port (for its CPU time).
pidof_port() { ss -Hulpn "sport = :$1" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -n 1; }
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run() {
    pid=$(pidof_port "$1"); c0=$(cpu "$pid")
    dnsperf -s 127.0.0.1 -p "$1" -d "$W/queries" -l "$SECS" -c 8 -q 200 > "$W/perf.$1" 2>&1 || true
    c1=$(cpu "$pid")
    # CPU microseconds of the server per answered query: steadier than qps
    # when other work shares the cores.
    awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" '/Queries completed/ {printf "%.1f", t * 1e6 / hz / $3}' "$W/perf.$1" > "$W/cpu.$1"
    awk '/Queries per second/ {print $4}' "$W/perf.$1"
}
lost() { printf '%s, %s us CPU/query' "$(awk '/Queries lost/ {print $3}' "$W/perf.$1")" "$(cat "$W/cpu.$1")"; }
echo "dnsperf -l $SECS -c 8 -q 200, app.tm.example A, PowerDNS caches off, 2 cores shared with dnsperf"
for p in $P1 $P2 $P3 $P4 $P5; do dig @127.0.0.1 -p $p app.tm.example A +short | sed "s/^/  port $p answers /"; done
AD=$(run $P1); LUA=$(run $P2); ST=$(run $P3); TRIV=$(run $P4); L2=$(run $P5)
printf '%-44s %10s qps  (lost %s)\n' "pdns + trafficmgr remote adapter" "$AD" "$(lost $P1)"
printf '%-44s %10s qps  (lost %s)\n' "pdns LUA record (ifurlup)" "$LUA" "$(lost $P2)"
printf '%-44s %10s qps  (lost %s)\n' "pdns static bind-backend zone" "$ST" "$(lost $P3)"
printf '%-44s %10s qps  (lost %s)\n' "pdns lua2, trivial script (lua2 ceiling)" "$TRIV" "$(lost $P4)"
printf '%-44s %10s qps  (lost %s)\n' "pdns lua2 + trafficmgr (pdns-lua2.lua)" "$L2" "$(lost $P5)"
python3 -c "print('CPU per query, trivial lua2 / lua2 trafficmgr: %.2f' % ($(cat "$W/cpu.$P4") / $(cat "$W/cpu.$P5")))"
python3 -c "print('ratios: lua2 trafficmgr / trivial lua2 %.2f; lua2 trafficmgr / adapter %.2f; trivial lua2 / static %.2f; adapter / static %.2f; adapter / LUA %.2f' % ($L2 / $TRIV, $L2 / $AD, $TRIV / $ST, $AD / $ST, $AD / $LUA))"

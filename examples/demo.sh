#!/bin/sh
# `make demo`: start the embedded front on the demo config and show answers
# that differ by client subnet and by routing method. Needs only dig
# (Debian: bind9-dnsutils). DEMO_PORT changes the port; DEMO_ONESHOT=1
# stops the server after the tour instead of serving until Ctrl-C.
set -eu
cd "$(dirname "$0")/.."
PORT="${DEMO_PORT:-5353}"
BIN=target/release/trafficmgr
[ -x "$BIN" ] || cargo build --release --bin trafficmgr
command -v dig >/dev/null 2>&1 || sh scripts/install-deps.sh
WEB=$(mktemp -d)
PID="" WEB1="" WEB2=""
cleanup() {
    for p in $PID $WEB1 $WEB2; do kill "$p" 2>/dev/null || true; done
    [ -z "$PID" ] || wait "$PID" 2>/dev/null || true
    rm -rf "$WEB"
}
trap cleanup EXIT INT TERM
echo "northwind is up" > "$WEB/index.html"
python3 -m http.server 18081 --bind 127.0.0.1 -d "$WEB" >/dev/null 2>&1 &
WEB1=$!
python3 -m http.server 18082 --bind 127.0.0.1 -d "$WEB" >/dev/null 2>&1 &
WEB2=$!
for p in 18081 18082; do
    i=0
    until python3 -c "import socket; socket.create_connection(('127.0.0.1', $p), 0.2)" 2>/dev/null; do
        i=$((i + 1)); [ "$i" -lt 50 ] || { echo "demo: the web server on $p did not start" >&2; exit 1; }
        sleep 0.1
    done
done
echo "\$ trafficmgr check examples/demo.toml"
"$BIN" check examples/demo.toml | sed 's/^/    /'
echo
"$BIN" serve --config examples/demo.toml --listen "127.0.0.1:$PORT" &
PID=$!
i=0
until dig @127.0.0.1 -p "$PORT" +time=1 +tries=1 trafficmanager.example SOA >/dev/null 2>&1; do
    i=$((i + 1)); [ "$i" -lt 50 ] || { echo "demo: the server did not start" >&2; exit 1; }
    sleep 0.1
done
show() {
    echo "\$ $*"
    "$@" | sed 's/^/    /'
    echo
}
D="dig @127.0.0.1 -p $PORT +noall +answer"
echo "== performance routing: the answer follows the client's subnet (EDNS Client Subnet)"
show $D contoso.trafficmanager.example A +subnet=192.0.2.0/24
show $D contoso.trafficmanager.example A +subnet=198.51.100.0/24
show $D contoso.trafficmanager.example A +subnet=203.0.113.0/24
show $D contoso.trafficmanager.example AAAA +subnet=2001:db8:1::/48
echo "== why: trafficmgr explain runs the same decision and shows what it read"
show "$BIN" explain examples/demo.toml contoso.trafficmanager.example --ecs 203.0.113.0/24
echo "== the ECS scope in the reply tells resolvers how widely to cache it"
show dig @127.0.0.1 -p "$PORT" +noall +comments contoso.trafficmanager.example A +subnet=203.0.113.7/32
echo "== priority routing: the first healthy endpoint, A and AAAA"
show $D fabrikam.trafficmanager.example A
show $D fabrikam.trafficmanager.example AAAA
echo "== weighted routing: 3 blue to 1 green over 20 queries"
echo "\$ for i in \$(seq 20); do $D +short tailspin.trafficmanager.example A; done | sort | uniq -c"
for i in $(seq 20); do $D +short tailspin.trafficmanager.example A; done | sort | uniq -c | sed 's/^/    /'
echo
echo "== health monitoring: the primary's web server (127.0.0.1:18081) answers HTTP probes"
sleep 1
show $D northwind.trafficmanager.example A
echo "   stopping the primary's web server (PID $WEB1)..."
kill "$WEB1" 2>/dev/null; wait "$WEB1" 2>/dev/null || true
T0=$(date +%s.%N)
until [ "$($D +short northwind.trafficmanager.example A)" = "192.0.2.82" ]; do sleep 0.1; done
T1=$(date +%s.%N)
echo "   the answer moved after $(python3 -c "print(round($T1 - $T0, 1))") s (at most interval 2 s x (tolerated_failures 0 + 1) + timeout 1 s = 3 s):"
show $D northwind.trafficmanager.example A
echo "   starting it again..."
python3 -m http.server 18081 --bind 127.0.0.1 -d "$WEB" >/dev/null 2>&1 &
WEB1=$!
until [ "$($D +short northwind.trafficmanager.example A)" = "192.0.2.81" ]; do sleep 0.1; done
show $D northwind.trafficmanager.example A

echo "== the zone apex and a name that does not exist"
show $D trafficmanager.example NS
show dig @127.0.0.1 -p "$PORT" +noall +comments +authority nope.trafficmanager.example A
if [ "${DEMO_ONESHOT:-0}" = 1 ]; then
    exit 0
fi
echo "The server is running on 127.0.0.1:$PORT (PID $PID). Try the commands above; Ctrl-C stops it."
wait "$PID"

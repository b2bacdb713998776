#!/bin/sh
# `make demo`: start the embedded front on the demo config and show answers
# that differ by client subnet and by routing method. Needs only dig
# (Debian: bind9-dnsutils). DEMO_PORT changes the port; DEMO_ONESHOT=1
# stops the server after the tour instead of serving until Ctrl-C.
set -eu
cd "$(dirname "$0")/.."
PORT="${DEMO_PORT:-5353}"
BIN=target/release/examples/serve
[ -x "$BIN" ] || cargo build --release --example serve
command -v dig >/dev/null 2>&1 || sh scripts/install-deps.sh
"$BIN" --config examples/demo.toml --listen "127.0.0.1:$PORT" &
PID=$!
trap 'kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null' EXIT INT TERM
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
echo "== the ECS scope in the reply tells resolvers how widely to cache it"
show dig @127.0.0.1 -p "$PORT" +noall +comments contoso.trafficmanager.example A +subnet=203.0.113.7/32
echo "== priority routing: the first healthy endpoint, A and AAAA"
show $D fabrikam.trafficmanager.example A
show $D fabrikam.trafficmanager.example AAAA
echo "== weighted routing: 3 blue to 1 green over 20 queries"
echo "\$ for i in \$(seq 20); do $D +short tailspin.trafficmanager.example A; done | sort | uniq -c"
for i in $(seq 20); do $D +short tailspin.trafficmanager.example A; done | sort | uniq -c | sed 's/^/    /'
echo
echo "== the zone apex and a name that does not exist"
show $D trafficmanager.example NS
show dig @127.0.0.1 -p "$PORT" +noall +comments +authority nope.trafficmanager.example A
if [ "${DEMO_ONESHOT:-0}" = 1 ]; then
    exit 0
fi
echo "The server is running on 127.0.0.1:$PORT (PID $PID). Try the commands above; Ctrl-C stops it."
wait "$PID"

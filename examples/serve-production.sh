#!/bin/sh
# The embedded front as it should face the Internet: TCP limits spelled out
# and response-rate limiting ON (it is off by default). See
# docs/OPERATIONS.md, "The embedded front in production".
#
#   examples/serve-production.sh /etc/trafficmgr/trafficmgr.toml 192.0.2.53:53 [2001:db8::53]:53 ...
#
# SERVE_BIN overrides the trafficmgr binary (default: target/release/trafficmgr,
# then trafficmgr on the PATH); it runs `trafficmgr serve`.
# Extra options after `--` are passed on (a later option wins).
set -eu
[ $# -ge 2 ] || { echo "usage: $0 CONFIG ADDR:PORT... [-- OPTION...]" >&2; exit 2; }
BIN="${SERVE_BIN:-$(dirname "$0")/../target/release/trafficmgr}"
[ -n "${SERVE_BIN:-}" ] || [ -x "$BIN" ] || BIN=trafficmgr
CONFIG="$1"
shift
# Turn the addresses into --listen options, keeping what follows `--`.
n=$#
i=0
listen_done=0
while [ "$i" -lt "$n" ]; do
    a="$1"
    shift
    i=$((i + 1))
    if [ "$listen_done" = 1 ]; then
        set -- "$@" "$a"
    elif [ "$a" = "--" ]; then
        listen_done=1
    else
        set -- "$@" --listen "$a"
    fi
done
exec "$BIN" serve --config "$CONFIG" \
    --tcp-clients 256 \
    --tcp-initial-timeout 10s \
    --tcp-idle-timeout 10s \
    --tcp-message-timeout 5s \
    --rrl-responses-per-second 50 \
    --rrl-window 15 \
    --rrl-slip 2 \
    --rrl-ipv4-prefix-length 24 \
    --rrl-ipv6-prefix-length 56 \
    --rrl-max-table-size 100000 \
    "$@"

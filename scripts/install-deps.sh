#!/bin/sh
# Installs the Debian packages the tests need when they are missing.
# As root it uses apt-get; otherwise it says what to install and fails.
set -eu
need=""
have() { command -v "$1" >/dev/null 2>&1; }
have dig || need="$need bind9-dnsutils"
have valgrind || need="$need valgrind"
have gcc || need="$need gcc"
have python3 || need="$need python3"
# make deb: dpkg-shlibdeps, dpkg-architecture; strip and readelf (binutils)
have dpkg-shlibdeps || need="$need dpkg-dev"
have readelf || need="$need binutils"
have pkg-config || need="$need pkgconf"
have make || need="$need make"
have openssl || need="$need openssl"
# tests/probe_latency.rs: a network namespace (unshare) with tc-shaped loopback
{ have ip && have tc; } || need="$need iproute2"
have unshare || need="$need util-linux"
[ -x /usr/sbin/named ] || need="$need bind9"
have dnsdist || need="$need dnsdist"
# tests/common/prometheus.rs: a real Prometheus scrapes the control listener
[ -x /usr/bin/prometheus ] || need="$need prometheus"
# tests/knot_system.rs: knotd and knotc; the module builds against knot/module.h
{ have knotd && have knotc; } || need="$need knot"
[ -e /usr/include/knot/module.h ] || need="$need libknot-dev"
# tests/status_page.rs: the status page in headless Chromium, with a font
have chromium || need="$need chromium"
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need="$need fonts-dejavu-core"
# tests/fleet.rs: a real etcd (server and etcdctl)
{ [ -x /usr/bin/etcd ] && have etcdctl; } || need="$need etcd-server etcd-client"
have pdns_server || need="$need pdns-server"
[ -e /usr/lib/x86_64-linux-gnu/pdns/libremotebackend.so ] || [ -e /usr/lib/aarch64-linux-gnu/pdns/libremotebackend.so ] || need="$need pdns-backend-remote"
[ -e /usr/lib/x86_64-linux-gnu/pdns/libbindbackend.so ] || [ -e /usr/lib/aarch64-linux-gnu/pdns/libbindbackend.so ] || need="$need pdns-backend-bind"
# tests/pdns_lua2.rs: share/trafficmgr/pdns-lua2.lua runs inside pdns_server (LuaJIT FFI)
[ -e /usr/lib/x86_64-linux-gnu/pdns/liblua2backend.so ] || [ -e /usr/lib/aarch64-linux-gnu/pdns/liblua2backend.so ] || need="$need pdns-backend-lua2"
for extra in dnsperf "$@"; do
    case "$extra" in
        dnsperf) have dnsperf || need="$need dnsperf" ;;
    esac
done
[ -z "$need" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing Debian packages:$need (run as root, or: sudo apt-get install$need)" >&2
    exit 1
fi
echo "install-deps: installing$need"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $need >/dev/null

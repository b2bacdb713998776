#!/bin/sh
# Builds target/deb/trafficmgr_<version>_<arch>.deb with dpkg-deb from a
# `make install` into a staging tree (Debian paths: /usr, /etc, the
# multiarch library folder, /lib/systemd/system, /usr/lib/bind, knotd's
# module folder /usr/lib/<multiarch>/knot/modules-<version>). Run by
# `make deb` after the release build.
set -eu
cd "$(dirname "$0")/.."
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
ABI=$(sed -n 's/^#define TM_ABI_VERSION //p' include/trafficmgr.h)
ARCH=$(dpkg --print-architecture)
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
STAGE=target/deb/root
rm -rf "$STAGE"
mkdir -p "$STAGE/DEBIAN"
make --no-print-directory install DESTDIR="$PWD/$STAGE" PREFIX=/usr SYSCONFDIR=/etc \
    LIBDIR="/usr/lib/$MULTIARCH" UNITDIR=/lib/systemd/system >/dev/null
# The Knot module is found only where knotd looks (libknot-dev's knotd.pc).
ls "$STAGE"/usr/lib/"$MULTIARCH"/knot/*/trafficmgr.so >/dev/null

# Debian conventions: stripped objects, compressed man pages and changelog,
# a copyright file.
strip --strip-unneeded --remove-section=.comment --remove-section=.note \
    "$STAGE/usr/lib/$MULTIARCH/libtrafficmgr.so.$VERSION" "$STAGE/usr/lib/bind/libtrafficmgr.so" \
    "$STAGE"/usr/lib/"$MULTIARCH"/knot/*/trafficmgr.so
strip --remove-section=.comment --remove-section=.note \
    "$STAGE/usr/bin/trafficmgr"
gzip -9n "$STAGE"/usr/share/man/man*/*
mv "$STAGE/usr/share/doc/trafficmgr/CHANGELOG.md" "$STAGE/usr/share/doc/trafficmgr/changelog"
gzip -9n "$STAGE/usr/share/doc/trafficmgr/changelog"
install -m 0644 packaging/debian/copyright "$STAGE/usr/share/doc/trafficmgr/copyright"

# Shared-library dependencies as dpkg-shlibdeps computes them.
tmp=$(mktemp -d)
mkdir "$tmp/debian"
printf 'Source: trafficmgr\n\nPackage: trafficmgr\nArchitecture: any\n' > "$tmp/debian/control"
DEPENDS=$(cd "$tmp" && dpkg-shlibdeps -O "$OLDPWD/$STAGE/usr/lib/$MULTIARCH/libtrafficmgr.so.$VERSION" \
    "$OLDPWD/$STAGE/usr/bin/trafficmgr" 2>/dev/null \
    | sed -n 's/^shlibs:Depends=//p')
rm -rf "$tmp"
[ -n "$DEPENDS" ] || DEPENDS="libc6"
SIZE=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
sed -e "s|@VERSION@|$VERSION|" -e "s|@ARCH@|$ARCH|" -e "s|@SIZE@|$SIZE|" -e "s|@DEPENDS@|$DEPENDS|" \
    -e "s|@ABI@|$ABI|" packaging/debian/control.in > "$STAGE/DEBIAN/control"
printf '/etc/trafficmgr/trafficmgr.toml\n/etc/default/trafficmgr\n' > "$STAGE/DEBIAN/conffiles"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$STAGE/DEBIAN/"
(cd "$STAGE" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | sort | xargs md5sum) \
    > "$STAGE/DEBIAN/md5sums"
chmod -R u+rwX,go+rX,go-w "$STAGE"
OUT="target/deb/trafficmgr_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$OUT" >/dev/null
echo "$OUT"

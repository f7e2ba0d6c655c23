#!/bin/sh
# make-guest-pkg PKGROOT BASE_CPIO OUT_CPIO: byte-compile socketlab + the exec agent under PKGROOT,
# pack them as a second cpio archive and append it to the base one (the kernel unpacks
# concatenated archives in order). This is all a change to services/socketlab rebuilds.
set -eu
P=$1 BASE=$2 OUT=$3
mkdir -p "$(dirname "$OUT")"
cd "$P"
find . -name __pycache__ -type d -prune -exec rm -rf {} +
python3.11 -m compileall -q --invalidation-mode unchecked-hash -s "$P" -p / "$P/opt" >/dev/null
find . -mindepth 1 | sed 's|^\./||' | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -9 -n > "$OUT.pkg"
cat "$BASE" "$OUT.pkg" > "$OUT"
rm -f "$OUT.pkg"
echo "make-guest-pkg: $(du -h "$OUT" | cut -f1) initramfs ($OUT)"

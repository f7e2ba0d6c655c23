#!/bin/sh
# make-rootfs ROOT OUT_CPIO [LIBDIR...]: turn the installed cross CPython in ROOT into the
# guest's root (trimmed stdlib, stripped binaries, the shared libraries the ELF files need,
# /etc, .pyc that never go stale) and write it as the base initramfs archive OUT_CPIO.
# A needed library is taken from the first LIBDIR that has it (OpenSSL's), else the sysroot.
# INITRAMFS_COMPRESS=none|gzip (none: no inflate in the TCG guest, the default; gzip: a smaller image).
set -eu
R=$1 OUT=$2
shift 2
mkdir -p "$(dirname "$OUT")"
T=powerpc64-linux-gnu
SYSROOT=/usr/$T
LIBDIRS="$* $SYSROOT/lib"
PYLIB=usr/lib/python3.11
cd "$R"

# --- trim what a socket lab never imports (and what has no native module on ppc64 here) ---
rm -rf usr/include usr/share usr/lib/pkgconfig usr/lib/libpython3*.a
rm -f usr/bin/idle3* usr/bin/pydoc3* usr/bin/2to3* usr/bin/python3*-config
rm -rf $PYLIB/config-3.11-* $PYLIB/test $PYLIB/idlelib $PYLIB/tkinter $PYLIB/turtledemo \
       $PYLIB/turtle.py $PYLIB/ensurepip $PYLIB/lib2to3 $PYLIB/pydoc_data $PYLIB/venv \
       $PYLIB/ctypes $PYLIB/sqlite3 $PYLIB/curses $PYLIB/dbm $PYLIB/msilib \
       $PYLIB/unittest/test $PYLIB/distutils/tests $PYLIB/distutils/command/*.exe
find . -name __pycache__ -type d -prune -exec rm -rf {} +
find . -name '*.exe' -delete

# --- strip the ELF files ---
$T-strip --strip-unneeded usr/bin/python3.11 $PYLIB/lib-dynload/*.so

# --- libraries: the closure of DT_NEEDED (OpenSSL from LIBDIR, glibc from the sysroot) in
# /lib64, the loader's default path; plus libgcc_s (pthread_exit unwinding) ---
mkdir -p lib64 lib usr/lib
needed() { $T-readelf -d "$@" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort -u; }
findlib() {
    for d in $LIBDIRS; do
        if [ -e "$d/$1" ]; then echo "$d/$1"; return 0; fi
    done
    echo "make-rootfs: $1 is needed but in none of $LIBDIRS" >&2
    return 1
}
todo=$(needed usr/bin/python3.11 $PYLIB/lib-dynload/*.so)
have=
while [ -n "$todo" ]; do
    next=
    for lib in $todo; do
        case " $have " in *" $lib "*) continue ;; esac
        have="$have $lib"
        src=$(findlib "$lib")
        cp -L "$src" lib64/
        # the sysroot's glibc comes stripped; a LIBDIR's library is as its build left it
        case $src in "$SYSROOT"/*) ;; *) $T-strip --strip-unneeded "lib64/$lib" ;; esac
        next="$next $(needed "lib64/$lib")"
    done
    todo=$next
done
cp -L "$SYSROOT/lib/libgcc_s.so.1" lib64/
interp=$($T-readelf -l usr/bin/python3.11 | sed -n 's/.*interpreter: \(.*\)\]/\1/p')
[ "$interp" = /lib64/ld64.so.1 ] || { echo "make-rootfs: unexpected ELF interpreter $interp" >&2; exit 1; }
cp -L "$SYSROOT/lib/ld64.so.1" lib64/ld64.so.1
# glibc's multiarch directories point at lib64; relative links so qemu-ppc64-static -L works too
ln -sfn ../lib64 lib/$T
ln -sfn ../../lib64 usr/lib/$T
ln -sfn usr/bin bin
ln -sfn python3.11 usr/bin/python3
ln -sfn python3 usr/bin/python
echo "make-rootfs: libraries:$have libgcc_s.so.1 ld64.so.1"

# --- the rest of a root ---
mkdir -p dev proc sys tmp run root etc opt/socketlab opt/guest
chmod 1777 tmp
# the guest's own name and addresses are added at boot (qemu/guest/agent.py): no address is built in
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > etc/hosts
printf 'root:x:0:0:root:/root:/bin/sh\n' > etc/passwd
printf 'root:x:0:\n' > etc/group
echo ppc-guest > etc/hostname

# --- bytecode: unchecked-hash .pyc stay valid whatever mtimes the copies get (no compile at boot) ---
python3.11 -m compileall -q -j2 --invalidation-mode unchecked-hash -s "$R" -p / "$R/$PYLIB" >/dev/null

# --- the archive: /dev/console and /dev/null must exist before /init runs ---
mknod -m 600 dev/console c 5 1
mknod -m 666 dev/null c 1 3
find . -mindepth 1 | sed 's|^\./||' | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet > "$OUT.tmp"
rm -f dev/console dev/null
case ${INITRAMFS_COMPRESS:-none} in
    gzip) gzip -9 -n < "$OUT.tmp" > "$OUT"; rm -f "$OUT.tmp" ;;
    none) mv "$OUT.tmp" "$OUT" ;;
    *) echo "make-rootfs: INITRAMFS_COMPRESS must be gzip or none" >&2; exit 2 ;;
esac
echo "make-rootfs: $(du -sh "$R" | cut -f1) root, $(du -h "$OUT" | cut -f1) archive ($OUT)"

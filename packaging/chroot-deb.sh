#!/bin/bash
# packaging/chroot-deb.sh - build the Debian package for another Debian
# release, in a chroot of that release, and check it with that release's
# lintian. The VM tests use it for a guest whose release differs from this
# machine's (test/vm/run.sh), and CI for Debian 13's lintian.
#
# Usage: packaging/chroot-deb.sh SUITE OUTDIR
#
#   SUITE   bookworm | trixie
#   OUTDIR  receives the .deb, the .changes and lintian.txt
#
# The chroot (debootstrap --variant=minbase, then `make deps-pkg`: the
# build dependencies, lintian and a Go that fetches go.mod's toolchain) is
# cached in $VM_CACHE/build-SUITE-HASH (default /var/cache/pam-unshare-vm),
# HASH covering this script, packaging/deps-go.sh, go.mod and the
# Makefile's package lists; it comes from the Debian archive of this
# machine's apt sources (packaging/apt-sources.sh). Each run copies the
# working tree (without build/ and .git) into the chroot's /src and runs
# `make deb lintian` there. Nothing is started in the chroot.
#
# Exit status: that of make deb lintian (lintian fails on errors and
# warnings, see packaging.mk).
set -euo pipefail

suite=${1:?usage: chroot-deb.sh bookworm|trixie OUTDIR}
outdir=${2:?usage: chroot-deb.sh bookworm|trixie OUTDIR}
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=packaging/apt-sources.sh
. "$top/packaging/apt-sources.sh"
case $suite in
bookworm | trixie) ;;
*)
	echo "chroot-deb: SUITE must be bookworm or trixie" >&2
	exit 2
	;;
esac
cache=${VM_CACHE:-/var/cache/pam-unshare-vm}

log() { printf 'chroot-deb: %s\n' "$*" >&2; }

key=$({
	cat "$0" "$top/packaging/deps-go.sh" "$top/go.mod"
	grep '^DEPS_' "$top/Makefile"
} | sha256sum | cut -c1-16)
root=$cache/build-$suite-$key
mkdir -p "$cache" "$outdir"
# One build per chroot at a time; the lock also guards its creation.
exec 9>"$cache/.lock-build-$suite"
flock 9

# shellcheck disable=SC2317 # called from the EXIT trap
unmount() {
	local r=$1 m
	for m in "$r/proc" "$r/dev/pts" "$r/dev" "$r"; do
		if mountpoint -q "$m" 2>/dev/null; then umount -l "$m" || true; fi
	done
}
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	unmount "$root"
	unmount "$root.tmp"
}
trap cleanup EXIT

# copy_tree DIR: the working tree, without build output and VCS data, in
# DIR/src.
copy_tree() {
	rm -rf "$1/src" && mkdir -p "$1/src"
	tar -C "$top" -c --exclude=./build --exclude=./.git --exclude=./vendor . | tar -C "$1/src" -x
}

in_root() {
	chroot "$1" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb "${@:2}"
}

# mount_root ROOT: ROOT becomes a mount point of its own (the package's
# tests make the chroot's / a slave mount, which needs one), with /proc and
# /dev in it.
mount_root() {
	mount --bind "$1" "$1"
	mount -t proc proc "$1/proc"
	mount --bind /dev "$1/dev"
	mount --bind /dev/pts "$1/dev/pts"
}

if [ ! -d "$root" ]; then
	mirror=$(debian_mirror)
	[ -n "$mirror" ] || {
		log "no Debian archive in apt's sources"
		exit 1
	}
	t0=$SECONDS
	log "building the $suite build chroot $root from $mirror"
	rm -rf "$root.tmp"
	debootstrap --variant=minbase --include=make,ca-certificates "$suite" "$root.tmp" "$mirror" \
		>"$cache/build-$suite.log" 2>&1 || {
		tail -n 30 "$cache/build-$suite.log" >&2
		exit 1
	}
	cp /etc/resolv.conf /etc/hosts "$root.tmp/etc/"
	# The machine's local certificate authorities (a site's proxy, say),
	# so the chroot reaches the Go module proxy as this machine does.
	if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
		cp /usr/local/share/ca-certificates/*.crt "$root.tmp/usr/local/share/ca-certificates/"
		in_root "$root.tmp" update-ca-certificates >/dev/null
	fi
	mount_root "$root.tmp"
	copy_tree "$root.tmp"
	in_root "$root.tmp" make -C /src deps-pkg >>"$cache/build-$suite.log" 2>&1 || {
		tail -n 30 "$cache/build-$suite.log" >&2
		exit 1
	}
	unmount "$root.tmp"
	# Older chroots of this release are unreachable once the key changes.
	for old in "$cache/build-$suite"-*; do
		[ "$old" = "$root.tmp" ] || rm -rf "$old"
	done
	mv "$root.tmp" "$root"
	log "chroot built in $((SECONDS - t0)) s"
fi

mount_root "$root"
copy_tree "$root"
t0=$SECONDS
rc=0
in_root "$root" make -C /src deb lintian >"$outdir/build.log" 2>&1 || rc=$?
log "make deb lintian in the $suite chroot: $((SECONDS - t0)) s (exit $rc)"
sed -n '/^lintian /,$p' "$outdir/build.log" >"$outdir/lintian.txt"
cp "$root"/src/build/pkg/*.deb "$root"/src/build/pkg/*.changes "$outdir/" 2>/dev/null || true
if [ "$rc" != 0 ]; then
	tail -n 30 "$outdir/build.log" >&2
	exit "$rc"
fi
for f in "$outdir"/*.deb; do echo "package: $f"; done

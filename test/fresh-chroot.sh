#!/bin/bash
# Check that the README's install command works on a fresh Debian with no
# Go: debootstrap a minimal Debian 12 or 13 chroot from this machine's apt
# archive, copy the committed tree (HEAD) into it, and run
# `make deps install` there. No service is started in the chroot
# (policy-rc.d). Needs root, debootstrap, git, and access to the Debian
# archive and the Go module proxy. Not run by make check or CI (it
# downloads a Debian base system, the build dependencies and a Go
# toolchain); run it when the dependency set-up changes.
#
# Usage: test/fresh-chroot.sh SUITE [DIR]
#
#   SUITE  bookworm | trixie
#   DIR    where to build the chroot (default: a new directory in /var/tmp,
#          removed at the end unless KEEP=1)
#
# Prints the time each step took. Exit status: that of make deps install.
set -euo pipefail

suite=${1:?usage: fresh-chroot.sh bookworm|trixie [DIR]}
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=packaging/apt-sources.sh
. "$top/packaging/apt-sources.sh"
case $suite in
bookworm | trixie) ;;
*)
	echo "fresh-chroot: SUITE must be bookworm or trixie" >&2
	exit 2
	;;
esac
root=${2:-$(mktemp -d /var/tmp/pam-unshare-fresh-"$suite".XXXXXX)}
mirror=$(debian_mirror)
[ -n "$mirror" ] || {
	echo "fresh-chroot: no Debian archive in apt's sources" >&2
	exit 1
}

log() { printf 'fresh-chroot: %s\n' "$*" >&2; }

# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	local m
	for m in "$root/proc" "$root/sys" "$root/dev/pts" "$root/dev"; do
		if mountpoint -q "$m" 2>/dev/null; then umount -l "$m" || true; fi
	done
	if [ "${KEEP:-0}" = 1 ]; then log "kept $root"; else rm -rf "$root"; fi
}
trap cleanup EXIT

t0=$SECONDS
log "debootstrap --variant=minbase $suite from $mirror into $root"
debootstrap --variant=minbase --include=make,git,ca-certificates "$suite" "$root" "$mirror" \
	>"$root.debootstrap.log" 2>&1 || {
	tail -n 30 "$root.debootstrap.log" >&2
	exit 1
}
rm -f "$root.debootstrap.log"
log "debootstrap: $((SECONDS - t0)) s"

cp /etc/resolv.conf /etc/hosts "$root/etc/"
# The machine's local certificate authorities (a site's proxy, say), so the
# chroot reaches the Go module proxy as this machine does.
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
	cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
	chroot "$root" update-ca-certificates >/dev/null
fi
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
git clone -q "$top" "$root/src"

if chroot "$root" sh -c 'command -v go' >/dev/null; then
	log "the chroot has a go already"
	exit 1
fi
t0=$SECONDS
rc=0
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb \
	sh -c 'cd /src && make deps install' || rc=$?
log "make deps install: $((SECONDS - t0)) s (exit $rc)"
if [ "$rc" = 0 ]; then
	chroot "$root" sh -c 'go version; cd /src && go version; ls -l /usr/sbin/pam-unshare /usr/libexec/pam_unshare/ /usr/lib/*/security/pam_unshare.so' >&2
fi
exit "$rc"

#!/bin/bash
# Build the cached Debian guest image for the VM tests.
#
# Usage: build-image.sh OUTDIR MIRROR [SUITE]
#
# SUITE is the Debian release, bookworm (Debian 12, the default) or trixie
# (Debian 13). The guest gets the packages of packages.txt plus those of
# packages-SUITE.txt when that file exists.
#
# Writes into OUTDIR (created atomically: built in OUTDIR.tmp, then renamed):
#   base.img     raw ext4 root file system (the guest's /dev/vda, read through
#                a per-run qcow2 overlay, never written by a test run)
#   vmlinuz      the guest's kernel, for direct kernel boot
#   initrd.img   the guest's initramfs
#   packages.txt the package list the image was built from
#   suite        the release
#
# The image holds everything that does not depend on the module under test:
# users, ssh keys, sshd settings and a boot unit (vmtest-boot.service) that
# mounts the per-run payload disk (/dev/vdb) and runs its runner.sh.
# run.sh keys the cache on the suite and a hash of this file and the package
# lists, so any edit here rebuilds the image on the next run.
set -euo pipefail

# Bump when the image layout changes in a way the hash would not catch.
IMAGE_VERSION=1

outdir=${1:?usage: build-image.sh OUTDIR MIRROR [SUITE]}
mirror=${2:?usage: build-image.sh OUTDIR MIRROR [SUITE]}
suite=${3:-bookworm}
here=$(cd "$(dirname "$0")" && pwd)
case $suite in
bookworm | trixie) ;;
*)
	echo "build-image: unknown suite $suite (bookworm or trixie)" >&2
	exit 2
	;;
esac
tmp=$outdir.tmp
root=$tmp/root

log() { printf 'build-image: %s\n' "$*" >&2; }

cleanup() {
	# A failed debootstrap can leave /proc or /sys mounted in the chroot.
	for m in "$root/proc" "$root/sys" "$root/dev/pts" "$root/dev"; do
		if mountpoint -q "$m" 2>/dev/null; then umount -l "$m" || true; fi
	done
}
trap cleanup EXIT

rm -rf "$tmp"
mkdir -p "$tmp"

lists=("$here/packages.txt")
[ ! -f "$here/packages-$suite.txt" ] || lists+=("$here/packages-$suite.txt")
packages=$(cat "${lists[@]}" | grep -v '^[[:space:]]*\(#\|$\)' | paste -sd, -)
log "debootstrap $suite from $mirror (image version $IMAGE_VERSION)"
log "packages: $packages"
debootstrap --variant=minbase --include="$packages" \
	"$suite" "$root" "$mirror" >"$tmp/debootstrap.log" 2>&1 || {
	tail -n 30 "$tmp/debootstrap.log" >&2
	exit 1
}

in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }

log "configuring guest"
echo vmtest >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tvmtest\n' >"$root/etc/hosts"
printf '/dev/vda\t/\text4\trw,errors=remount-ro\t0\t1\n' >"$root/etc/fstab"
printf 'deb %s %s main\n' "$mirror" "$suite" >"$root/etc/apt/sources.list"
# pam_env warns on every session without it.
echo LANG=C.UTF-8 >"$root/etc/default/locale"

# Root logs in on the serial console without a password (debugging only;
# the guest has no network).
in_root passwd -d root >/dev/null

# Test accounts. Each gets the same key; root's client key logs in as any.
in_root groupadd -f vmtest
for u in alice bob carol; do
	in_root useradd -m -s /bin/bash -G vmtest "$u"
done
mkdir -p "$root/root/.ssh"
chmod 700 "$root/root/.ssh"
ssh-keygen -q -t ed25519 -N '' -C vmtest -f "$root/root/.ssh/id_ed25519"
cat >"$root/root/.ssh/config" <<'EOF'
Host 127.0.0.1 localhost
	StrictHostKeyChecking no
	UserKnownHostsFile /dev/null
	LogLevel ERROR
	BatchMode yes
	ConnectTimeout 60
EOF
for u in alice bob carol; do
	install -d -m 700 "$root/home/$u/.ssh"
	install -m 600 "$root/root/.ssh/id_ed25519.pub" "$root/home/$u/.ssh/authorized_keys"
	in_root chown -R "$u:$u" "/home/$u/.ssh"
done

# sshd: key auth only, no DNS, room for many simultaneous logins.
cat >"$root/etc/ssh/sshd_config.d/vmtest.conf" <<'EOF'
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
MaxStartups 100:30:200
MaxSessions 50
LogLevel VERBOSE
EOF

# Let the journal keep everything in memory; the runner copies it out.
mkdir -p "$root/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\nRateLimitBurst=0\n' \
	>"$root/etc/systemd/journald.conf.d/vmtest.conf"

# Nothing periodic should run while tests measure the guest.
for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
	fstrim.timer dpkg-db-backup.timer systemd-tmpfiles-clean.timer \
	man-db.timer getty@tty1.service; do
	ln -sf /dev/null "$root/etc/systemd/system/$unit"
done

# The boot unit: mount the payload disk and run its runner, then power off.
cat >"$root/usr/local/sbin/vmtest-boot" <<'EOF'
#!/bin/sh
# Run the per-run payload from /dev/vdb, then power the guest off.
set -u
mnt=/mnt/vmtest
mkdir -p "$mnt" /run/vmtest
if mount -t ext4 /dev/vdb "$mnt" && [ -f "$mnt/bin/runner.sh" ]; then
	cp -a "$mnt/bin/." /run/vmtest/
	echo "vmtest-boot: running payload" >/dev/console
	/bin/bash /run/vmtest/runner.sh "$mnt" || echo "vmtest-boot: runner exit $?" >/dev/console
	sync
	umount "$mnt" || umount -l "$mnt"
else
	echo "vmtest-boot: no payload on /dev/vdb" >/dev/console
fi
sync
echo "VMTEST-POWEROFF" >/dev/console
systemctl --force poweroff
EOF
chmod 755 "$root/usr/local/sbin/vmtest-boot"
cat >"$root/etc/systemd/system/vmtest-boot.service" <<'EOF'
[Unit]
Description=VM test runner (payload on /dev/vdb)
After=ssh.service systemd-logind.service systemd-user-sessions.service
Wants=ssh.service

[Service]
Type=simple
ExecStart=/usr/local/sbin/vmtest-boot
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
EOF
in_root systemctl enable vmtest-boot.service ssh.service >/dev/null 2>&1
in_root systemctl set-default multi-user.target >/dev/null 2>&1

# Kernel and initramfs for direct kernel boot.
kernel=$(find "$root/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n 1)
initrd=$(find "$root/boot" -maxdepth 1 -name 'initrd.img-*' | sort -V | tail -n 1)
if [ -z "$kernel" ] || [ -z "$initrd" ]; then
	log "no kernel/initrd in $root/boot"
	exit 1
fi
cp "$kernel" "$tmp/vmlinuz"
cp "$initrd" "$tmp/initrd.img"

in_root apt-get clean >/dev/null 2>&1 || true
rm -rf "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin

cleanup
size_mb=$(($(du -sm "$root" | cut -f1) + 768))
log "creating ${size_mb} MiB ext4 image"
mkfs.ext4 -q -F -L vmroot -d "$root" "$tmp/base.img" "${size_mb}M"
cat "${lists[@]}" >"$tmp/packages.txt"
echo "$suite" >"$tmp/suite"
rm -rf "$root" "$tmp/debootstrap.log"

rm -rf "$outdir"
mv "$tmp" "$outdir"
log "image ready in $outdir"

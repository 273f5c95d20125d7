#!/bin/bash
# VM integration tests for pam_unshare: boot a Debian 12 or 13 guest, install the
# module the way an administrator would, run test/vm/scenarios.sh inside it
# and report the results as TAP.
#
# Usage: test/vm/run.sh [--smoke] [--keep] [SCENARIO...]
#
#   --smoke     boot and run only the harness self-check; the module is not
#               built or installed (checks the image, boot, runner and result
#               collection)
#   --keep      keep the per-run directory (overlay, payload, console log)
#   SCENARIO    run only these scenario functions from scenarios.sh
#
# Environment:
#   VM_SUITE    the guest's Debian release: bookworm (Debian 12, the
#               default) or trixie (Debian 13); each has its own cached image
#   VM_CACHE    image cache directory (default /var/cache/pam-unshare-vm)
#   VM_ACCEL    auto | tcg | kvm (default auto: KVM only if a short probe
#               boots a kernel under it; TCG otherwise)
#   VM_TIMEOUT  hard limit for the guest run in seconds (default 1800)
#   VM_CPUS     guest vCPUs (default 2)
#   VM_MEM      guest memory in MiB (default 1536)
#   VM_PAM_ARGS extra arguments for the `session required pam_unshare.so`
#               line, e.g. "debug" (default none)
#   VM_INSTALL  deb | make: how the module gets into the guest (default
#               deb: `make deb` builds the Debian package, the guest
#               installs it with `dpkg -i`; for a guest of another release
#               than this machine's, packaging/chroot-deb.sh builds it in a
#               chroot of that release; make: `make install DESTDIR=`
#               on this machine, the tree copied into the guest, to test
#               the module without the packaging)
#   VM_DEB      with VM_INSTALL=deb: an existing .deb to install instead of
#               building one (e.g. the Debian 12 one in a Debian 13 guest)
#   VM_OLD_REV  the release the upgrade scenario upgrades from: a git
#               commit or tag of this repository (default: tag v0.1.0 if
#               the clone has it, else commit 2f95109, release 0.1.0); its
#               tree is exported with git archive and built with make deb,
#               once per commit (cached in build/vm-old-deb/COMMIT/)
#   VM_OLD_DEB  an existing .deb of the older release instead of VM_OLD_REV
#   VM_DESTDIR  with VM_INSTALL=make: an existing `make install DESTDIR=`
#               tree to use instead of running `make install`
#   VM_ENABLE   cli | append: how the module line gets into /etc/pam.d:
#               `pam-unshare enable` (default), or appended by the runner
#   MAKE        make program (default make)
#
# Output: TAP on stdout, ending with the line "N passed, N failed".
# Progress and diagnostics go to stderr. Exit status: 0 if every scenario
# passed, 1 if any failed or no results came back, 2 on usage errors,
# 77 if the machine cannot run the tests (not root, missing tools).
set -euo pipefail

# The whole script is one compound command, so bash parses all of it before
# running any of it: editing this file during a run does not break the run.
{

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

smoke=0
keep=0
scenarios=()
for arg in "$@"; do
	case $arg in
	--smoke) smoke=1 ;;
	--keep) keep=1 ;;
	-h | --help)
		sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
		exit 0
		;;
	-*)
		echo "run.sh: unknown option $arg" >&2
		exit 2
		;;
	*) scenarios+=("$arg") ;;
	esac
done
# A misspelt scenario fails here, not after the guest has booted.
bash "$here/scenarios.sh" --list "${scenarios[@]}" >/dev/null || exit 2

cache=${VM_CACHE:-/var/cache/pam-unshare-vm}
suite=${VM_SUITE:-bookworm}
case $suite in
bookworm | trixie) ;;
*)
	echo "run.sh: VM_SUITE must be bookworm or trixie" >&2
	exit 2
	;;
esac
accel=${VM_ACCEL:-auto}
timeout_s=${VM_TIMEOUT:-1800}
cpus=${VM_CPUS:-2}
mem=${VM_MEM:-1536}
make=${MAKE:-make}
install_mode=${VM_INSTALL:-deb}
case $install_mode in
deb | make) ;;
*)
	echo "run.sh: VM_INSTALL must be deb or make" >&2
	exit 2
	;;
esac
case ${VM_ENABLE:-cli} in
cli | append) ;;
*)
	echo "run.sh: VM_ENABLE must be cli or append" >&2
	exit 2
	;;
esac

log() { printf 'vm: %s\n' "$*" >&2; }
skip() {
	log "SKIP: $*"
	echo "1..0 # SKIP $*"
	exit 77
}

[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, chroot, mkfs -d ownership)"
for tool in debootstrap qemu-system-x86_64 qemu-img mkfs.ext4 debugfs flock timeout; do
	command -v "$tool" >/dev/null || skip "missing $tool"
done
if [ "$smoke" = 0 ] && [ "$install_mode" = deb ] && [ -z "${VM_DEB:-}" ]; then
	command -v dpkg-buildpackage >/dev/null ||
		skip "missing dpkg-buildpackage for make deb (VM_INSTALL=make installs without the package)"
fi

# debian_mirror: the Debian archive URI of this machine's apt sources, the
# only place the guest image's mirror comes from.
# shellcheck source=packaging/apt-sources.sh
. "$top/packaging/apt-sources.sh"

# ensure_image sets img to the cache directory of the image for the current
# package list and build script, building it first if needed, and holds a
# shared lock on it until this script exits, so that a concurrent run that
# builds a newer image does not delete it while it is in use.
ensure_image() {
	local key mirror old t0 inputs=("$here/packages.txt" "$here/build-image.sh")
	[ ! -f "$here/packages-$suite.txt" ] || inputs+=("$here/packages-$suite.txt")
	key=$(cat "${inputs[@]}" | sha256sum | cut -c1-16)
	img=$cache/$suite-$key
	mkdir -p "$cache"
	exec 9>"$cache/.lock"
	flock 9
	if [ ! -f "$img/base.img" ]; then
		mirror=$(debian_mirror)
		if [ -z "$mirror" ]; then
			log "no Debian mirror: the guest image is built from this machine's apt sources, and neither /etc/apt/sources.list nor /etc/apt/sources.list.d/*.list or *.sources has an enabled 'deb' line of a Debian release suite"
			exit 1
		fi
		log "building guest image $img (first run or package list changed)"
		t0=$SECONDS
		"$here/build-image.sh" "$img" "$mirror" "$suite" >&2
		log "image built in $((SECONDS - t0))s"
	else
		log "using cached image $img"
	fi
	exec 8<"$img/base.img"
	flock -s 8
	# Older images are unreachable once the key changes; remove those that
	# no other run is using.
	for old in "$cache/$suite"-*; do
		[ "$old" = "$img" ] || [ ! -d "$old" ] && continue
		flock -n -x "$old/base.img" rm -rf "$old" 2>/dev/null || true
	done
	exec 9>&-
}

# stage_make installs the module into the staging tree DESTDIR with
# `make install DESTDIR=...` (VM_INSTALL=make); the guest copies the tree
# into /.
stage_make() {
	local destdir=$1
	if [ -n "${VM_DESTDIR:-}" ]; then
		cp -a "$VM_DESTDIR/." "$destdir/"
		return
	fi
	"$make" -C "$top" --no-print-directory install DESTDIR="$destdir"
}

# stage_deb builds the Debian package for the guest's release and copies
# it into DIR; the guest installs it with `dpkg -i` (VM_INSTALL=deb). On
# this machine's own release that is `make deb lintian` (dpkg-buildpackage,
# including the package's unit tests, then lintian); for another release
# packaging/chroot-deb.sh runs the same in a chroot of it, as an
# administrator of that release would build it. A lintian error or warning
# fails the harness scenario (VM_INSTALL_RC); the tests still run.
stage_deb() {
	local dir=$1 deb host_suite
	host_suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	if [ -n "${VM_DEB:-}" ]; then
		deb=$VM_DEB
	elif [ "$suite" != "$host_suite" ]; then
		"$top/packaging/chroot-deb.sh" "$suite" "$work/deb-$suite" >"$work/make-deb.log" 2>&1 || {
			cat "$work/make-deb.log"
			return 1
		}
		cat "$work/make-deb.log" "$work/deb-$suite/lintian.txt"
		deb=$(sed -n 's/^package: //p' "$work/make-deb.log" | tail -n 1)
	else
		"$make" -C "$top" --no-print-directory deb lintian >"$work/make-deb.log" 2>&1 || {
			cat "$work/make-deb.log"
			return 1
		}
		tail -n 20 "$work/make-deb.log"
		deb=$(sed -n 's/^package: //p' "$work/make-deb.log" | tail -n 1)
		[ -z "$deb" ] || case $deb in /*) ;; *) deb=$top/$deb ;; esac
	fi
	if [ -z "$deb" ] || [ ! -f "$deb" ]; then
		echo "no .deb found (${deb:-make deb did not name one})"
		return 1
	fi
	cp "$deb" "$dir/"
	echo "staged $(basename "$deb")"
	dpkg-deb -c "$deb"
}

# The release before this one, for the upgrade scenario: pam-unshare 0.1.0.
old_release=2f951090673704e8a6012d30d57cc08633fc8399
git -C "$top" rev-parse -q --verify 'v0.1.0^{commit}' >/dev/null 2>&1 && old_release=v0.1.0

# stage_old_deb builds the package of an older release (VM_OLD_REV) from
# its git commit, in a scratch copy of that tree (git archive, then make
# deb there), and copies it into DIR; the upgrade scenario installs it,
# then upgrades to the package of this tree. The build is cached per
# commit in build/vm-old-deb/.
stage_old_deb() {
	local dir=$1 rev commit cache src deb
	if [ -n "${VM_OLD_DEB:-}" ]; then
		deb=$VM_OLD_DEB
	else
		rev=${VM_OLD_REV:-$old_release}
		commit=$(git -C "$top" rev-parse -q --verify "$rev^{commit}" 2>/dev/null) || {
			echo "no commit $rev in $top (a shallow clone? fetch it, or set VM_OLD_DEB)"
			return 2
		}
		cache=$top/build/vm-old-deb/$commit
		deb=$(find "$cache" -maxdepth 1 -name '*.deb' 2>/dev/null | head -n 1)
		if [ -z "$deb" ]; then
			src=$work/old-src
			mkdir -p "$src" "$cache"
			git -C "$top" archive "$commit" | tar -x -C "$src"
			"$make" -C "$src" --no-print-directory deb >"$work/make-old-deb.log" 2>&1 || {
				tail -n 30 "$work/make-old-deb.log"
				return 1
			}
			cp "$src"/build/pkg/*.deb "$cache/"
			rm -rf "$src"
			deb=$(find "$cache" -maxdepth 1 -name '*.deb' | head -n 1)
		fi
	fi
	if [ -z "$deb" ] || [ ! -f "$deb" ]; then
		echo "no .deb of the older release"
		return 1
	fi
	cp "$deb" "$dir/"
	echo "staged the older release: $(basename "$deb") (${VM_OLD_DEB:-$rev})"
}

# kvm_works boots the guest kernel under KVM without a root file system: a
# working KVM panics and exits within seconds, a nested KVM that hangs is
# killed by the timeout.
kvm_works() {
	local img=$1 probe_log=$2
	[ -w /dev/kvm ] || return 1
	timeout -k 3 8 qemu-system-x86_64 -accel kvm -cpu host -m 256 \
		-display none -monitor none -serial "file:$probe_log" -no-reboot \
		-kernel "$img/vmlinuz" -append "console=ttyS0 panic=-1" \
		>/dev/null 2>&1 || return 1
	grep -q 'Kernel panic' "$probe_log"
}

work=$(mktemp -d "${TMPDIR:-/tmp}/pam-unshare-vm.XXXXXX")
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	if [ "$keep" = 1 ]; then
		log "kept $work ($work/boot-shell.sh boots its guest again)"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT

ensure_image

# The payload disk (/dev/vdb): the runner, scenarios.sh and the scenario
# files it sources (every .sh here), the TAP library (test/tap.sh, which reads the helper's process name from
# nsinit/handshake.h; user_manager.sh reads the relay's cap from
# nsinit/init/init.h), the package in deb/ (or the installed module
# tree in root/) and an empty out/ directory the guest writes results into.
payload=$work/payload
mkdir -p "$payload/bin" "$payload/root" "$payload/deb" "$payload/olddeb" "$payload/out"
cp "$here"/*.sh "$here/../tap.sh" "$here/../../nsinit/handshake.h" "$here/../../nsinit/init/init.h" "$payload/bin/"
{
	printf 'VM_SMOKE=%q\n' "$smoke"
	printf 'VM_SUITE=%q\n' "$suite"
	printf 'VM_SCENARIOS=%q\n' "${scenarios[*]}"
	printf 'VM_PAM_ARGS=%q\n' "${VM_PAM_ARGS:-}"
	printf 'VM_INSTALL=%q\n' "$install_mode"
	printf 'VM_ENABLE=%q\n' "${VM_ENABLE:-cli}"
} >"$payload/bin/config"
install_rc=0
if [ "$smoke" = 0 ]; then
	# A failed `make install` is reported as a failing check inside the
	# guest (harness scenario); the tests still run if the binaries got
	# installed. Without a package or the binaries there is nothing to test.
	t0=$SECONDS
	if [ "$install_mode" = deb ]; then
		what="make deb"
		[ "$suite" = "$(. /etc/os-release && echo "${VERSION_CODENAME:-}")" ] || what="make deb in a $suite chroot"
		[ -z "${VM_DEB:-}" ] || what="VM_DEB=$VM_DEB"
		log "staging the Debian package ($what)"
		stage_deb "$payload/deb" >"$payload/bin/install.log" 2>&1 || install_rc=$?
		log "$what: $((SECONDS - t0))s (exit $install_rc)"
		want=(usr/libexec/pam_unshare/pam_unshare-init usr/libexec/pam_unshare/pam_unshare_go.so pam_unshare.so usr/sbin/pam-unshare)
		have=$(dpkg-deb -c "$payload"/deb/*.deb 2>/dev/null || true)
	else
		stage_make "$payload/root" >"$payload/bin/install.log" 2>&1 || install_rc=$?
		what="make install DESTDIR=..."
		want=(usr/libexec/pam_unshare/pam_unshare-init usr/libexec/pam_unshare/pam_unshare_go.so pam_unshare.so)
		have=$(cd "$payload/root" && find . 2>/dev/null)
	fi
	if [ "$install_rc" != 0 ]; then
		log "$what failed ($install_rc):"
		tail -n 5 "$payload/bin/install.log" >&2
	fi
	for f in "${want[@]}"; do
		grep -q "/$f\$" <<<"$have" || {
			echo "1..1"
			echo "not ok 1 - $what installs $f"
			tail -n 30 "$payload/bin/install.log" | sed 's/^/# /'
			echo "0 passed, 1 failed"
			exit 1
		}
	done
fi
# The upgrade scenario (run by default, or named) needs the older release.
old_rc=0
if [ "$smoke" = 0 ] && [ "$install_mode" = deb ] &&
	{ [ "${#scenarios[@]}" = 0 ] || [[ " ${scenarios[*]} " == *" upgrade "* ]]; }; then
	t0=$SECONDS
	log "staging the older release for the upgrade scenario"
	stage_old_deb "$payload/olddeb" >"$payload/bin/old-install.log" 2>&1 || old_rc=$?
	log "older release: $((SECONDS - t0))s (exit $old_rc)"
	[ "$old_rc" = 0 ] || tail -n 5 "$payload/bin/old-install.log" >&2
fi
printf 'VM_INSTALL_RC=%q\nVM_BUILT=%q\nVM_OLD_RC=%q\n' "$install_rc" "${what:-}" "$old_rc" >>"$payload/bin/config"
payload_mb=$(($(du -sm "$payload" | cut -f1) + 64))
mkfs.ext4 -q -F -L vmpayload -d "$payload" "$work/payload.img" "${payload_mb}M" >&2

qemu-img create -q -f qcow2 -b "$img/base.img" -F raw "$work/root.qcow2"

case $accel in
auto)
	if kvm_works "$img" "$work/kvm-probe.log"; then accel=kvm; else accel=tcg; fi
	;;
kvm | tcg) ;;
*)
	echo "run.sh: VM_ACCEL must be auto, tcg or kvm" >&2
	exit 2
	;;
esac
if [ "$accel" = kvm ]; then
	accel_args=(-accel kvm -cpu host)
else
	accel_args=(-accel "tcg,thread=multi")
fi

log "booting $suite guest ($accel, $cpus vCPUs, ${mem} MiB, timeout ${timeout_s}s); console: $work/console.log"
t0=$SECONDS
append="root=/dev/vda rw console=ttyS0 fsck.mode=skip panic=-1"
qemu_args=("${accel_args[@]}" -smp "$cpus" -m "$mem" -no-reboot
	-kernel "$img/vmlinuz" -initrd "$img/initrd.img"
	-drive "file=$work/root.qcow2,if=virtio,format=qcow2,cache=unsafe"
	-drive "file=$work/payload.img,if=virtio,format=raw,cache=unsafe"
	-nic none)
# For a kept run: boot the same guest again by hand, without the runner.
{
	echo '#!/bin/bash'
	echo "# Boot this run's guest again, as the run left it (a full run ends"
	echo "# with the uninstall scenario: to reinstall, mount /dev/vdb on /mnt,"
	echo "# dpkg -i /mnt/deb/*.deb and pam-unshare enable su sshd sudo), console"
	echo "# on stdio, test runner masked. Log in as root without a password;"
	echo "# Ctrl-a x quits qemu."
	printf 'exec qemu-system-x86_64'
	printf ' %q' "${qemu_args[@]}" -display none -serial mon:stdio \
		-append "$append systemd.mask=vmtest-boot.service"
	echo
} >"$work/boot-shell.sh"
chmod +x "$work/boot-shell.sh"
# The Debian 13 kernel (6.12) sometimes oopses on an int3 while it patches
# its own code early in boot under multi-threaded TCG, before any test
# runs (seen in one of the first four boots). Such a boot, a panic before the
# payload started, is retried once on a fresh overlay; the console log of
# the first try is kept as console.log.1.
for try in 1 2; do
	qemu_rc=0
	timeout -k 10 "$timeout_s" qemu-system-x86_64 "${qemu_args[@]}" \
		-display none -monitor none -serial "file:$work/console.log" \
		-append "$append" </dev/null >"$work/qemu.log" 2>&1 || qemu_rc=$?
	log "guest ran $((SECONDS - t0))s (qemu exit $qemu_rc)"
	if [ "$try" = 2 ] || ! grep -q 'Kernel panic' "$work/console.log" ||
		grep -q 'vmtest-boot: running payload' "$work/console.log"; then
		break
	fi
	log "the guest kernel panicked before the payload ran: booting once more ($work/console.log.1)"
	mv "$work/console.log" "$work/console.log.1"
	qemu-img create -q -f qcow2 -b "$img/base.img" -F raw "$work/root.qcow2"
	t0=$SECONDS
done
if [ "$qemu_rc" = 124 ] || [ "$qemu_rc" = 137 ]; then
	log "guest did not power off within ${timeout_s}s"
fi

# Read the results back from the payload disk.
out=$work/out
debugfs -R "rdump /out $work" "$work/payload.img" >/dev/null 2>&1 || true

report_failure_context() {
	if [ -f "$out/journal.txt" ]; then
		echo "# ---- guest journal (pam_unshare, su, sudo, sshd, kernel) ----"
		grep -E 'pam_unshare|kernel: .*(segfault|BUG|Oops|traps)|(su|sudo|sshd|sshd-session|pamtester)\[[0-9]+\]: .*(PAM|pam_|fatal|error|session)' \
			"$out/journal.txt" | grep -v 'pam_env(' | tail -n 150 | sed 's/^/# /'
	fi
}

if [ ! -f "$out/done" ]; then
	echo "1..1"
	echo "not ok 1 - guest returned no results (qemu exit $qemu_rc)"
	if grep -q '^VMTEST-TAP-BEGIN' "$work/console.log" 2>/dev/null; then
		echo "# ---- TAP the guest printed before it stopped ----"
		sed -n '/^VMTEST-TAP-BEGIN/,/^VMTEST-TAP-END/p' "$work/console.log" | sed 's/^/# /'
	fi
	echo "# ---- last 60 console lines ($work/console.log) ----"
	tail -n 60 "$work/console.log" 2>/dev/null | sed 's/^/# /'
	report_failure_context
	echo "0 passed, 1 failed"
	keep=1
	exit 1
fi

cat "$out/tap.txt"
passed=$(grep -c '^ok ' "$out/tap.txt" || true)
failed=$(grep -c '^not ok ' "$out/tap.txt" || true)
planned=$(sed -n 's/^1\.\.\([0-9]*\).*/\1/p' "$out/tap.txt" | head -n 1)
if [ -z "$planned" ] || [ "$planned" != $((passed + failed)) ]; then
	echo "not ok $((passed + failed + 1)) - plan ${planned:-missing} does not match $((passed + failed)) results"
	failed=$((failed + 1))
fi
if [ "$failed" != 0 ]; then
	report_failure_context
	keep=1
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
exit
}

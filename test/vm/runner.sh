#!/bin/bash
# Guest side of the VM tests. vmtest-boot.service (built into the image by
# build-image.sh) runs this as root once sshd is up:
#
#   runner.sh PAYLOAD
#
# PAYLOAD is the mounted payload disk: deb/ holds the package (VM_INSTALL=deb)
# or root/ the `make install` tree (VM_INSTALL=make); out/ receives the
# results, which run.sh reads back after power-off:
#   out/tap.txt      TAP from scenarios.sh
#   out/install.log  what dpkg -i (or the copy) printed
#   out/enable.log   what pam-unshare enable printed
#   out/doctor.txt, out/dpkg-r-refused.txt  what pam-unshare doctor and the
#                    refused dpkg -r printed (admin scenario)
#   out/journal.txt  the guest journal of this boot
#   out/done         written last; its absence means the run did not finish
# The TAP also goes to the console, between VMTEST-TAP-BEGIN/END lines.
set -u

payload=${1:?usage: runner.sh PAYLOAD}
bin=$(cd "$(dirname "$0")" && pwd)
out=$payload/out
mkdir -p "$out"
VM_SMOKE=0
VM_SCENARIOS=
VM_INSTALL_RC=0
VM_BUILT=
VM_OLD_RC=0
VM_PAM_ARGS=
VM_INSTALL=deb
VM_ENABLE=cli
# shellcheck source=/dev/null
. "$bin/config"

log() { echo "vmtest: $*" >/dev/console; }

# The PAM services the module is enabled for: what "pam-unshare enable"
# with no service names enables on this guest (su-l through su), plus
# pamtester-unshare, which the pamtester scenario uses.
SERVICES="su su-l sshd sudo sudo-i login cron atd pamtester-unshare"

# install_module installs the package with dpkg -i, as an administrator
# would (the guest has no network; its Depends, libc6 and libpam0g, are
# installed). With VM_INSTALL=make it copies the staged `make install` tree
# into the guest instead, keeping the guest's merged-/usr symlinks
# (/lib -> usr/lib) intact.
install_module() {
	if [ "$VM_INSTALL" = make ]; then
		tar -C "$payload/root" -cf - . | tar -C / -xf - --keep-directory-symlink --no-same-owner
	else
		dpkg -i "$payload"/deb/*.deb
	fi
}

# enable_module makes pam_unshare the last session module of every service
# through which a user gets processes, and of pamtester-unshare (created
# first, empty but for a comment), with `pam-unshare enable`, as the
# documentation tells an administrator to; that also installs the guards.
# With VM_ENABLE=append it appends the line itself.
enable_module() {
	local f line="session required pam_unshare.so${VM_PAM_ARGS:+ $VM_PAM_ARGS}"
	echo "# pamtester service of the pam_unshare VM tests" >/etc/pam.d/pamtester-unshare
	if [ "$VM_ENABLE" = cli ]; then
		pam-unshare enable ${VM_PAM_ARGS:+--options "$VM_PAM_ARGS"} &&
			pam-unshare enable ${VM_PAM_ARGS:+--options "$VM_PAM_ARGS"} pamtester-unshare
	else
		# su-l includes su: its own line would run the module twice.
		for f in ${SERVICES/su-l /}; do
			printf '%s\n' "$line" >>"/etc/pam.d/$f"
		done
	fi
}

# restart_user_managers stops the running user managers of users other
# than root; the next login starts them again, with the guard.
restart_user_managers() {
	local units
	units=$(systemctl list-units --plain --no-legend 'user@*.service' | awk '$1 != "user@0.service" { print $1 }')
	# shellcheck disable=SC2086 # a list of unit names
	[ -z "$units" ] || systemctl stop $units
}

# wait_for_sshd waits until alice can log in over ssh (before the module is
# enabled, so a failure here is the harness's, not the module's).
wait_for_sshd() {
	local _
	for _ in $(seq 1 120); do
		if ssh alice@127.0.0.1 true </dev/null >/dev/null 2>&1; then
			return 0
		fi
		sleep 1
	done
	return 1
}

log "waiting for sshd"
if ! wait_for_sshd; then
	log "sshd not reachable"
	{
		echo "1..1"
		echo "not ok 1 - harness: ssh alice@127.0.0.1 works before the module is enabled"
		ssh -v alice@127.0.0.1 true 2>&1 </dev/null | sed 's/^/# /'
	} >"$out/tap.txt"
else
	if [ "$VM_SMOKE" = 0 ]; then
		log "installing module ($VM_INSTALL)"
		VM_GUEST_INSTALL_RC=0
		install_module >"$out/install.log" 2>&1 || VM_GUEST_INSTALL_RC=$?
		log "enabling module ($VM_ENABLE)"
		VM_ENABLE_RC=0
		enable_module >"$out/enable.log" 2>&1 || VM_ENABLE_RC=$?
		# As enable advises: user managers started before the guard (alice's,
		# from wait_for_sshd) pick it up when they restart. No session is open.
		restart_user_managers >>"$out/enable.log" 2>&1
		cat "$out/install.log" "$out/enable.log" >/dev/console
	fi
	log "running scenarios"
	VM_OUT=$out
	export VM_SMOKE VM_INSTALL_RC VM_BUILT VM_OLD_RC VM_PAM_ARGS VM_INSTALL VM_ENABLE VM_OUT \
		VM_GUEST_INSTALL_RC VM_ENABLE_RC SERVICES
	# The TAP also streams to the console, so a run that never finishes
	# still shows how far it got.
	echo "VMTEST-TAP-BEGIN" >/dev/console
	# shellcheck disable=SC2086 # VM_SCENARIOS is a word list
	bash "$bin/scenarios.sh" $VM_SCENARIOS 2>"$out/scenarios.stderr" </dev/null |
		tee "$out/tap.txt" >/dev/console
	echo "VMTEST-TAP-END" >/dev/console
fi

journalctl -b --no-pager -o short-precise >"$out/journal.txt" 2>&1
date -u +%FT%TZ >"$out/done"
sync

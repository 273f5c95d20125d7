#!/bin/bash
# Guest side of the VM tests. vmtest-boot.service (built into the image by
# build-image.sh) runs this as root once sshd is up:
#
#   runner.sh PAYLOAD
#
# PAYLOAD is the mounted payload disk: root/ holds the `make install` tree,
# out/ receives the results, which run.sh reads back after power-off:
#   out/tap.txt      TAP from scenarios.sh
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
VM_PAM_ARGS=
VM_ENABLE=append
# shellcheck source=/dev/null
. "$bin/config"

log() { echo "vmtest: $*" >/dev/console; }

# install_module copies the staged `make install` tree into the guest,
# keeping the guest's merged-/usr symlinks (/lib -> usr/lib) intact.
install_module() {
	tar -C "$payload/root" -cf - . | tar -C / -xf - --keep-directory-symlink --no-same-owner
}

# enable_module makes pam_unshare the last session module of su, sshd and
# sudo, and adds the pamtester-unshare service used by the scenarios. With
# VM_ENABLE=cli it uses `pam-unshare enable`, as the documentation tells an
# administrator to; otherwise it appends the line itself.
enable_module() {
	local f line="session required pam_unshare.so${VM_PAM_ARGS:+ $VM_PAM_ARGS}"
	if [ "$VM_ENABLE" = cli ]; then
		pam-unshare enable ${VM_PAM_ARGS:+--options "$VM_PAM_ARGS"} su sshd sudo >/dev/console 2>&1
	else
		for f in su sshd sudo; do
			printf '%s\n' "$line" >>"/etc/pam.d/$f"
		done
	fi
	printf '%s\n' "$line" >/etc/pam.d/pamtester-unshare
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
		log "installing module"
		install_module
		enable_module
	fi
	log "running scenarios"
	export VM_SMOKE VM_INSTALL_RC VM_PAM_ARGS
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

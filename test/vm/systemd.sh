# shellcheck shell=bash
# Sessions that systemd itself opens, sourced by scenarios.sh: PID 1 (or,
# from systemd 256, the systemd-executor it spawns) opens a PAM session for
# a unit with PAMName= and then execs the unit's command, so the process
# that opened the session never forks the session leader; the module must
# step aside there, as it does for user@.service (pam_unshare/policy,
# StartedBySystemd). machinectl is in the Debian 13 guest only
# (systemd-container, packages-trixie.txt).
# tmp, T, USER_A, the TAP and wait helpers come from scenarios.sh.
# shellcheck disable=SC2154

# machinectl_shell_view: `machinectl shell USER_A@.host` runs a command in
# a transient service with PAMName=login. The command must run and see the
# host as a login outside the module would (PID 1 is systemd, /proc/self
# resolves), nothing of ours may be left, and the journal says why the
# module stepped aside.
# shellcheck disable=SC2016 # expanded by the shell machinectl starts
machinectl_shell_view() {
	local since out rc
	since=$(date +%s)
	mark_leftovers
	out=$(timeout "$T" machinectl shell -q "$USER_A@.host" /bin/sh -c \
		'echo "pid1=$(cat /proc/1/comm) self=$(readlink /proc/self) pids=$(ls /proc | grep -c "^[0-9]")"' \
		</dev/null 2>&1)
	rc=$?
	echo "machinectl shell (exit $rc): $out"
	journal_since "$since" | grep -E 'pam_unshare|\(sd-|systemd-executor|login\[' | tail -n 15
	[ "$rc" = 0 ] || { fail "machinectl shell failed"; return 1; }
	grep -Eq 'pid1=systemd self=[0-9]+ ' <<<"$out" ||
		{ fail "the command did not see the host's /proc"; return 1; }
	journal_since "$since" | grep pam_unshare | grep -q 'through systemd' ||
		{ fail "no pam_unshare line says it stepped aside"; return 1; }
	host_clean
}

# run0_view: run0 opens its session under PAM service systemd-run0, which
# Debian ships no file for, so libpam uses "other" and pam_unshare is not
# in the stack. Recorded as a diagnostic: what such a session sees.
# shellcheck disable=SC2016 # expanded by the shell run0 starts
run0_view() {
	local out rc
	out=$(timeout "$T" run0 --user="$USER_A" /bin/sh -c \
		'echo "pid1=$(cat /proc/1/comm) pids=$(ls /proc | grep -c "^[0-9]")"' </dev/null 2>&1)
	rc=$?
	echo "run0 --user=$USER_A (exit $rc): $out"
	[ -e /etc/pam.d/systemd-run0 ] && echo "/etc/pam.d/systemd-run0 exists" || echo "no /etc/pam.d/systemd-run0: libpam uses other"
}

# scope_view: `systemd-run --user --scope` from alice's isolated ssh
# session, through the relay. Recorded as a diagnostic (systemd 252 looks
# the caller up by its PID, which names nothing outside the session;
# systemd 257 can send a pidfd instead).
# shellcheck disable=SC2016 # expanded by alice's shell
scope_view() {
	timeout "$T" ssh "$USER_A@127.0.0.1" \
		'systemd-run --user --scope sh -c "echo in scope: \$(cat /proc/self/cgroup)"; echo "systemd-run --user --scope exit $?"' \
		</dev/null 2>&1 | tr -d '\r'
}

sc_systemd_sessions() {
	if ! command -v machinectl >/dev/null; then
		skip "machinectl shell: the module steps aside" "no machinectl in this guest (systemd-container)"
	else
		check "machinectl shell (PAM login session opened through PID 1): the module steps aside, the command sees the host" machinectl_shell_view
	fi
	if command -v run0 >/dev/null; then
		diag "$(run0_view 2>&1)"
	fi
	diag "$(scope_view)"
	diag "$(systemctl --version | head -n 1)"
}

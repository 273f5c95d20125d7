# shellcheck shell=bash
# su-sudo.sh - the module under su and sudo: isolation, exemption, groups,
# options, syslog lines. Sourced by run-tests.sh inside its private world
# (lib.sh, tap.sh).

t_su() {
	check "su -c: ps -e sees only the helper and the session" \
		session_sees_only_itself su pu-alice -c 'ps -e -o pid=,comm='
	check "su - (login shell): ps -e sees only the helper and the session" \
		session_sees_only_itself su - pu-alice -c 'ps -e -o pid=,comm='
	check "after su: nothing left in another PID namespace, host /proc and binfmt_misc intact" nothing_left
}

t_su_root_exempt() {
	check "su to root is exempt and sees the host" sees_host su - root -c 'ps -e -o args='
}

t_su_nohup_gone() {
	su pu-alice -c 'nohup sleep 1002 >/dev/null 2>&1 &' 2>/dev/null
	check "a background nohup sleep is gone after logout" sleep_gone 1002
}

t_sudo() {
	check "sudo -u: ps -e sees only the helper and the session" \
		session_sees_only_itself sudo -u pu-alice ps -e -o pid=,comm=
}

t_groups() {
	pamd_write "only_groups=pu-staff"
	check "only_groups: a user outside the groups is not isolated" sees_host su pu-alice -c 'ps -e -o args='
	check "only_groups: a member is isolated" isolated su pu-carol -c 'ps -e -o pid=,comm='
	pamd_write "exempt_groups=pu-students"
	check "exempt_groups: a member is not isolated" sees_host su pu-bob -c 'ps -e -o args='
	pamd_write ""
}

# command_refused CMD...: CMD (which would create $W/marker) does not run.
command_refused() {
	rm -f "$W"/marker
	"$@" 2>&1
	[ ! -e "$W"/marker ] || fail "the command ran"
}
t_bad_option() {
	local mark
	pamd_write "grace=1 bogus_option"
	mark=$(syslog_mark)
	check "bad module argument: su refuses the session and the command does not run" \
		command_refused su pu-alice -c "touch $W/marker"
	check "bad module argument: sudo refuses too (the command does not run)" \
		command_refused sudo -u pu-alice touch "$W"/marker
	check "bad module argument: pam_open_session returns PAM_SYSTEM_ERR" open_fails pamhost
	check "bad module argument: syslog names it" \
		syslog_has "$mark" 'pam_unshare(su:session): bad module argument "bogus_option": unknown option'
	check "bad module argument: no process left, host /proc intact" no_session_left
	pamd_write ""
}

# syslog_open_close MARK: since MARK, su logged one line at open and one at
# close, and no debug lines.
syslog_open_close() {
	syslog_has "$1" 'pam_unshare(su:session): session closed for user pu-alice' || return 1
	syslog_has "$1" 'pam_unshare(su:session): session opened for user pu-alice: helper pid [0-9]*' || return 1
	! syslog_since "$1" | grep 'pam_unshare.*debug\|entering' || { fail "debug lines without debug"; return 1; }
}
t_syslog_lines() {
	local mark
	mark=$(syslog_mark)
	su pu-alice -c true >/dev/null 2>&1
	check "syslog: one line at open, one at close, no debug lines without debug" syslog_open_close "$mark"
}

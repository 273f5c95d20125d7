# shellcheck shell=bash
# su-sudo.sh - the module under su and sudo: isolation, exemption, groups,
# options, syslog lines. Sourced by run-tests.sh inside its private world
# (lib.sh, tap.sh).

# session_sees_only_itself CMD...: CMD lists the processes it sees (ps -e
# -o pid=,comm=) and sees only the helper and the session.
session_sees_only_itself() {
	local out
	out=$("$@" 2>&1)
	echo "$out"
	sees_only_session "$out"
}
# nothing_left: no process of a session is left, and the host's /proc and
# binfmt_misc are intact.
nothing_left() {
	wait_until 10 no_other_pidns || { fail "left in another PID namespace: $(pidns_others)"; return 1; }
	host_proc_intact || fail "the host's /proc or binfmt_misc changed"
}
t_su() {
	check "su -c: ps -e sees only the helper and the session" \
		session_sees_only_itself su pu-alice -c 'ps -e -o pid=,comm='
	check "su - (login shell): ps -e sees only the helper and the session" \
		session_sees_only_itself su - pu-alice -c 'ps -e -o pid=,comm='
	check "after su: nothing left in another PID namespace, host /proc and binfmt_misc intact" nothing_left
}

# shows REGEX CMD...: a line of CMD's output (shown) matches REGEX.
shows() {
	local regex=$1 out
	shift
	out=$("$@" 2>&1)
	echo "$out"
	grep -Eq "$regex" <<<"$out"
}

# sees_host CMD...: CMD lists process arguments and sees the marker sleep of
# the host: it is not isolated.
sees_host() { shows 'sleep 1001' "$@"; }
t_su_root_exempt() {
	check "su to root is exempt and sees the host" sees_host su - root -c 'ps -e -o args='
}

# sleep_gone ARG: no "sleep ARG" runs (within 3 s).
sleep_gone() {
	wait_until 30 sh -c "! pgrep -f '^sleep $1' >/dev/null" || { fail "still running: $(pgrep -a -f "^sleep $1")"; return 1; }
}
t_su_nohup_gone() {
	su pu-alice -c 'nohup sleep 1002 >/dev/null 2>&1 &' 2>/dev/null
	check "a background nohup sleep is gone after logout" sleep_gone 1002
}

t_sudo() {
	check "sudo -u: ps -e sees only the helper and the session" \
		session_sees_only_itself sudo -u pu-alice ps -e -o pid=,comm=
}

# isolated CMD...: CMD's ps -e -o pid=,comm= shows the helper as PID 1.
isolated() { shows "^ *1 $HELPER_COMM\$" "$@"; }
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

# no_session_left: no helper, nothing in another PID namespace, host /proc
# intact, right now.
no_session_left() {
	no_helpers || { fail "helpers left: $(helpers_alive)"; return 1; }
	no_other_pidns || { fail "left in another PID namespace: $(pidns_others)"; return 1; }
	host_proc_intact || fail "the host's /proc or binfmt_misc changed"
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

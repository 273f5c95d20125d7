# shellcheck shell=bash
# pamhost.sh - sessions of the module in the C host test/pamhost.c: what a
# session sees, how it ends, the helper's shape and trust. Sourced by
# run-tests.sh inside its private world (lib.sh, tap.sh).
# shellcheck disable=SC2153 # HELPER comes from run-tests.sh

pamhost_sees_only_ps() {
	local out
	out=$(pamhost -s pamhost -u pu-alice -- /bin/ps -e -o pid=,comm= 2>&1)
	echo "$out"
	sees_only_session "$out" && [ "$(grep -c . <<<"$out")" -eq 3 ]
}
t_pamhost_ps() {
	check "pamhost: ps -e in the session shows only the helper and ps" pamhost_sees_only_ps
}

# fifty_isolated: pamhost's -t lines are "cycle,open,close,isolated".
fifty_isolated() {
	local out isolated
	out=$(pamhost -s pamhost -u pu-alice -n 50 -t -- /bin/true 2>&1)
	isolated=$(awk -F, '$4 == 1' <<<"$out" | wc -l)
	echo "$isolated of 50 sessions isolated:"
	echo "$out"
	[ "$isolated" -eq 50 ]
}
t_pamhost_50_in_one_process() {
	check "pamhost: 50 open-fork-close cycles in one process, all 50 isolated" fifty_isolated
}

first_commands_see_new_proc() {
	local i out bad=0
	for i in $(seq 100); do
		out=$(pamhost -s pamhost -u pu-alice -- /bin/cat /proc/1/comm 2>/dev/null)
		[ "$out" = "$HELPER_COMM" ] && continue
		bad=$((bad + 1))
		printf 'session %d saw:\n%s\n' "$i" "$out"
	done
	echo "$bad of 100 sessions saw another /proc"
	[ "$bad" = 0 ]
}
t_first_command_sees_new_proc() {
	check "100 fast sessions: the first command always sees the new /proc" first_commands_see_new_proc
}

# A relative confdir only works while pamhost's working directory survives
# each close; the child prints where it starts.
host_keeps_cwd() {
	local out
	out=$(cd /etc && "$PAMHOST" -c pam.d -s pamhost -u pu-alice -n 3 -- /bin/pwd 2>&1)
	echo "$out"
	[ "$(grep -c '^/etc$' <<<"$out")" -eq 3 ]
}
t_host_keeps_cwd() {
	check "the host keeps its working directory across sessions" host_keeps_cwd
}

nofork_host_clean() {
	pamhost -s pamhost -u pu-alice -m nofork -n 5 2>&1 || { fail "pamhost exited $?"; return 1; }
	wait_until 10 no_helpers || { fail "helpers left: $(helpers_alive)"; return 1; }
	no_other_pidns || { fail "left in another PID namespace: $(pidns_others)"; return 1; }
}
t_nofork_host() {
	check "a host that never forks (like pamtester): open and close succeed, nothing is left" nofork_host_clean
}

systemd_user_sees_host() {
	local out
	out=$(pamhost -s systemd-user -u pu-alice -- /bin/ps -e -o args= 2>&1)
	echo "$out"
	grep -q 'open=PAM_SUCCESS' <<<"$out" && grep -q 'sleep 1001' <<<"$out"
}
t_systemd_services() {
	local mark
	printf 'session optional pam_permit.so\nsession required %s helper=%s\n' "$MODULE" "$HELPER" >"$W"/pam.d/systemd-user
	mark=$(syslog_mark)
	check "systemd-user sessions are left alone (PAM_IGNORE): they see the host" systemd_user_sees_host
	check "systemd-user sessions: syslog says why they are not isolated" \
		syslog_has "$mark" 'pam_unshare(systemd-user:session): service systemd-user starts sessions through systemd'
}

noclose_sessions_end() {
	local out
	out=$(pamhost -s pamhost -u pu-alice -m noclose -n 3 -- /bin/true 2>&1)
	echo "$out"
	[ "$(grep -c 'open=PAM_SUCCESS close=SKIPPED child=0' <<<"$out")" -eq 3 ] || return 1
	wait_until 10 no_helpers || { fail "helpers left: $(helpers_alive)"; return 1; }
	no_other_pidns || { fail "left in another PID namespace: $(pidns_others)"; return 1; }
}
t_pam_end_without_close() {
	local mark
	mark=$(syslog_mark)
	check "pam_end without pam_close_session: the session still ends, three times in one process" noclose_sessions_end
	check "pam_end without pam_close_session: syslog says so" \
		syslog_has_n "$mark" 3 'pam_end without pam_close_session: ended the session of user pu-alice$'
}

root_sees_host() {
	local out
	out=$(pamhost -s pamhost -u root -- /bin/ps -e -o pid=,args= 2>&1)
	echo "$out"
	grep -q 'sleep 1001' <<<"$out"
}
t_root_exempt() {
	check "root is exempt by default and sees the host's processes" root_sees_host
}

# The helper of the live session of t_helper_shape.
HELPER_PID=
helper_found() { [ -n "$HELPER_PID" ] || fail "no helper found for a live session"; }
helper_no_inherited_fds() {
	local f fds
	helper_found || return 1
	fds=$(for f in /proc/"$HELPER_PID"/fd/*; do echo "${f##*/} $(readlink "$f")"; done)
	echo "$fds"
	# Allowed: stdio on /dev/null, the control socket, pidfds, signalfd,
	# the session's mount table, which it watches, and the user manager's
	# relay: one more socket, the root of its own tmpfs (not the host's
	# root: another device), and the manager's socket or an inotify watch
	# for it.
	! grep -Eqv '^[012] /dev/null$|^[0-9]+ socket:|anon_inode:\[?(pidfd|signalfd|inotify)|^[0-9]+ /proc/1/mountinfo$|^[0-9]+ /$|^[0-9]+ /run/user/[0-9]+/systemd/private$' <<<"$fds" &&
		grep -q '^3 socket:' <<<"$fds" && [ "$(grep -c ' socket:' <<<"$fds")" -le 2 ] &&
		while read -r f; do
			[ "$(stat -L -c %d "/proc/$HELPER_PID/fd/$f")" != "$(stat -c %d /)" ] || return 1
		done < <(sed -n 's|^\([0-9]*\) /$|\1|p' <<<"$fds")
}
helper_single_threaded() {
	local threads
	helper_found || return 1
	threads=$(awk '/^Threads:/ {print $2}' /proc/"$HELPER_PID"/status)
	echo "threads=$threads"
	[ "$threads" = 1 ]
}
helper_named() {
	local cmdline
	helper_found || return 1
	cmdline=$(tr '\0' ' ' </proc/"$HELPER_PID"/cmdline | sed 's/ $//')
	echo "comm=$(cat /proc/"$HELPER_PID"/comm) cmdline=$cmdline"
	grep -q '^pam_unshare-init .*pamhost pu-alice$' <<<"$cmdline"
}
t_helper_shape() {
	local pid
	pamhost -s pamhost -u pu-alice -- /bin/sleep 2 2>/dev/null &
	pid=$!
	wait_until 30 helper_exists
	HELPER_PID=$(helpers_alive | head -1)
	check "the helper holds no inherited descriptors" helper_no_inherited_fds
	check "the helper is single-threaded" helper_single_threaded
	check "the helper is named $HELPER_COMM and labelled with service and user" helper_named
	wait "$pid"
}

# Five sleeps orphaned at once are reparented to the helper (PPID 1); once
# they end, none may linger as a zombie. The session waits (up to 30 s) for
# the five orphans, ends them, and waits for the helper to reap them: no
# fixed time that a busy machine could overrun.
orphans_reaped() {
	local out
	# shellcheck disable=SC2016 # expanded by the session's shell
	out=$(pamhost -s pamhost -u pu-alice -- /bin/sh -c \
		'orphans() { ps -e -o ppid=,comm= | grep -c "^ *1 sleep$"; }
		 for i in 1 2 3 4 5; do (sleep 60 &); done
		 i=0; while [ "$(orphans)" -lt 5 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
		 echo orphans=$(orphans)
		 pkill -x -f "sleep 60"
		 i=0; while [ "$(orphans)" -gt 0 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
		 ps -e -o stat=,comm=' 2>&1)
	echo "$out"
	grep -q '^orphans=5$' <<<"$out" && ! grep -q '^Z' <<<"$out"
}
t_orphans_reaped() {
	check "five orphaned sleeps are reparented to the helper and reaped: no zombies" orphans_reaped
}

# no_crosstalk SESSIONS SECONDS CMD...: concurrent_crosstalk as a test.
no_crosstalk() {
	local bad
	bad=$(concurrent_crosstalk "$@")
	echo "$bad of $1 sessions saw another or failed"
	[ "$bad" = 0 ]
}
t_concurrent_sessions() {
	check "20 concurrent sessions cannot see each other" \
		no_crosstalk 20 300 "$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -- /bin/sh -c
}

kill_helper_ends_session() {
	local pid helper start
	pamhost -s pamhost -u pu-alice -- /bin/sleep 30 >/dev/null 2>&1 &
	pid=$!
	wait_until 30 helper_exists
	helper=$(helpers_alive | head -1)
	start=$SECONDS
	kill -9 "$helper"
	wait "$pid"
	echo "the session ended $((SECONDS - start)) s after kill -9 of helper $helper"
	[ $((SECONDS - start)) -lt 5 ] || return 1
	wait_until 10 no_other_pidns || { fail "left in another PID namespace: $(pidns_others)"; return 1; }
}
t_kill_helper() {
	check "kill -9 of the helper ends the session at once and leaves nothing" kill_helper_ends_session
}

kill_host_session_lives() {
	local pid alive=no
	pamhost -s pamhost -u pu-alice -- /bin/sleep 3 >/dev/null 2>&1 &
	pid=$!
	# Kill the host only once it has started the leader: a host killed
	# before that rightly takes the namespace with it.
	wait_until 30 leader_started "/bin/sleep 3" || { fail "the leader did not start"; return 1; }
	kill -9 "$pid"
	wait "$pid" 2>/dev/null
	sleep 0.5
	helper_exists && alive=yes
	wait_until 10 no_helpers || { fail "helpers left: $(helpers_alive)"; return 1; }
	wait_until 10 no_other_pidns || { fail "left in another PID namespace: $(pidns_others)"; return 1; }
	[ "$alive" = yes ] || fail "the helper did not outlive the host"
}
t_kill_host() {
	check "kill -9 of the host: the session lives until its leader ends, then nothing is left" kill_host_session_lives
}

# refused_cleanly SERVICE: a pamhost session of pu-alice gets PAM_SYSTEM_ERR
# and leaves no process and the host's /proc intact.
refused_cleanly() {
	local out
	out=$(pamhost -s "$1" -u pu-alice -- /bin/true 2>&1)
	echo "$out"
	grep -q 'open=PAM_SYSTEM_ERR' <<<"$out" || return 1
	no_helpers || { fail "helpers left: $(helpers_alive)"; return 1; }
	no_other_pidns || { fail "left in another PID namespace: $(pidns_others)"; return 1; }
	host_proc_intact || fail "the host's /proc or binfmt_misc changed"
}
t_failed_helper() {
	local mark
	pamd_write ""
	sed -i "s|helper=$HELPER|helper=/bin/false|" "$W"/pam.d/pamhost
	mark=$(syslog_mark)
	check "a helper that fails: PAM_SYSTEM_ERR, no stray process, host untouched" refused_cleanly pamhost
	check "a helper that fails: syslog names the failed step" \
		syslog_has "$mark" 'cannot isolate the session of user pu-alice: .*exited before it was ready'
	pamd_write ""
}

# open_fails SERVICE: a pamhost session of pu-alice gets PAM_SYSTEM_ERR.
open_fails() {
	local out
	out=$(pamhost -s "$1" -u pu-alice -- /bin/true 2>&1)
	echo "$out"
	grep -q 'open=PAM_SYSTEM_ERR' <<<"$out"
}
t_untrusted_helper() {
	local copy=$W/home/pu-alice/pam_unshare-init
	cp "$HELPER" "$copy"
	chown pu-alice "$copy"
	pamd_write "helper=$copy"
	sed -i "s| helper=$HELPER||" "$W"/pam.d/pamhost
	check "a helper owned by a user is refused" open_fails pamhost
	pamd_write ""
}

#!/bin/bash
# run-tests.sh BUILD_DIR - pam_unshare loaded into real PAM clients: the C
# host test/pamhost.c, su and sudo. Prints TAP.
#
# Needs root (it builds namespaces and mounts proc). It re-executes itself
# inside a private mount namespace and builds its own /etc/pam.d, users,
# sudoers and /dev/log there (lib.sh), so the machine is never changed. It
# also runs in a PID namespace of its own, with its own /proc: "nothing is
# left" then means nothing of this run, whatever else runs on the machine.
set -u

TEST_DIR=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${1:-build}" && pwd)
MODULE=$BUILD/pam_unshare.so
HELPER=$BUILD/pam_unshare-init
PAMHOST=$BUILD/pamhost
export TEST_DIR BUILD MODULE HELPER PAMHOST

if [ "$(id -u)" -ne 0 ]; then
	echo "1..0 # SKIP the real-client tests need root"
	exit 0
fi
if [ -z "${PAM_UNSHARE_TEST_NS:-}" ]; then
	PAM_UNSHARE_TEST_NS=1 exec unshare --mount --propagation private \
		--pid --fork --mount-proc --net "$0" "$@"
fi
# A network namespace of our own: the test sshd's port cannot collide with
# anything on the machine, nor with another run of these tests.
ip link set lo up

# shellcheck source=test/lib.sh
. "$TEST_DIR"/lib.sh
# shellcheck source=test/stage.sh
. "$TEST_DIR"/stage.sh
# shellcheck source=test/front.sh
. "$TEST_DIR"/front.sh

W=$(mktemp -d /tmp/pam_unshare-test.XXXXXX)
world_setup "$W"
trap world_teardown EXIT
# pam_unshare.so loads the Go library from its installed path: put this
# build's there, in this mount namespace only.
GO_MODULE=$(stage_go_module "$BUILD" "$W"/stage) || { echo "Bail out! cannot stage the Go library"; exit 1; }
export GO_MODULE

# A host process that no session may see.
sleep 1001 &
MARKER=$!

# sees_only_session OUTPUT: in "ps -e -o pid=,comm=" output, PID 1 is the
# helper and nothing of the host shows: no marker sleep, no daemons, no
# sshd but the session's own post-auth child at PID 2.
sees_only_session() {
	local out=$1
	grep -Eq '^ *1 pam_unshare$' <<<"$out" &&
		! grep -q 'sleep 1001' <<<"$out" &&
		! grep -Eq '(^| )(init|systemd|cron|pamhost|run-tests\.sh|python3)$' <<<"$out" &&
		! grep -Ev '^ *2 sshd$' <<<"$out" | grep -Eq ' sshd$'
}

# concurrent_crosstalk N SECONDS CMD...: run N sessions at once, session I
# as CMD "sleep SECONDS.I & sleep 1; ps -e -o args=". Prints how many
# sessions saw another session's sleep, or not their own (a failed session
# sees nothing).
concurrent_crosstalk() {
	local n=$1 secs=$2 d i bad=0 pids=()
	shift 2
	d=$(mktemp -d)
	for i in $(seq "$n"); do
		"$@" "sleep $secs.$i & sleep 1; ps -e -o args=" >"$d/$i" 2>&1 &
		pids+=($!)
	done
	wait "${pids[@]}"
	for i in $(seq "$n"); do
		if [ "$(grep -c "^sleep $secs\\." "$d/$i")" -ne 1 ] || ! grep -q "^sleep $secs\\.$i\$" "$d/$i"; then
			bad=$((bad + 1))
		fi
	done
	rm -rf "$d"
	echo "$bad"
}

# --- pamhost: the module in a small C host --------------------------------

t_pamhost_ps() {
	local out
	out=$("$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -- /bin/ps -e -o pid=,comm= 2>&1)
	if sees_only_session "$out" && [ "$(grep -c . <<<"$out")" -eq 3 ]; then
		tap 0 "pamhost: ps -e in the session shows only the helper and ps"
	else
		tap 1 "pamhost: ps -e in the session shows only the helper and ps"
		diag "$out"
	fi
}

t_pamhost_50_in_one_process() {
	local out isolated
	out=$("$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -n 50 -t -- /bin/true 2>/dev/null)
	isolated=$(awk -F, '$4 == 1' <<<"$out" | wc -l)
	tap "$([ "$isolated" -eq 50 ] && echo 0 || echo 1)" "pamhost: 50 open-fork-close cycles in one process, 50 isolated (got $isolated)"
}

t_first_command_sees_new_proc() {
	local i out bad=0
	for i in $(seq 100); do
		out=$("$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -- /bin/cat /proc/1/comm 2>/dev/null)
		[ "$out" = pam_unshare ] || bad=$((bad + 1))
	done
	tap "$bad" "100 fast sessions: the first command always sees the new /proc ($bad saw another)"
}

t_host_keeps_cwd() {
	local out
	# A relative confdir only works while pamhost's working directory
	# survives each close; the child prints where it starts.
	out=$(cd /etc && "$PAMHOST" -c pam.d -s pamhost -u pu-alice -n 3 -- /bin/pwd 2>&1)
	[ "$(grep -c '^/etc$' <<<"$out")" -eq 3 ]
	tap $? "the host keeps its working directory across sessions"
	[ "$(grep -c '^/etc$' <<<"$out")" -eq 3 ] || diag "$out"
}

t_nofork_host() {
	local out rc
	out=$("$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -m nofork -n 5 2>&1)
	rc=$?
	[ "$rc" -eq 0 ] && wait_until 2 no_helpers && no_other_pidns
	tap $? "a host that never forks (like pamtester): open and close succeed, nothing is left"
	[ "$rc" -eq 0 ] || diag "$out"
}

t_systemd_services() {
	local out mark
	printf 'session optional pam_permit.so\nsession required %s helper=%s\n' "$MODULE" "$HELPER" >"$W"/pam.d/systemd-user
	mark=$(syslog_mark)
	out=$("$PAMHOST" -c /etc/pam.d -s systemd-user -u pu-alice -- /bin/ps -e -o args= 2>&1)
	grep -q 'open=PAM_SUCCESS' <<<"$out" && grep -q 'sleep 1001' <<<"$out"
	tap $? "systemd-user sessions are left alone (PAM_IGNORE): they see the host"
	sleep 0.2
	syslog_since "$mark" | grep -q 'pam_unshare(systemd-user:session): service systemd-user starts sessions through systemd'
	tap $? "systemd-user sessions: syslog says why they are not isolated"
}

t_pam_end_without_close() {
	local out mark
	mark=$(syslog_mark)
	out=$("$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -m noclose -n 3 -- /bin/true 2>&1)
	[ "$(grep -c 'open=PAM_SUCCESS close=SKIPPED child=0' <<<"$out")" -eq 3 ] && wait_until 2 no_helpers && no_other_pidns
	tap $? "pam_end without pam_close_session: the session still ends, three times in one process"
	sleep 0.2
	[ "$(syslog_since "$mark" | grep -c 'pam_end without pam_close_session: ended the session of user pu-alice$')" -eq 3 ]
	tap $? "pam_end without pam_close_session: syslog says so"
}

t_root_exempt() {
	local out
	out=$("$PAMHOST" -c /etc/pam.d -s pamhost -u root -- /bin/ps -e -o pid=,args= 2>&1)
	grep -q 'sleep 1001' <<<"$out"
	tap $? "root is exempt by default and sees the host's processes"
}

t_helper_shape() {
	local helper fds bad="" threads pid
	"$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -- /bin/sleep 2 2>/dev/null &
	pid=$!
	wait_until 2 helper_exists
	helper=$(helpers_alive | head -1)
	if [ -z "$helper" ]; then
		tap 1 "helper found for a live session"
		wait "$pid"
		return
	fi
	local f
	fds=$(for f in /proc/"$helper"/fd/*; do echo "${f##*/} $(readlink "$f")"; done)
	# Allowed: stdio on /dev/null, the control socket, pidfds, signalfd.
	bad=$(grep -Ev '^[012] /dev/null$|^3 socket:|anon_inode:\[?(pidfd|signalfd)' <<<"$fds")
	threads=$(awk '/^Threads:/ {print $2}' /proc/"$helper"/status)
	[ -z "$bad" ]
	tap $? "the helper holds no inherited descriptors"
	[ -n "$bad" ] && diag "$fds"
	[ "$threads" = 1 ]
	tap $? "the helper is single-threaded (threads=$threads)"
	grep -q '^pam_unshare-init .*pamhost pu-alice$' <<<"$(tr '\0' ' ' </proc/"$helper"/cmdline | sed 's/ $//')"
	tap $? "the helper is named pam_unshare and labelled with service and user"
	wait "$pid"
}

t_orphans_reaped() {
	local out
	# Five sleeps orphaned at once are reparented to the helper (PPID 1);
	# once they end, none may linger as a zombie.
	# shellcheck disable=SC2016 # expanded by the session's shell
	out=$("$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -- /bin/sh -c \
		'for i in 1 2 3 4 5; do (sleep 0.3 &); done; sleep 0.1;
		 echo orphans=$(ps -e -o ppid=,comm= | grep -c "^ *1 sleep");
		 sleep 1; ps -e -o stat=,comm=' 2>&1)
	if grep -q '^orphans=5$' <<<"$out" && ! grep -q '^Z' <<<"$out"; then
		tap 0 "five orphaned sleeps are reparented to the helper and reaped: no zombies"
	else
		tap 1 "five orphaned sleeps are reparented to the helper and reaped: no zombies"
		diag "$out"
	fi
}

t_concurrent_sessions() {
	local bad
	bad=$(concurrent_crosstalk 20 3 "$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -- /bin/sh -c)
	tap "$bad" "20 concurrent sessions cannot see each other ($bad saw another or failed)"
}

t_kill_helper() {
	local pid helper start
	"$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -- /bin/sleep 30 >/dev/null 2>&1 &
	pid=$!
	wait_until 2 helper_exists
	helper=$(helpers_alive | head -1)
	start=$SECONDS
	kill -9 "$helper"
	wait "$pid"
	[ $((SECONDS - start)) -lt 5 ] && wait_until 2 no_other_pidns
	tap $? "kill -9 of the helper ends the session at once and leaves nothing"
}

t_kill_host() {
	local pid
	"$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -- /bin/sleep 2 >/dev/null 2>&1 &
	pid=$!
	# Kill the host only once it has started the leader: a host killed
	# before that rightly takes the namespace with it.
	wait_until 2 leader_started "/bin/sleep 2"
	kill -9 "$pid"
	wait "$pid" 2>/dev/null
	sleep 0.5
	local alive=no
	helper_exists && alive=yes
	wait_until 4 no_helpers && wait_until 1 no_other_pidns && [ "$alive" = yes ]
	tap $? "kill -9 of the host: the session lives until its leader ends, then nothing is left"
	[ "$alive" = yes ] || diag "the helper did not outlive the host"
	no_other_pidns || diag "$(pidns_others)"
}

t_failed_helper() {
	local out mark
	pamd_write ""
	sed -i "s|helper=$HELPER|helper=/bin/false|" "$W"/pam.d/pamhost
	mark=$(syslog_mark)
	out=$("$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -- /bin/true 2>&1)
	grep -q 'open=PAM_SYSTEM_ERR' <<<"$out" && no_helpers && no_other_pidns && host_proc_intact
	tap $? "a helper that fails: PAM_SYSTEM_ERR, no stray process, host untouched"
	sleep 0.2
	syslog_since "$mark" | grep -q 'cannot isolate the session of user pu-alice: .*exited before it was ready'
	tap $? "a helper that fails: syslog names the failed step"
	pamd_write ""
}

t_untrusted_helper() {
	local out copy=$W/home/pu-alice/pam_unshare-init
	cp "$HELPER" "$copy"
	chown pu-alice "$copy"
	pamd_write "helper=$copy"
	sed -i "s| helper=$HELPER||" "$W"/pam.d/pamhost
	out=$("$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -- /bin/true 2>&1)
	grep -q 'open=PAM_SYSTEM_ERR' <<<"$out"
	tap $? "a helper owned by a user is refused"
	pamd_write ""
}

# --- the helper's polling mode, for kernels without pidfd_open -------------

t_poll_mode() {
	local out start pid
	out=$("$BUILD"/pam-unshare run --poll --options "helper=$HELPER" -- /bin/ps -e -o pid=,comm= 2>&1)
	sees_only_session "$out" && wait_until 3 no_helpers && no_other_pidns
	tap $? "polling mode: the session is isolated and ends with its leader"
	# The host dies while its leader runs: the helper outlives the host and
	# ends within its 1 s poll of the leader's end.
	"$BUILD"/pam-unshare run --poll --options "helper=$HELPER" -- /bin/sleep 1.5 >/dev/null 2>&1 &
	pid=$!
	wait_until 2 leader_started "/bin/sleep 1.5"
	kill -9 "$pid"
	wait "$pid" 2>/dev/null
	start=$SECONDS
	helper_exists && wait_until 4 no_helpers && no_other_pidns && [ $((SECONDS - start)) -ge 1 ]
	tap $? "polling mode: after kill -9 of the host the session lives until its leader ends"
}

# --- su and sudo ------------------------------------------------------------

t_su() {
	local out
	out=$(su pu-alice -c 'ps -e -o pid=,comm=' 2>&1)
	sees_only_session "$out"
	tap $? "su -c: ps -e sees only the helper and the session"
	sees_only_session "$out" || diag "$out"
	out=$(su - pu-alice -c 'ps -e -o pid=,comm=' 2>&1)
	sees_only_session "$out"
	tap $? "su - (login shell): ps -e sees only the helper and the session"
	wait_until 2 no_other_pidns && host_proc_intact
	tap $? "after su: nothing left in another PID namespace, host /proc and binfmt_misc intact"
}

t_su_root_exempt() {
	su - root -c 'ps -e -o args=' 2>&1 | grep -q 'sleep 1001'
	tap $? "su to root is exempt and sees the host"
}

t_su_nohup_gone() {
	su pu-alice -c 'nohup sleep 1002 >/dev/null 2>&1 &' 2>/dev/null
	wait_until 3 sh -c '! pgrep -f "^sleep 1002" >/dev/null'
	tap $? "a background nohup sleep is gone after logout"
}

t_sudo() {
	local out
	out=$(sudo -u pu-alice ps -e -o pid=,comm= 2>&1)
	sees_only_session "$out"
	tap $? "sudo -u: ps -e sees only the helper and the session"
	sees_only_session "$out" || diag "$out"
}

t_groups() {
	pamd_write "only_groups=pu-staff"
	su pu-alice -c 'ps -e -o args=' 2>&1 | grep -q 'sleep 1001'
	tap $? "only_groups: a user outside the groups is not isolated"
	su pu-carol -c 'ps -e -o pid=,comm=' 2>&1 | grep -Eq '^ *1 pam_unshare$'
	tap $? "only_groups: a member is isolated"
	pamd_write "exempt_groups=pu-students"
	su pu-bob -c 'ps -e -o args=' 2>&1 | grep -q 'sleep 1001'
	tap $? "exempt_groups: a member is not isolated"
	pamd_write ""
}

t_bad_option() {
	local mark m out
	pamd_write "grace=1 bogus_option"
	mark=$(syslog_mark)
	m=$W/marker
	rm -f "$m"
	su pu-alice -c "touch $m" >/dev/null 2>&1
	[ ! -e "$m" ]
	tap $? "bad module argument: su refuses the session and the command does not run"
	sudo -u pu-alice touch "$m" >/dev/null 2>&1
	[ ! -e "$m" ]
	tap $? "bad module argument: sudo refuses too (the command does not run)"
	out=$("$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -- /bin/true 2>&1)
	grep -q 'open=PAM_SYSTEM_ERR' <<<"$out"
	tap $? "bad module argument: pam_open_session returns PAM_SYSTEM_ERR"
	sleep 0.2
	syslog_since "$mark" | grep -q 'pam_unshare(su:session): bad module argument "bogus_option": unknown option'
	tap $? "bad module argument: syslog names it"
	no_helpers && no_other_pidns && host_proc_intact
	tap $? "bad module argument: no process left, host /proc intact"
	pamd_write ""
}

t_syslog_lines() {
	local mark log
	mark=$(syslog_mark)
	su pu-alice -c true >/dev/null 2>&1
	sleep 0.2
	log=$(syslog_since "$mark")
	grep -q 'pam_unshare(su:session): session opened for user pu-alice: helper pid [0-9]*' <<<"$log" &&
		grep -q 'pam_unshare(su:session): session closed for user pu-alice' <<<"$log" &&
		! grep -q 'pam_unshare.*debug\|entering' <<<"$log"
	tap $? "syslog: one line at open, one at close, no debug lines without debug"
	[ "$(grep -c 'pam_unshare' <<<"$log")" -eq 2 ] || diag "$log"
}

# --- sshd -------------------------------------------------------------------

t_sshd() {
	if ! world_sshd; then
		skip "sshd: ps -e sees only the helper and the session" "openssh-server is not installed"
		return
	fi
	local out
	out=$(timeout 20 "${SSH[@]}" 'ps -e -o pid=,comm=' 2>&1)
	# PID 2 is sshd's post-auth child, which runs the user's commands.
	sees_only_session "$out" && grep -Eq '^ *2 sshd$' <<<"$out"
	tap $? "sshd: ps -e sees only the helper and the session"
	sees_only_session "$out" || diag "$out"
	wait_until 3 no_other_pidns && host_proc_intact
	tap $? "sshd: after logout nothing is left in another PID namespace"
	no_other_pidns || diag "$(ps -eo pid,ppid,stat,wchan:20,args)"
	timeout 20 "${SSH[@]}" 'nohup sleep 1003 >/dev/null 2>&1 &' 2>/dev/null
	wait_until 3 sh -c '! pgrep -f "^sleep 1003" >/dev/null'
	tap $? "sshd: a background nohup sleep is gone after logout"
	out=$(timeout 20 "${SSH[@]}" -tt 'ps -e -o pid=,comm=' 2>&1 | tr -d '\r')
	sees_only_session "$out"
	tap $? "sshd with a pty (ssh -tt): ps -e sees only the helper and the session"
	local bad
	bad=$(concurrent_crosstalk 10 2 timeout 30 "${SSH[@]}")
	tap "$bad" "sshd: 10 concurrent sessions cannot see each other ($bad saw another or failed)"
	wait_until 3 no_other_pidns
	tap $? "sshd: nothing left after 10 concurrent sessions"
}

t_pamhost_ps
t_pamhost_50_in_one_process
t_first_command_sees_new_proc
t_host_keeps_cwd
t_nofork_host
t_systemd_services
t_pam_end_without_close
t_root_exempt
t_helper_shape
t_orphans_reaped
t_concurrent_sessions
t_kill_helper
t_kill_host
t_failed_helper
t_untrusted_helper
t_front_no_session
t_front_untrusted_go
t_front_fork_child
t_poll_mode
t_su
t_su_root_exempt
t_su_nohup_gone
t_sudo
t_groups
t_bad_option
t_syslog_lines
t_sshd

kill "$MARKER"
wait_until 3 no_helpers
tap $? "no helper is left after the whole run"
host_proc_intact
tap $? "the host's /proc and binfmt_misc are intact after the whole run"
tap_finish

# shellcheck shell=bash
# scope-user.sh - tests of per-user namespaces (scope=user, linger), sourced
# by run-tests.sh inside its private world (lib.sh, tap.sh). Each t_user_*
# test starts with no helper running and leaves none.

RUNDIR=/run/pam_unshare
ALICE_SOCK=$RUNDIR/4101.sock
BOB_SOCK=$RUNDIR/4102.sock

# sees_user OUT OWN OTHER: OUT (ps -e -o args=) shows OWN and a per-user
# helper as PID 1's command, and neither OTHER nor anything of the host.
sees_user() {
	echo "$1"
	grep -q "^$2\$" <<<"$1" && ! grep -q "^$3\$" <<<"$1" &&
		! grep -q 'sleep 1001' <<<"$1" && grep -q '^pam_unshare-init .* -U ' <<<"$1"
}

# one_ns_per_user DIR USERS: each DIR/USER/* holds the `readlink
# /proc/self/ns/pid` of sessions of USER: one namespace per user, USERS
# distinct ones in all.
one_ns_per_user() {
	local d=$1 want=$2 u bad=0 all
	for u in "$d"/*/; do
		[ "$(cat "$u"* | grep -o 'pid:\[[0-9]*\]' | sort -u | wc -l)" -eq 1 ] || {
			echo "user ${u%/} saw namespaces: $(cat "$u"* | grep -o 'pid:\[[0-9]*\]' | sort -u | tr '\n' ' ')"
			bad=1
		}
	done
	all=$(cat "$d"/*/* | grep -o 'pid:\[[0-9]*\]' | sort -u | wc -l)
	[ "$all" -eq "$want" ] || { echo "want $want namespaces in all, got $all"; bad=1; }
	return "$bad"
}

# --- tests -----------------------------------------------------------------------

t_user_linger_refused() {
	local out mark
	pamd_write "linger"
	mark=$(syslog_mark)
	out=$(user_session pu-alice /bin/true)
	check "linger without scope=user: the session is refused (PAM_SYSTEM_ERR)" refused "$out"
	check "linger without scope=user: syslog names it" \
		syslog_has "$mark" 'bad module argument "linger": needs scope=user'
	check "linger without scope=user: nothing is left" all_gone
	pamd_write ""
}

t_user_two_sessions() {
	local out p1 p2
	pamd_write "scope=user"
	# The leaders run until the checks are done, however slow the machine.
	user_session pu-alice /bin/sleep 300.01 >/dev/null &
	p1=$!
	user_session pu-bob /bin/sleep 300.02 >/dev/null &
	p2=$!
	wait_until 30 runs "/bin/sleep 300.01"
	wait_until 30 runs "/bin/sleep 300.02"
	out=$(su pu-alice -c 'ps -e -o args=' 2>&1)
	check "scope=user: su as alice sees her other session (pamhost) and nothing of bob or the host" \
		sees_user "$out" "/bin/sleep 300.01" "/bin/sleep 300.02"
	out=$(sudo -u pu-bob ps -e -o args= 2>&1)
	check "scope=user: sudo as bob sees his other session and nothing of alice" \
		sees_user "$out" "/bin/sleep 300.02" "/bin/sleep 300.01"
	check "scope=user: two users, two namespaces" helpers_are 2
	pkill -x -f '/bin/sleep 300\.0[12]'
	wait "$p1" "$p2"
	check "scope=user without linger: the namespaces end with their last sessions" all_gone
	pamd_write ""
}

t_user_no_linger() {
	pamd_write "scope=user"
	su pu-alice -c 'nohup sleep 2003 >/dev/null 2>&1 &' 2>/dev/null
	check "scope=user without linger: a nohup sleep is gone once the last session ends" ends "sleep 2003"
	check "scope=user without linger: no helper is left" all_gone
	pamd_write ""
}

t_user_linger() {
	local out
	pamd_write "scope=user linger"
	su pu-alice -c 'nohup sleep 2004 >/dev/null 2>&1 &' 2>/dev/null
	sleep 0.5
	check "linger: a nohup sleep survives logout" still_runs "sleep 2004"
	out=$(su pu-alice -c 'ps -e -o args=' 2>&1)
	check "linger: the next login sees it" has_line "$out" '^sleep 2004$'
	out=$("${PU[@]}" status --helper "$HELPER" 2>&1)
	check "linger: pam-unshare status shows alice's namespace with linger and no session" \
		has_line "$out" '^pu-alice +user +[0-9]+ +yes +0 '
	check "linger: pam-unshare status lists the lingering job" \
		has_line "$out" "^  pu-alice: lingering pid $(pgrep -f '^sleep 2004$')\$"
	su pu-alice -c 'pkill -x sleep' 2>/dev/null
	check "linger: the next login can kill it" ends "sleep 2004"
	check "linger: the namespace ends once nothing is left in it" all_gone
	pamd_write ""
}

t_user_stop() {
	local out
	pamd_write "scope=user linger"
	su pu-alice -c 'nohup sleep 2010 >/dev/null 2>&1 &' 2>/dev/null
	su pu-bob -c 'nohup sleep 2011 >/dev/null 2>&1 &' 2>/dev/null
	wait_until 30 runs "sleep 2011"
	out=$(su pu-alice -c "${PU[*]} stop --helper $HELPER pu-bob" 2>&1)
	check "alice's pam-unshare stop pu-bob is denied" has_line "$out" 'permission denied'
	check "alice's pam-unshare stop pu-bob: bob's job still runs" still_runs "sleep 2011"
	out=$(su pu-alice -c "$PY $TEST_DIR/rendezvous.py ask $BOB_SOCK K" 2>&1)
	check "alice cannot connect to bob's rendezvous" has_line "$out" '^connect: Permission denied$'
	# Open the directory and socket to everyone: the helper's own peer
	# check must still refuse her. (setpriv, not su: with the directory
	# open, the module rightly refuses every session.)
	chmod 755 $RUNDIR
	chmod 666 $BOB_SOCK
	out=$(as_alice "$PY" "$TEST_DIR"/rendezvous.py ask $BOB_SOCK K 2>&1)
	out+=$'\n'$(as_alice "$PY" "$TEST_DIR"/rendezvous.py ask $BOB_SOCK S 2>&1)
	chmod 700 $RUNDIR
	chmod 600 $BOB_SOCK
	check "with the socket opened to her, alice gets no answer to stop or status (peer uid check)" \
		test "$(grep -c '^answer: none$' <<<"$out")" -eq 2
	check "with the socket opened to her, alice's stop is ignored" still_runs "sleep 2011"
	out=$("${PU[@]}" stop --helper "$HELPER" pu-bob 2>&1)
	check "root: pam-unshare stop pu-bob says so" has_line "$out" '^stopped the namespace of user pu-bob'
	check "root: pam-unshare stop pu-bob ends bob's job" ends "sleep 2011"
	check "stop leaves alice's namespace alone" still_runs "sleep 2010"
	"${PU[@]}" stop --helper "$HELPER" pu-alice >/dev/null 2>&1
	check "stop pu-alice: nothing is left" all_gone
	out=$("${PU[@]}" stop --helper "$HELPER" pu-alice 2>&1)
	check "stop of a user without a namespace says so" has_line "$out" 'pu-alice has no per-user namespace'
	pamd_write ""
}

# A root process other than the helper listens at alice's rendezvous: the
# module must refuse the session rather than join whatever answers.
t_user_fake_helper() {
	local out fake mark
	pamd_write "scope=user"
	[ -d $RUNDIR ] || mkdir -m 700 $RUNDIR
	rm -f $ALICE_SOCK
	$PY "$TEST_DIR"/rendezvous.py fake $ALICE_SOCK &
	fake=$!
	wait_until 30 test -S $ALICE_SOCK
	mark=$(syslog_mark)
	out=$(user_session pu-alice /bin/true)
	check "a rendezvous served by anything but the helper: the session is refused" refused "$out"
	check "a rendezvous served by anything but the helper: syslog says what runs there" \
		syslog_has "$mark" 'check the helper at /run/pam_unshare/4101.sock: peer pid [0-9]* runs .*python'
	kill "$fake"
	wait "$fake" 2>/dev/null
	rm -f $ALICE_SOCK
	check "a rendezvous served by anything but the helper: nothing is left" all_gone
	pamd_write ""
}

# The second session is held on a lock (see users_hold) from the moment it
# has joined until the first's host is killed, however slow the machine.
t_user_kill_host() {
	local a b d out
	pamd_write "scope=user"
	d=$(mktemp -d)
	hold_lock "$d"
	# pamhost itself, not a subshell: its PID is the one to kill.
	"$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -- /bin/sleep 2020 >/dev/null 2>&1 &
	a=$!
	wait_until 30 runs "/bin/sleep 2020"
	user_session pu-alice /bin/sh -c "echo joined; flock -s -w 1800 $d/lock true; ps -e -o args=" \
		>"$W/kill-host.out" {HOLD_FD}<&- &
	b=$!
	wait_until 30 grep -q joined "$W/kill-host.out"
	kill -9 "$a"
	wait "$a" 2>/dev/null
	release_lock
	wait "$b"
	rm -rf "$d"
	out=$(cat "$W/kill-host.out")
	check "kill -9 of one session's host: the user's other session keeps working" opened "$out"
	check "kill -9 of one session's host: its processes are still visible to the other" \
		has_line "$out" '^/bin/sleep 2020$'
	# The killed host no longer counts: the last live session's logout
	# ended the namespace, orphaned sleep included.
	check "kill -9 of a host: it stops counting; the namespace ends with the last live session" \
		ends "/bin/sleep 2020"
	check "kill -9 of a host: nothing is left" all_gone
	pamd_write ""
}

# users_hold DIR USER...: for each USER argument one session at once, each
# printing its PID namespace and then held open until users_release.
# Returns once every session has printed, or after 300 s; the sessions'
# output is in DIR/USER/N. The sessions wait on hold_lock's DIR/lock:
# however slow the machine, no session ends before users_release (a
# namespace that ended early would be made again, and its inode number can
# be reused by another user's), and waiting on a lock, not polling, costs
# the busy machine nothing.
HELD_PIDS=()
users_hold() {
	local d=$1 u i=0
	shift
	HELD_PIDS=()
	hold_lock "$d"
	for u in "$@"; do
		i=$((i + 1))
		mkdir -p "$d/$u"
		# -w: a bound only for a run that died before users_release.
		user_session "$u" /bin/sh -c "readlink /proc/self/ns/pid; flock -s -w 1800 $d/lock true" \
			>"$d/$u/$i" {HOLD_FD}<&- &
		HELD_PIDS+=($!)
	done
	wait_until 300 all_printed "$d" "$i" ||
		diag "users_hold: $(cat "$d"/*/* | grep -c 'pid:\[') of $i sessions started in 300 s"
}

# join_queue SOCK: how many connections wait in the listening socket SOCK's
# accept queue (ss's Recv-Q of a listener).
join_queue() { ss -xlH src "$1" | awk '{ n += $3 } END { print n + 0 }'; }
join_queued() { [ "$(join_queue "$1")" -ge "$2" ]; }

# all_printed DIR N: N sessions under DIR have printed their namespace.
all_printed() { [ "$(cat "$1"/*/* 2>/dev/null | grep -c 'pid:\[')" -eq "$2" ]; }

# users_release DIR: let the held sessions of users_hold DIR end, and wait
# for them.
users_release() {
	release_lock
	wait "${HELD_PIDS[@]}"
}

t_user_concurrent_logins() {
	local d users=()
	pamd_write "scope=user"
	d=$(mktemp -d)
	for _ in $(seq 20); do users+=(pu-alice); done
	users_hold "$d" "${users[@]}"
	users_release "$d"
	check "20 concurrent logins of one user: all succeed" opened "$(cat "$d"/*/*)" 20
	check "20 concurrent logins of one user: exactly one namespace" one_ns_per_user "$d" 1
	check "20 concurrent logins of one user: nothing is left after" all_gone
	rm -rf "$d"
	pamd_write ""
}

t_user_many_users() {
	local d u users=()
	pamd_write "scope=user"
	d=$(mktemp -d)
	for u in $(seq -w 1 20); do
		users+=("pu-u$u" "pu-u$u" "pu-u$u" "pu-u$u" "pu-u$u")
	done
	# All 100 sessions are held open together, so all 20 namespaces are up.
	users_hold "$d" "${users[@]}"
	helper_count >"$d/live"
	users_release "$d"
	check "20 users x 5 sessions: all 100 succeed" opened "$(cat "$d"/pu-*/*)" 100
	check "20 users x 5 sessions: one namespace per user, 20 in all" one_ns_per_user "$d" 20
	check "20 users x 5 sessions: 20 helpers at once while they ran" test "$(cat "$d/live")" -eq 20
	check "20 users x 5 sessions: nothing is left after" all_gone
	rm -rf "$d"
	pamd_write ""
}

# Logins racing the end of the namespace: session A is alone and ends at
# once (without linger its close tears the namespace down), while session B
# of the same user opens a moment later. B must get A's namespace while it
# is alive or a new one, never one that is ending: its command must run and
# exit 0 (in a dying namespace the fork fails or the command is killed).
t_user_race_teardown() {
	local d i pids=()
	pamd_write "scope=user"
	d=$(mktemp -d)
	for i in $(seq 30); do
		user_session pu-alice /bin/true >"$d/a$i" &
		pids+=($!)
		sleep "0.0$((i % 10))"
		user_session pu-alice /bin/sh -c 'sleep 0.05' >"$d/b$i" &
		pids+=($!)
		wait "${pids[@]}"
		pids=()
	done
	check "30 logins racing the teardown of the user's last session: all 60 open, run and close" \
		opened "$(cat "$d"/*)" 60
	check "logins racing teardown: nothing is left" all_gone
	rm -rf "$d"
	pamd_write ""
}

# The same race, made certain: the helper is stopped (SIGSTOP) while the
# last session's close and a new login's join both wait in its queue. On
# SIGCONT it handles the leave first, withdraws the rendezvous, which resets
# the queued join, and tears down; the new login must then create a fresh
# namespace, not land in the dying one.
# Each step waits for what it needs, not a fixed time: A's command runs
# until a lock is released, and B's join is seen in the socket's queue.
t_user_join_while_ending() {
	local d a b hpid n
	pamd_write "scope=user"
	d=$(mktemp -d)
	hold_lock "$d"
	user_session pu-alice /bin/sh -c "readlink /proc/self/ns/pid; exec flock -s -w 1800 $d/lock true" \
		>"$d/a" {HOLD_FD}<&- &
	a=$!
	wait_until 30 grep -q 'pid:' "$d/a"
	hpid=$(helpers_alive | head -1)
	kill -STOP "$hpid"
	release_lock
	# A's command is over; its close waits on the stopped helper.
	wait_until 30 gone "flock -s -w 1800 $d/lock true"
	sleep 0.3
	n=$(join_queue "$ALICE_SOCK")
	user_session pu-alice /bin/sh -c 'readlink /proc/self/ns/pid' >"$d/b" &
	b=$!
	# B has connected and waits too.
	wait_until 30 join_queued "$ALICE_SOCK" "$((n + 1))"
	kill -CONT "$hpid"
	wait "$a" "$b"
	check "a login queued behind the last logout: both succeed" opened "$(cat "$d/a" "$d/b")" 2
	check "a login queued behind the last logout gets a new namespace, not the ending one" \
		test "$(cat "$d/a" "$d/b" | grep -o 'pid:\[[0-9]*\]' | sort -u | wc -l)" -eq 2
	check "a login queued behind the last logout: nothing is left" all_gone
	rm -rf "$d"
	pamd_write ""
}

# --- proc mounts of the host's PID namespace --------------------------------
# The per-user helper detaches them as the per-session one does
# (t_procfs_mounts): before its first session starts, and whenever its
# mount table changes. It reuses PROCFS, procfs_probe_write (the probe
# finds the host's marker `sleep 1001` through a directory and lists the
# proc mounts below $PROCFS in the caller's mount table), ctxt_switches and
# ctxt_switched from procfs.sh.

# probe_clean_of FILE DIR...: the probe whose output is in FILE ran to the
# end, found no marker through any DIR, and found no DIR in its mount table.
probe_clean_of() {
	local out=$1 d
	shift
	cat "$out"
	grep -q '^probe done$' "$out" || { fail "the probe did not run to the end"; return 1; }
	for d in "$@"; do
		! grep -Fxq "visible: $d" "$out" && ! grep -q "^mounted: .* $d " "$out" || return 1
	done
}

# user_procfs_wait: shell text for a session: wait (up to 3 s) until no
# mount below $PROCFS is left in its mount table.
user_procfs_wait() {
	echo "n=0
		while grep -qF ' $PROCFS/' /proc/self/mountinfo && [ \$n -lt 60 ]; do
			sleep 0.05; n=\$((n + 1))
		done"
}

# same_ns FILE FILE: both hold the same `readlink /proc/self/ns/pid`.
same_ns() {
	local a b
	a=$(grep -o 'pid:\[[0-9]*\]' "$1")
	b=$(grep -o 'pid:\[[0-9]*\]' "$2")
	echo "first session: $a, second: $b"
	[ -n "$a" ] && [ "$a" = "$b" ]
}

# user_helper_idle: the per-user helper makes no wakeups while its
# sessions idle; a mount wakes it, then it idles again.
user_helper_idle() { idles_and_wakes "$(helpers_alive | head -1)" 1.5 pu-user-idle; }

t_user_procfs_mounts() {
	local early late flag a out
	PROCFS=$W/user-procfs
	early=$PROCFS/chroot/proc
	late=$PROCFS/chroot-late/proc
	flag=$PROCFS/flag
	mkdir -p "$early" "$late" "$PROCFS/idle" "$flag"
	chmod 1777 "$flag"
	procfs_probe_write
	pamd_write "scope=user"
	mount --bind /proc "$early"
	# The first session creates the namespace; once it runs, root binds
	# /proc again; it probes when the helper has detached that, and stays
	# until the second session (which joins its namespace) has probed.
	user_session pu-alice /bin/sh -c "touch $flag/started
		while [ ! -e $flag/mounted ]; do sleep 0.05; done
		$(user_procfs_wait)
		readlink /proc/self/ns/pid
		sh $PROCFS/probe.sh '$early' '$late'
		touch $flag/probed
		while [ ! -e $flag/done ]; do sleep 0.05; done" >"$PROCFS/first.out" &
	a=$!
	wait_until 30 test -e "$flag/started" || fail "the first session did not start"
	mount --bind /proc "$late"
	touch "$flag/mounted"
	wait_until 30 test -e "$flag/probed" || fail "the first session did not probe"
	check "scope=user: a /proc bound into a chroot before the first login: the session finds no host process through it, and it is not in its mount table" \
		probe_clean_of "$PROCFS/first.out" "$early"
	check "scope=user: a /proc bound into a chroot after login: detached from the running session" \
		probe_clean_of "$PROCFS/first.out" "$late"
	user_session pu-alice /bin/sh -c "$(user_procfs_wait)
		readlink /proc/self/ns/pid
		sh $PROCFS/probe.sh '$early' '$late'" >"$PROCFS/second.out"
	check "scope=user: a second session joins the first one's namespace" \
		same_ns "$PROCFS/first.out" "$PROCFS/second.out"
	check "scope=user: the joining session finds neither /proc bind" \
		probe_clean_of "$PROCFS/second.out" "$early" "$late"
	check "scope=user: the idle per-user helper makes no wakeups; a mount wakes it once, then it idles again" \
		user_helper_idle
	touch "$flag/done"
	wait "$a"
	out=$(sh "$PROCFS/probe.sh" "$early" "$late")
	check "scope=user: outside a session the marker shows through both binds (the checks above can fail)" \
		test "$(grep -c '^visible:' <<<"$out")" -eq 2
	check "scope=user: the host keeps both binds" findmnt -n "$late"
	umount "$early" "$late"
	check "scope=user, proc mounts: nothing is left" all_gone
	pamd_write ""
}

t_user_sshd() {
	local out p
	if [ -z "${SSH+x}" ] && ! world_sshd; then
		skip "scope=user over ssh" "openssh-server is not installed"
		return
	fi
	pamd_write "scope=user"
	timeout 20 "${SSH[@]}" 'sleep 2030' >/dev/null 2>&1 &
	p=$!
	su pu-bob -c 'sleep 3' >/dev/null 2>&1 &
	wait_until 30 runs "sleep 2030"
	out=$(timeout 20 "${SSH[@]}" 'ps -e -o args=' 2>&1)
	check "scope=user: two ssh sessions of alice see each other's processes and nothing of bob" \
		sees_user "$out" "sleep 2030" "sleep 3"
	kill "$p"
	wait "$p" 2>/dev/null
	check "scope=user over ssh: nothing is left after logout" all_gone
	pamd_write ""
}

# kill -9 of sshd's privileged monitor, the process that opened the
# session. Its post-auth child, forked without exec, lives on and may hold
# a copy of the session's control socket, so only the monitor's pidfd can
# tell the helper that the session no longer counts.
t_user_sshd_kill_monitor() {
	local a monitor out
	if [ -z "${SSH+x}" ] && ! world_sshd; then
		skip "scope=user, kill -9 of an ssh session's monitor" "openssh-server is not installed"
		return
	fi
	pamd_write "scope=user"
	timeout 30 "${SSH[@]}" 'sleep 2040' >/dev/null 2>&1 &
	a=$!
	wait_until 30 runs "sleep 2040"
	monitor=$(pgrep -f "^$SSHD_COMM: pu-alice \\[priv\\]\$" | head -1)
	kill -9 "$monitor"
	out=$(timeout 20 "${SSH[@]}" 'echo second; ps -e -o args=' 2>&1)
	check "scope=user, kill -9 of one ssh session's monitor: another ssh session of alice works" \
		has_line "$out" '^second$'
	check "scope=user, kill -9 of a monitor: it stops counting; the namespace ends with the last live session" \
		all_gone
	kill "$a" 2>/dev/null
	wait "$a" 2>/dev/null
	pamd_write ""
}

# --- nesting and upgrades ------------------------------------------------------

# nspid_depth CMDLINE: how many PID namespaces, from ours down, the process
# with exactly this command line is in (its NSpid: entries).
nspid_depth() {
	local p
	p=$(pgrep -x -f "$1" | head -1)
	[ -n "$p" ] || { echo 0; return; }
	awk '/^NSpid:/ { print NF - 1 }' "/proc/$p/status"
}

# A host inside alice's session (her sudo -u pu-bob, which sudoers allows)
# opens a scope=user session for bob while he has no namespace. It must get
# a namespace of that session only: bob's per-user namespace must not be
# made below alice's, published, and joined by his next login.
t_user_nested_host() {
	local d a b out mark
	pamd_write "scope=user"
	d=$(mktemp -d)
	chmod 1777 "$d"
	echo 'pu-alice ALL=(pu-bob) NOPASSWD: /bin/sleep' >>"$W"/sudoers
	# Bob has no namespace; an earlier test's may have left its socket.
	rm -f "$BOB_SOCK"
	mark=$(syslog_mark)
	user_session pu-alice /bin/sh -c "sudo -n -u pu-bob /bin/sleep 2050 >/dev/null 2>&1 &
		while [ ! -e $d/go ]; do sleep 0.05; done
		ps -e -o args=" >"$d/alice" &
	a=$!
	wait_until 30 runs "/bin/sleep 2050" || fail "alice's sudo -u pu-bob did not start"
	check "alice's sudo -u pu-bob in her session (scope=user): no rendezvous of bob is published" \
		no_rendezvous "$BOB_SOCK"
	check "alice's sudo -u pu-bob in her session: syslog says why it gets a namespace of its own" \
		syslog_has "$mark" 'pam_unshare(sudo:session): user pu-bob gets a namespace of this session only, not the per-user one: .*inside an isolated session'
	user_session pu-bob /bin/sleep 2051 >/dev/null &
	b=$!
	wait_until 30 runs "/bin/sleep 2051" || fail "bob's login did not start"
	check "bob's next login: his namespace is a child of the top PID namespace, not one below alice's" \
		test "$(nspid_depth "/bin/sleep 2051")" -eq 2
	touch "$d/go"
	wait "$a"
	out=$(cat "$d/alice")
	check "alice's ps does not show bob's login" not_line "$out" '^/bin/sleep 2051$'
	check "alice's logout ends her sudo's sleep" ends "/bin/sleep 2050"
	check "alice's logout leaves bob's login alone" still_runs "/bin/sleep 2051"
	pkill -x -f "/bin/sleep 2051"
	wait "$b"
	sed -i '/^pu-alice ALL=(pu-bob)/d' "$W"/sudoers
	rm -rf "$d"
	check "nested host: nothing is left" all_gone
	pamd_write ""
}

# no_rendezvous PATH: nothing listens at PATH.
no_rendezvous() {
	! $PY -c 'import socket, sys
socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET).connect(sys.argv[1])' "$1" 2>/dev/null && return 0
	echo "a rendezvous is published at $1"
	return 1
}

# not_line TEXT REGEX: no line of TEXT matches REGEX.
not_line() {
	grep -Eq -- "$2" <<<"$1" || return 0
	echo "a line matches: $2"
	echo "$1"
	return 1
}

# A real helper, as root, published bob's rendezvous from a PID namespace
# below the top one (root's unshare --pid here; before the fix, any host
# inside a session): his top-level login must not join it.
t_user_nested_helper_refused() {
	local n out mark
	pamd_write "scope=user"
	unshare --pid --fork --kill-child --mount-proc \
		"$PAMHOST" -c /etc/pam.d -s pamhost -u pu-bob -- /bin/sleep 2060 >/dev/null 2>&1 &
	n=$!
	wait_until 30 runs "/bin/sleep 2060" || fail "the nested session did not start"
	wait_until 30 test -S "$BOB_SOCK" || fail "the nested host published no rendezvous"
	mark=$(syslog_mark)
	out=$(user_session pu-bob /bin/sh -c 'ps -e -o args=')
	check "a helper published from a nested PID namespace: bob's login does not join it (refused)" refused "$out"
	check "a helper published from a nested PID namespace: bob's login does not see its processes" \
		not_line "$out" '^/bin/sleep 2060$'
	check "a helper published from a nested PID namespace: syslog says where it runs" \
		syslog_has "$mark" 'check the helper at /run/pam_unshare/4102.sock: peer pid [0-9]* runs in a PID namespace nested below another one'
	# unshare --fork ignores SIGTERM while it waits; SIGKILL reaches its
	# child through --kill-child, and that PID 1's end takes the rest.
	kill -KILL "$n"
	wait "$n" 2>/dev/null
	rm -f "$BOB_SOCK"
	check "nested helper: nothing is left" all_gone
	pamd_write ""
}

# exe_replaced: the running per-user helper's executable reads
# "PATH (deleted)".
exe_replaced() {
	local h
	h=$(helpers_alive | head -1)
	readlink "/proc/$h/exe"
	readlink "/proc/$h/exe" | grep -q ' (deleted)$'
}

# dpkg replaces the helper by rename while alice's per-user namespace runs:
# her next login joins it, status lists it, stop ends it. The namespace
# starts with the helper at $UPGRADE_FROM if set (a previous release's
# build), else this build's; this build's is then renamed over it.
t_user_upgrade() {
	local real=$HELPER a out
	mkdir -p "$W"/libexec
	chmod 755 "$W"/libexec
	install -m 0755 "${UPGRADE_FROM:-$real}" "$W"/libexec/pam_unshare-init
	HELPER=$W/libexec/pam_unshare-init
	pamd_write "scope=user"
	user_session pu-alice /bin/sleep 2070 >/dev/null &
	a=$!
	wait_until 30 runs "/bin/sleep 2070" || fail "the first session did not start"
	install -m 0755 "$real" "$HELPER.dpkg-new"
	mv -f "$HELPER.dpkg-new" "$HELPER"
	check "upgrade: the running helper's executable now reads (deleted)" exe_replaced
	out=$(user_session pu-alice /bin/sh -c 'ps -e -o args=')
	check "upgrade: alice's next login opens" opened "$out"
	check "upgrade: alice's next login joins her running namespace" has_line "$out" '^/bin/sleep 2070$'
	out=$("${PU[@]}" status --helper "$HELPER" 2>&1)
	check "upgrade: pam-unshare status lists the namespace with its session" \
		has_line "$out" '^pu-alice +user +[0-9]+ +no +1 '
	check "upgrade: pam-unshare status says its helper runs a replaced file" \
		has_line "$out" '^  pu-alice: helper pid [0-9]+ runs a file replaced since it started'
	out=$("${PU[@]}" stop --helper "$HELPER" pu-alice 2>&1)
	check "upgrade: pam-unshare stop ends it" has_line "$out" '^stopped the namespace of user pu-alice'
	check "upgrade: stop ended the first session's command" ends "/bin/sleep 2070"
	pkill -x -f "/bin/sleep 2070"
	wait "$a"
	HELPER=$real
	check "upgrade: nothing is left" all_gone
	pamd_write ""
}

# The helper passes every check but does not answer (stopped): the login
# is not refused, it gets an isolated namespace of its own.
t_user_join_fallback() {
	local a h out mark
	pamd_write "scope=user"
	user_session pu-alice /bin/sleep 2080 >/dev/null &
	a=$!
	wait_until 30 runs "/bin/sleep 2080" || fail "the first session did not start"
	h=$(helpers_alive | head -1)
	kill -STOP "$h"
	mark=$(syslog_mark)
	out=$(user_session pu-alice /bin/sh -c 'ps -e -o args=')
	kill -CONT "$h"
	check "a helper that does not answer: the login opens all the same" opened "$out"
	check "a helper that does not answer: the login is isolated in a namespace of its own" \
		sees_only_itself_user "$out"
	check "a helper that does not answer: syslog says so" \
		syslog_has "$mark" 'cannot join the per-user namespace of user pu-alice: .*; this session gets a namespace of its own'
	pkill -x -f "/bin/sleep 2080"
	wait "$a"
	check "join fallback: nothing is left" all_gone
	pamd_write ""
}

# sees_only_itself_user OUT: ps output of a session whose PID 1 is a
# per-session helper (no -U) and that shows nothing of alice's other
# session or the host.
sees_only_itself_user() {
	echo "$1"
	grep -q '^pam_unshare-init ' <<<"$1" && ! grep -q '^pam_unshare-init .* -U ' <<<"$1" &&
		! grep -q '/bin/sleep 2080' <<<"$1" && ! grep -q 'sleep 1001' <<<"$1"
}

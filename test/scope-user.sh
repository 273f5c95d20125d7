# shellcheck shell=bash
# scope-user.sh - tests of per-user namespaces (scope=user, linger), sourced
# by run-tests.sh inside its private world (lib.sh). Each t_user_* function
# records its own results.

RUNDIR=/run/pam_unshare
ALICE_SOCK=$RUNDIR/4101.sock
BOB_SOCK=$RUNDIR/4102.sock
PU=("$BUILD"/pam-unshare)

# user_session USER ARGS...: a pamhost session of USER running ARGS (an
# absolute command), output on stdout.
user_session() {
	local u=$1
	shift
	"$PAMHOST" -c /etc/pam.d -s pamhost -u "$u" -- "$@" 2>&1
}

helper_count() { helpers_alive | grep -c .; }
helpers_are() { [ "$(helper_count)" -eq "$1" ]; }
pgrep_args() { pgrep -f "^$1\$" >/dev/null; }
no_pgrep_args() { ! pgrep -f "^$1\$" >/dev/null; }

# The tests below start with no helper and end the same way.
user_reset() {
	local pid
	for pid in $(helpers_alive); do kill -TERM "$pid"; done
	wait_until 5 no_helpers
	rm -rf "$RUNDIR"
}

# --- ps: one namespace per user ----------------------------------------------

# sees_user OUT OWN OTHER: OUT (ps -e -o args=) shows OWN, the helper as
# PID 1's command, and neither OTHER nor anything of the host.
sees_user() {
	grep -q "^$2\$" <<<"$1" && ! grep -q "^$3\$" <<<"$1" &&
		! grep -q 'sleep 1001' <<<"$1" && grep -q '^pam_unshare-init .* -U ' <<<"$1"
}

t_user_two_sessions() {
	local out p1 p2
	pamd_write "scope=user"
	user_session pu-alice /bin/sleep 3.01 >/dev/null &
	p1=$!
	user_session pu-bob /bin/sleep 3.02 >/dev/null &
	p2=$!
	wait_until 3 pgrep_args "/bin/sleep 3.01"
	wait_until 3 pgrep_args "/bin/sleep 3.02"
	out=$(su pu-alice -c 'ps -e -o args=' 2>&1)
	check "scope=user: su as alice sees her other session (pamhost) and nothing of bob or the host" \
		sees_user "$out" "/bin/sleep 3.01" "/bin/sleep 3.02"
	out=$(sudo -u pu-bob ps -e -o args= 2>&1)
	check "scope=user: sudo as bob sees his other session and nothing of alice" \
		sees_user "$out" "/bin/sleep 3.02" "/bin/sleep 3.01"
	check "scope=user: two users, two namespaces" helpers_are 2
	wait "$p1" "$p2"
	check "scope=user: without linger the namespaces end with their last sessions" wait_until 5 no_helpers
	pamd_write ""
}

t_user_no_linger() {
	pamd_write "scope=user"
	su pu-alice -c 'nohup sleep 2003 >/dev/null 2>&1 &' 2>/dev/null
	check "scope=user without linger: a nohup sleep is gone once the last session ends" \
		wait_until 3 no_pgrep_args "sleep 2003"
	check "scope=user without linger: no helper is left" wait_until 3 no_helpers
	pamd_write ""
}

t_user_linger() {
	local out
	pamd_write "scope=user linger"
	su pu-alice -c 'nohup sleep 2004 >/dev/null 2>&1 &' 2>/dev/null
	sleep 0.5
	check "linger: a nohup sleep survives logout" pgrep_args "sleep 2004"
	out=$(su pu-alice -c 'ps -e -o args=' 2>&1)
	check "linger: the next login sees it" grep -q '^sleep 2004$' <<<"$out"
	out=$("${PU[@]}" status --helper "$HELPER" 2>&1)
	check "linger: pam-unshare status shows alice's namespace, linger and the lingering job" \
		grep -Eq '^pu-alice +user +[0-9]+ +yes +0 ' <<<"$out"
	grep -q "pu-alice: lingering pid $(pgrep -f '^sleep 2004$')\$" <<<"$out" || diag "$out"
	su pu-alice -c 'pkill -x sleep' 2>/dev/null
	check "linger: the next login can kill it" wait_until 3 no_pgrep_args "sleep 2004"
	check "linger: the namespace ends once nothing is left in it" wait_until 3 no_helpers
	pamd_write ""
}

t_user_stop() {
	local out
	pamd_write "scope=user linger"
	su pu-alice -c 'nohup sleep 2010 >/dev/null 2>&1 &' 2>/dev/null
	su pu-bob -c 'nohup sleep 2011 >/dev/null 2>&1 &' 2>/dev/null
	wait_until 2 pgrep_args "sleep 2011"
	out=$(su pu-alice -c "${PU[*]} stop --helper $HELPER pu-bob" 2>&1)
	sleep 0.3
	check "alice cannot stop bob's namespace with pam-unshare stop" pgrep_args "sleep 2011"
	grep -q 'permission denied' <<<"$out" || diag "$out"
	out=$(su pu-alice -c "/usr/bin/python3 $TEST_DIR/rendezvous.py ask $BOB_SOCK K" 2>&1)
	check "alice cannot connect to the rendezvous" grep -q '^connect: Permission denied$' <<<"$out"
	# Open the directory to everyone: the helper's own peer check must
	# still refuse her. (setpriv, not su: with the directory open, the
	# module rightly refuses every session.)
	chmod 755 $RUNDIR
	chmod 666 $BOB_SOCK
	out=$(setpriv --reuid=4101 --regid=4101 --init-groups /usr/bin/python3 "$TEST_DIR"/rendezvous.py ask $BOB_SOCK K 2>&1)
	out+=$'\n'$(setpriv --reuid=4101 --regid=4101 --init-groups /usr/bin/python3 "$TEST_DIR"/rendezvous.py ask $BOB_SOCK S 2>&1)
	chmod 700 $RUNDIR
	chmod 600 $BOB_SOCK
	sleep 0.3
	check "with the socket opened to her, alice connects but gets no answer to status or stop (peer uid check)" \
		test "$(grep -c '^answer: none$' <<<"$out")" -eq 2
	diag "$out"
	check "with the socket opened to her, alice's stop is ignored" pgrep_args "sleep 2011"
	out=$("${PU[@]}" stop --helper "$HELPER" pu-bob 2>&1)
	check "root: pam-unshare stop pu-bob ends bob's namespace" wait_until 3 no_pgrep_args "sleep 2011"
	grep -q '^stopped the namespace of user pu-bob' <<<"$out" || diag "$out"
	check "stop leaves alice's namespace alone" pgrep_args "sleep 2010"
	"${PU[@]}" stop --helper "$HELPER" pu-alice >/dev/null 2>&1
	check "stop pu-alice: nothing is left" wait_until 3 no_helpers
	out=$("${PU[@]}" stop --helper "$HELPER" pu-alice 2>&1)
	check "stop of a user without a namespace says so" grep -q 'pu-alice has no per-user namespace' <<<"$out"
	pamd_write ""
}

# A root process other than the helper listens at alice's rendezvous: the
# module must refuse the session rather than join whatever answers.
t_user_fake_helper() {
	local out fake
	pamd_write "scope=user"
	[ -d $RUNDIR ] || mkdir -m 700 $RUNDIR
	rm -f $ALICE_SOCK
	/usr/bin/python3 "$TEST_DIR"/rendezvous.py fake $ALICE_SOCK &
	fake=$!
	wait_until 2 test -S $ALICE_SOCK
	out=$(user_session pu-alice /bin/true)
	check "a rendezvous served by anything but the helper: the session is refused" \
		grep -q 'open=PAM_SYSTEM_ERR' <<<"$out"
	kill "$fake"
	wait "$fake" 2>/dev/null
	user_reset
	pamd_write ""
}

t_user_linger_refused() {
	local out mark
	pamd_write "linger"
	mark=$(syslog_mark)
	out=$(user_session pu-alice /bin/true)
	check "linger without scope=user: PAM_SYSTEM_ERR" grep -q 'open=PAM_SYSTEM_ERR' <<<"$out"
	sleep 0.2
	check "linger without scope=user: syslog names it" \
		grep -q 'bad module argument "linger": needs scope=user' <<<"$(syslog_since "$mark")"
	check "linger without scope=user: nothing is left" no_helpers
	pamd_write ""
}

# --- concurrency ---------------------------------------------------------------

# ns_ids DIR: the distinct PID namespaces the sessions wrote to DIR/*.
ns_ids() { cat "$1"/* | grep -o 'pid:\[[0-9]*\]' | sort -u; }

t_user_concurrent_logins() {
	local d i pids=() ok
	pamd_write "scope=user"
	d=$(mktemp -d)
	for i in $(seq 20); do
		user_session pu-alice /bin/sh -c 'readlink /proc/self/ns/pid; sleep 1.5' >"$d/$i" &
		pids+=($!)
	done
	wait "${pids[@]}"
	ok=$(grep -l 'open=PAM_SUCCESS close=PAM_SUCCESS child=0' "$d"/* | wc -l)
	check "20 concurrent logins of one user: all succeed ($ok)" test "$ok" -eq 20
	check "20 concurrent logins of one user: exactly one namespace" test "$(ns_ids "$d" | wc -l)" -eq 1
	check "20 concurrent logins of one user: nothing left after" wait_until 5 no_helpers
	rm -rf "$d"
	pamd_write ""
}

t_user_many_users() {
	local d u i pids=() ok per_user=0
	pamd_write "scope=user"
	d=$(mktemp -d)
	for u in $(seq -w 1 20); do
		for i in 1 2 3 4 5; do
			mkdir -p "$d/$u"
			user_session "pu-u$u" /bin/sh -c 'readlink /proc/self/ns/pid; sleep 3' >"$d/$u/$i" &
			pids+=($!)
		done
	done
	sleep 1.5
	local live
	live=$(helper_count)
	wait "${pids[@]}"
	ok=$(cat "$d"/*/* | grep -c 'open=PAM_SUCCESS close=PAM_SUCCESS child=0')
	for u in $(seq -w 1 20); do
		[ "$(ns_ids "$d/$u" | wc -l)" -eq 1 ] && per_user=$((per_user + 1))
	done
	check "20 users x 5 sessions: all 100 succeed ($ok)" test "$ok" -eq 100
	check "20 users x 5 sessions: one namespace per user ($per_user of 20)" test "$per_user" -eq 20
	check "20 users x 5 sessions: 20 namespaces in all, 20 helpers ($live)" \
		test "$(cat "$d"/*/* | grep -o 'pid:\[[0-9]*\]' | sort -u | wc -l)" -eq 20 -a "$live" -eq 20
	check "20 users x 5 sessions: nothing left after" wait_until 10 no_helpers
	rm -rf "$d"
	pamd_write ""
}

t_user_kill_host() {
	local a b out
	pamd_write "scope=user"
	# pamhost itself, not a subshell: its PID is the one to kill.
	"$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -- /bin/sleep 2020 >/dev/null 2>&1 &
	a=$!
	wait_until 3 pgrep_args "/bin/sleep 2020"
	user_session pu-alice /bin/sh -c 'sleep 1; ps -e -o args=' >"$W/kill-host.out" &
	b=$!
	sleep 0.3
	kill -9 "$a"
	wait "$a" 2>/dev/null
	wait "$b"
	out=$(cat "$W/kill-host.out")
	check "kill -9 of one session's host: the user's other session keeps working" \
		grep -q 'open=PAM_SUCCESS close=PAM_SUCCESS child=0' <<<"$out"
	grep -q '^/bin/sleep 2020$' <<<"$out" || diag "$out"
	# The killed host no longer counts: the last live session's logout
	# ended the namespace, orphaned sleep included.
	check "kill -9 of a host: it stops counting, the namespace ends with the last live session" \
		wait_until 4 no_pgrep_args "/bin/sleep 2020"
	check "kill -9 of a host: nothing left" wait_until 3 no_helpers
	pamd_write ""
}

t_user_sshd() {
	local out p
	if [ -z "${SSH+x}" ]; then
		skip "scope=user over ssh" "sshd is not running"
		return
	fi
	pamd_write "scope=user"
	timeout 20 "${SSH[@]}" 'sleep 2030' >/dev/null 2>&1 &
	p=$!
	su pu-bob -c 'sleep 3' >/dev/null 2>&1 &
	wait_until 5 pgrep_args "sleep 2030"
	out=$(timeout 20 "${SSH[@]}" 'ps -e -o args=' 2>&1)
	check "scope=user: two ssh sessions of alice see each other's processes and nothing of bob" \
		sees_user "$out" "sleep 2030" "sleep 3"
	sees_user "$out" "sleep 2030" "sleep 3" || diag "$out"
	kill "$p"
	wait "$p" 2>/dev/null
	check "scope=user over ssh: nothing left after logout" wait_until 6 no_helpers
	t_user_sshd_kill_monitor
	pamd_write ""
}

# kill -9 of sshd's privileged monitor, the process that opened the
# session. Its post-auth child, forked without exec, lives on and may hold
# a copy of the session's control socket, so only the monitor's pidfd can
# tell the helper that the session no longer counts.
t_user_sshd_kill_monitor() {
	local a monitor out
	timeout 30 "${SSH[@]}" 'sleep 2040' >/dev/null 2>&1 &
	a=$!
	wait_until 5 pgrep_args "sleep 2040"
	monitor=$(pgrep -f '^sshd: pu-alice \[priv\]$' | head -1)
	kill -9 "$monitor"
	out=$(timeout 20 "${SSH[@]}" 'echo second; ps -e -o args=' 2>&1)
	check "scope=user, kill -9 of one ssh session's monitor: another ssh session of alice works" \
		grep -q '^second$' <<<"$out"
	check "scope=user, kill -9 of a monitor: it stops counting, so the namespace ends with the last live session" \
		wait_until 6 no_helpers
	no_helpers || diag "$(ps -eo pid,ppid,args)"
	kill "$a" 2>/dev/null
	wait "$a" 2>/dev/null
}

t_user_all() {
	user_reset
	t_user_linger_refused
	t_user_two_sessions
	t_user_no_linger
	t_user_linger
	t_user_stop
	t_user_fake_helper
	t_user_kill_host
	t_user_concurrent_logins
	t_user_many_users
	t_user_sshd
}

# shellcheck shell=bash
# limits.sh - what the helper does when a user pushes on it: the relay's
# cap on connections and the user's process limit (nsinit/init/relay.c),
# listeners paused when accept() runs out of descriptors, and the helper's
# own descriptor limit (nsinit/init/fd.c, main.c). Sourced by run-tests.sh
# inside its private world (lib.sh, tap.sh), after relay.sh, whose helpers it
# uses. Each t_limits_* test starts with no helper running and leaves none.

# The relay's cap, from its one definition.
RELAY_MAX=$(sed -n 's/^#define RELAY_MAX_CONNS \([0-9]*\)$/\1/p' "$TEST_DIR/../nsinit/init/init.h")
# Connections over the cap that a flood opens.
RELAY_OVER=8
# A helper that spins takes a core: about 100 ticks a second, measured
# 200 over 10 of the logins below on an idle 2-core machine. One that
# waits takes none but the few of its retries (0 measured). The window is
# however long some logins of another user take, each running `sleep 0.3`:
# 2 s or more, and longer on a busy machine, whose logins are slower, so
# the bound holds a spinning helper to a tenth of what it takes.
LIMITS_TICKS_MAX=20

# relay_kids: how many relay children run (0 if none).
relay_kids() { pgrep -c -x pam_unshare-bus || true; }
relay_kids_are() { [ "$(relay_kids)" -eq "$1" ]; }
# relay_kids_reach N: wait until N relay children run, and stay there.
relay_kids_reach() {
	wait_until 30 relay_kids_are "$1" && return 0
	echo "$(relay_kids) relay children, want $1"
	return 1
}

# hold_shows OPEN CLOSED: the last status line of manager.py hold.
hold_shows() { [ "$(tail -n 1 "$W/hold.out" 2>/dev/null)" = "open=$1 closed=$2" ]; }
hold_reaches() {
	wait_until 20 hold_shows "$1" "$2" && return 0
	echo "manager.py hold printed:"
	cat "$W/hold.out"
	return 1
}

# kid_limits_reach PROCESSES FILES: each relay child runs with the soft
# process and descriptor limits of the client that connected (waiting a
# moment for a child still setting itself up).
kid_limits_reach() {
	wait_until 30 kid_limits_are "$@" >/dev/null && return 0
	kid_limits_are "$@"
}
kid_limits_are() {
	local k rc=0 got
	for k in $(pgrep -x pam_unshare-bus); do
		got=$(awk '/^Max processes/ { p = $3 } /^Max open files/ { f = $4 } END { print p, f }' "/proc/$k/limits")
		[ "$got" = "$1 $2" ] && continue
		echo "relay child $k: limits $got, want $1 $2"
		rc=1
	done
	return "$rc"
}

# A session that holds RELAY_MAX + RELAY_OVER connections (as alice, with
# low limits of her own), waits for $W/again after releasing them, and
# then calls the manager once more.
t_limits_relay_cap() {
	local pid mark
	: >"$W/manager.log"
	: >"$W/hold.out"
	chmod 666 "$W/hold.out" # alice's session writes it
	rm -f "$W/release" "$W/again"
	runtime_up
	manager_start gen6
	mark=$(syslog_mark)
	user_session pu-alice "${AS_ALICE[@]}" /bin/sh -c "prlimit --nproc=500:600 --nofile=77:88 \
$PY $MANAGER_PY hold $MANAGER_SOCK $((RELAY_MAX + RELAY_OVER)) $W/release >$W/hold.out; \
while [ ! -e $W/again ]; do sleep 0.1; done; $PY $MANAGER_PY call $MANAGER_SOCK 10" >"$W/cap.out" 2>&1 &
	pid=$!
	check "relay cap: of $((RELAY_MAX + RELAY_OVER)) connections held in a session, $RELAY_MAX stay open and $RELAY_OVER are closed at once" \
		hold_reaches "$RELAY_MAX" "$RELAY_OVER"
	check "relay cap: the helper runs $RELAY_MAX relay children, no more" relay_kids_reach "$RELAY_MAX"
	check "relay cap: each relay child has the client's process and descriptor limits, not the helper's" \
		kid_limits_reach 500 77
	touch "$W/release"
	check "relay cap: the relay children end with their connections" wait_until 10 relay_gone
	touch "$W/again"
	wait "$pid"
	check "relay cap: afterwards a new connection reaches the manager" \
		has_line "$(cat "$W/cap.out")" '^ok peer-pid=1 reply=gen6 fd=from-gen6$'
	check "relay cap: one syslog line for the whole flood" \
		syslog_has_n "$mark" 1 "the user manager's relay serves $RELAY_MAX connections, its most"
	check "relay cap: nothing is left" wait_until 10 no_helpers
	runtime_down
}

# A client whose process limit alice has already reached: the relay child,
# which runs as alice, refuses to serve it, as her own fork would fail.
relay_nproc_refused() {
	local out
	out=$(user_session pu-alice "${AS_ALICE[@]}" prlimit --nproc=1:1 "$PY" "$MANAGER_PY" call "$MANAGER_SOCK")
	echo "$out"
	has_line "$out" '^closed by peer pid 1$'
}

t_limits_relay_nproc() {
	: >"$W/manager.log"
	runtime_up
	manager_start gen7
	check "relay: a client at its process limit (prlimit --nproc=1) is not served" relay_nproc_refused
	check "relay: the same client without that limit is served" \
		has_line "$(alice_call)" '^ok peer-pid=1 reply=gen7 fd=from-gen7$'
	check "relay: nothing is left" wait_until 10 no_helpers
	runtime_down
}

# --- out of descriptors ----------------------------------------------------------

# cpu_ticks PID: user and system time of PID, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# lowest_free_fd PID: the descriptor number PID's next open would get.
lowest_free_fd() {
	local n=0
	while [ -e "/proc/$1/fd/$n" ]; do n=$((n + 1)); done
	echo "$n"
}

# starve PID: lower PID's soft descriptor limit to its lowest free
# descriptor, so that its next accept() fails with EMFILE. Prints the
# limit it had, for feed.
starve() {
	prlimit --pid "$1" --nofile --raw --noheadings -o SOFT,HARD | tr -s ' ' ':' | sed 's/^://'
	prlimit --pid "$1" --nofile="$(lowest_free_fd "$1")":
}
feed() { prlimit --pid "$1" --nofile="$2"; }

# logins_cost_helper PID N: N logins of pu-bob, each running `sleep 0.3`;
# prints how many CPU ticks helper PID used meanwhile.
logins_cost_helper() {
	local t0 t1
	t0=$(cpu_ticks "$1")
	for _ in $(seq "$2"); do
		user_session pu-bob /bin/sleep 0.3 >/dev/null
	done
	t1=$(cpu_ticks "$1")
	echo $((t1 - t0))
}

helper_waits() {
	echo "the helper used $1 ticks during $2 logins (at most $LIMITS_TICKS_MAX)"
	[ "$1" -le "$LIMITS_TICKS_MAX" ]
}

# The relay of a per-session helper whose descriptors ran out: the client's
# connection stays queued, the helper does not spin, and once it may open
# descriptors again the queued client is served.
t_limits_relay_emfile() {
	local pid h old mark ticks client
	: >"$W/manager.log"
	rm -f "$W/done"
	runtime_up
	manager_start gen8
	user_session pu-alice /bin/sh -c "while [ ! -e $W/done ]; do sleep 0.1; done" >/dev/null &
	pid=$!
	check "relay, out of descriptors: a session runs with the manager's socket covered" wait_until 30 session_covered
	h=$(helpers_alive | head -n 1)
	old=$(starve "$h")
	mark=$(syslog_mark)
	in_session_ns setpriv --reuid=4101 --regid=4101 --init-groups "$PY" "$MANAGER_PY" call "$MANAGER_SOCK" >"$W/emfile.out" 2>&1 &
	client=$!
	check "relay, out of descriptors: the helper says so in one syslog line" \
		syslog_has_n "$mark" 1 "cannot accept on the user manager's relay: .*\(open files\|descriptors available\)"
	ticks=$(logins_cost_helper "$h" 10)
	check "relay, out of descriptors: the helper does not spin" helper_waits "$ticks" 10
	diag "relay, out of descriptors: the helper used $ticks ticks during 10 logins"
	check "relay, out of descriptors: the client is still waiting, not refused" test ! -s "$W/emfile.out"
	feed "$h" "$old"
	wait "$client"
	check "relay, out of descriptors: once the helper may open descriptors again, the queued client is served" \
		has_line "$(cat "$W/emfile.out")" '^ok peer-pid=1 reply=gen8 fd=from-gen8$'
	check "relay, out of descriptors: still one syslog line" \
		syslog_has_n "$mark" 1 "cannot accept on the user manager's relay"
	touch "$W/done"
	wait "$pid"
	check "relay, out of descriptors: nothing is left" wait_until 10 no_helpers
	runtime_down
}

# A per-user helper whose descriptors ran out: a login that wants to join
# waits, the helper does not spin, and when another session of the user
# ends (freeing two descriptors) the waiting login joins.
t_limits_user_emfile() {
	local pa pb pc h mark ticks
	rm -f "$W/done-a" "$W/done-b"
	pamd_write "scope=user"
	user_session pu-alice /bin/sh -c "while [ ! -e $W/done-a ]; do sleep 0.1; done" >/dev/null &
	pa=$!
	check "scope=user, out of descriptors: the first session runs" wait_until 30 helper_exists
	user_session pu-alice /bin/sh -c "while [ ! -e $W/done-b ]; do sleep 0.1; done" >/dev/null &
	pb=$!
	check "scope=user, out of descriptors: a second session joins" wait_until 30 runs "/bin/sh -c while \[ ! -e $W/done-b \].*"
	h=$(helpers_alive | head -n 1)
	starve "$h" >/dev/null
	mark=$(syslog_mark)
	user_session pu-alice /bin/sh -c "ps -e -o args" >"$W/third.out" &
	pc=$!
	check "scope=user, out of descriptors: the helper says so in one syslog line" \
		syslog_has_n "$mark" 1 "cannot accept on the rendezvous socket: .*\(open files\|descriptors available\)"
	# Fewer logins: the waiting login gives up after 10 s.
	ticks=$(logins_cost_helper "$h" 7)
	check "scope=user, out of descriptors: the helper does not spin" helper_waits "$ticks" 7
	diag "scope=user, out of descriptors: the helper used $ticks ticks during 7 logins"
	touch "$W/done-b"
	wait "$pb"
	wait "$pc"
	check "scope=user, out of descriptors: when a session ends, the waiting login joins the namespace" \
		has_line "$(cat "$W/third.out")" "^/bin/sh -c while \[ ! -e $W/done-a \]"
	touch "$W/done-a"
	wait "$pa"
	pamd_write ""
	check "scope=user, out of descriptors: still one syslog line" \
		syslog_has_n "$mark" 1 "cannot accept on the rendezvous socket"
	check "scope=user, out of descriptors: nothing is left" wait_until 10 no_helpers
}

# The helper raises its soft descriptor limit to the hard one: a host with
# a low soft limit (sshd's is 1024) would cap a per-user helper at about
# half as many sessions.
helper_nofile_raised() {
	local h got
	h=$(helpers_alive | head -n 1)
	got=$(awk '/^Max open files/ { print $4, $5 }' "/proc/$h/limits")
	echo "the helper's descriptor limits: $got"
	[ "$got" = "4096 4096" ]
}

t_limits_helper_nofile() {
	rm -f "$W/done"
	local pid
	prlimit --nofile=64:4096 "$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -- \
		/bin/sh -c "while [ ! -e $W/done ]; do sleep 0.1; done" >/dev/null 2>&1 &
	pid=$!
	check "a host with a soft descriptor limit of 64: the session runs" wait_until 30 helper_exists
	check "the helper's soft descriptor limit is raised to the hard one" helper_nofile_raised
	touch "$W/done"
	wait "$pid"
	check "nothing is left" wait_until 10 no_helpers
}

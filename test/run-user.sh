# shellcheck shell=bash
# run-user.sh - "pam-unshare run --user" never shares the caller's
# terminal (cmd/pam-unshare/runpty.go). Sourced by run-tests.sh inside its
# private world (lib.sh, tap.sh).
#
# The caller is a root shell on a terminal of its own (terminal.py drive:
# a new pseudo-terminal as its controlling terminal, as a login has). The
# command, run as pu-alice, is terminal.py probe: it reports its terminal
# and session and pushes a command line into stdin and /dev/tty with
# TIOCSTI, which this kernel allows on a process's controlling terminal
# (dev.tty.legacy_tiocsti, Linux 6.1 always). Afterwards the caller counts
# the bytes waiting on its own terminal: what root's shell would have read
# as typed by root.

TERMINAL_PY=$TEST_DIR/terminal.py
INJECTED='echo typed-by-pu-alice'

# run_user_caller REDIRECT: the caller's script: its own terminal and
# session, "run --user pu-alice" of the probe with REDIRECT (empty: the
# caller's terminal as stdio), run's exit status, the bytes left waiting.
run_user_caller() {
	cat <<-EOF
		read -r _ _ _ _ _ sid tty_nr _ </proc/\$\$/stat
		echo "caller: sid=\$sid tty_nr=\$tty_nr"
		"$BUILD"/pam-unshare run --options helper=$HELPER --user pu-alice -- \
			$PY $TERMINAL_PY probe '$INJECTED
		' $1
		echo "run-rc=\$?"
		$PY $TERMINAL_PY pending
	EOF
}

# field OUTPUT NAME: the value of NAME= in OUTPUT's probe (or caller) line.
field() { grep -o "$2=[0-9-]*" <<<"$1" | head -n 1 | cut -d= -f2; }

# run_user_own_terminal: on a terminal, the command's output reaches the
# caller, it runs on a terminal of its own as the leader of its own
# session, nothing it pushes reaches the caller, its status passes through.
run_user_own_terminal() {
	local out probe caller
	out=$(run_user_caller "" >"$W"/caller.sh && "$PY" "$TERMINAL_PY" drive bash "$W"/caller.sh | tr -d "\r")
	echo "$out"
	probe=$(grep '^probe: uid=' <<<"$out") || { fail "the command's output did not reach the caller"; return 1; }
	caller=$(grep '^caller: ' <<<"$out")
	[ "$(field "$probe" uid)" = 4101 ] || { fail "not run as pu-alice"; return 1; }
	[ "$(field "$probe" tty_nr)" != 0 ] || { fail "the command has no terminal"; return 1; }
	[ "$(field "$probe" tty_nr)" != "$(field "$caller" tty_nr)" ] || { fail "the command shares the caller's terminal"; return 1; }
	[ "$(field "$probe" sid)" = "$(field "$probe" pid)" ] || { fail "the command is not the leader of its own session"; return 1; }
	grep -qx 'pending=0' <<<"$out" || { fail "input pushed by the command waits on the caller's terminal"; return 1; }
	grep -qx 'run-rc=7' <<<"$out" || fail "the command's exit status 7 did not pass through"
}

# run_user_no_terminal: with stdio that is no terminal, the command has
# no controlling terminal at all: /dev/tty does not open, and nothing it
# pushes reaches the caller's terminal.
run_user_no_terminal() {
	local out probe
	out=$(run_user_caller "</dev/null >$W/probe.out 2>&1" >"$W"/caller.sh && "$PY" "$TERMINAL_PY" drive bash "$W"/caller.sh | tr -d "\r")
	echo "$out"
	probe=$(cat "$W"/probe.out)
	echo "$probe"
	[ "$(field "$probe" tty_nr)" = 0 ] || { fail "the command has a controlling terminal"; return 1; }
	grep -q '^probe: /dev/tty: No such device or address' <<<"$probe" || { fail "/dev/tty opened"; return 1; }
	[ "$(field "$probe" sid)" = "$(field "$probe" pid)" ] || { fail "the command is not the leader of its own session"; return 1; }
	grep -qx 'pending=0' <<<"$out" || { fail "input pushed by the command waits on the caller's terminal"; return 1; }
	grep -qx 'run-rc=7' <<<"$out" || fail "the command's exit status 7 did not pass through"
}

t_run_user_terminal() {
	check "run --user on a terminal: own terminal and session, output relayed, TIOCSTI cannot reach the caller, status passes" \
		run_user_own_terminal
	check "run --user without a terminal: no controlling terminal, TIOCSTI cannot reach the caller, status passes" \
		run_user_no_terminal
	check "after run --user: nothing left" no_session_left
}

# shellcheck shell=bash
# planted.sh - doctor's systemctl --user check trusts nothing a user can
# plant (cmd/pam-unshare/managerpeer.go). Sourced by run-tests.sh inside
# its private world (lib.sh, tap.sh, relay.sh for alice's runtime
# directory).
#
# /run/user/UID belongs to the user: pu-alice puts her own listener at
# systemd/private, where her manager's socket would be. One answers every
# connection with escape sequences (a window title, a screen clear, a
# colour) and then reads forever; the other never accepts. doctor must
# skip her, saying the socket is not her manager's, print no control
# character, and finish at once (the connect that checks the listener is
# its only contact: no systemctl runs against the socket).

# planted_start MODE: pu-alice's fake manager, noisy or silent.
planted_start() {
	as_alice "$PY" -c '
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX)
# Listening before the socket appears at its path: a client never finds
# it there and refused.
s.bind(sys.argv[1] + ".new")
s.listen(64)
os.rename(sys.argv[1] + ".new", sys.argv[1])
while sys.argv[2] == "silent":
    time.sleep(3600)
while True:
    c, _ = s.accept()
    try:
        c.sendall(b"\x1b]0;pwned\x07\x1b[2J\x1b[31mEVIL\r\n")
    except OSError:
        pass  # the client hung up first (doctor only checks the peer)
    c.close()
' "$MANAGER_SOCK" "$1" &
	# shellcheck disable=SC2034 # relay.sh's manager_stop stops it
	MANAGER_PID=$!
	wait_until 30 test -S "$MANAGER_SOCK" || fatal "the planted manager did not start"
}

# doctor_skips_planted [ARGS...]: doctor (bounded by timeout, which only
# catches a hang) says pu-alice's socket is not her manager's, and prints
# no control character.
doctor_skips_planted() {
	local out rc=0
	out=$(timeout 60 "$BUILD"/pam-unshare doctor --pamd "$W/pam.d" --module "$MODULE" --helper "$HELPER" "$@" 2>&1) || rc=$?
	grep '^. systemctl --user: ' <<<"$out"
	[ "$rc" -ne 124 ] || { fail "doctor did not finish"; return 1; }
	if LC_ALL=C grep -q '[[:cntrl:]]' <<<"$out"; then
		fail "doctor printed control characters: $(LC_ALL=C grep '[[:cntrl:]]' <<<"$out" | cat -v)"
		return 1
	fi
	grep -q "^- systemctl --user: not checked: .*$MANAGER_SOCK.*its listener, pid [0-9]*, runs [^ ]*python[^ ]*, not systemd" <<<"$out"
}

t_doctor_planted_manager() {
	local mode
	runtime_up
	for mode in noisy silent; do
		planted_start "$mode"
		check "doctor, a $mode fake manager planted by pu-alice: skipped, no control characters, no wait" \
			doctor_skips_planted
		check "doctor --manager-user pu-alice, a $mode fake manager: refused, no control characters, no wait" \
			doctor_skips_planted --manager-user pu-alice
		manager_stop
		rm -f "$MANAGER_SOCK"
	done
	runtime_down
}

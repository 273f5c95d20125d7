# shellcheck shell=bash
# admin.sh - the admin command in the test world: doctor's "systemctl
# --user" check where no systemd runs, and status, which cannot be
# spoofed. Sourced by run-tests.sh inside its private world (lib.sh,
# tap.sh, relay.sh for alice's runtime directory).

# --- doctor's "systemctl --user" check, where no systemd runs --------------
#
# The test world has no systemd and a /run of its own: doctor must say why
# it cannot check, and how to get a user manager. The check itself, with a
# real manager, runs in the VM.

# manager_line [ARGS...]: doctor's "systemctl --user" line on the test
# world's pam.d.
manager_line() {
	"$BUILD"/pam-unshare doctor --pamd "$W/pam.d" --module "$MODULE" --helper "$HELPER" "$@" 2>&1 |
		grep '^. systemctl --user: '
}

# line_is PREFIX [ARGS...]: manager_line ARGS starts with PREFIX.
line_is() {
	local prefix=$1 out
	shift
	out=$(manager_line "$@")
	echo "$out"
	[ "${out#"$prefix"}" != "$out" ]
}

# run_runtime_dir WANT: "pam-unshare run --user pu-alice" gives the command
# XDG_RUNTIME_DIR=WANT ("" for none).
run_runtime_dir() {
	local out
	# shellcheck disable=SC2016 # expanded by the command's shell
	out=$(XDG_RUNTIME_DIR=/run/user/0 "$BUILD"/pam-unshare run --user pu-alice \
		--options "helper=$HELPER" -- /bin/sh -c 'echo "dir=${XDG_RUNTIME_DIR-}"' 2>&1)
	echo "$out"
	[ "$out" = "dir=$1" ]
}

# run_alice_call SECS [ARGS...]: "pam-unshare run --user pu-alice" with
# module arguments ARGS runs the stand-in client (relay.sh) on the socket
# systemctl --user would use, $XDG_RUNTIME_DIR/systemd/private.
run_alice_call() {
	local secs=$1
	shift
	# shellcheck disable=SC2016 # expanded by the command's shell
	"$BUILD"/pam-unshare run --user pu-alice --options "helper=$HELPER $*" -- \
		/bin/sh -c 'exec "$0" "$1" call "$XDG_RUNTIME_DIR/systemd/private" "$2"' "$PY" "$MANAGER_PY" "$secs" 2>&1
}

run_relays() {
	local out
	out=$(run_alice_call 5)
	echo "$out"
	has_line "$out" '^ok peer-pid=1 reply=gen-run fd=from-gen-run$'
}

run_relay_off() {
	local out
	out=$(run_alice_call 0 user_manager=off)
	echo "$out"
	has_line "$out" '^No data available \(peer pid 0\)$'
}

t_doctor_user_manager() {
	local d
	check "doctor, no user manager: '- systemctl --user', naming loginctl enable-linger" \
		line_is '- systemctl --user: not checked: no systemd user manager runs (no /run/user/UID/systemd/private owned by its user); a user'"'"'s manager runs while they are logged in, or always after "loginctl enable-linger USER"'
	check "doctor --manager-user pu-alice, who has none: '- systemctl --user' names pu-alice" \
		line_is '- systemctl --user: not checked: no systemd user manager runs for pu-alice (no /run/user/4101/systemd/private owned by uid 4101)' \
		--manager-user pu-alice
	check "run --user pu-alice without /run/user/4101: no XDG_RUNTIME_DIR" run_runtime_dir ""

	: >"$W/manager.log"
	runtime_up
	manager_start gen-run
	check "run --user pu-alice with /run/user/4101: XDG_RUNTIME_DIR=/run/user/4101" run_runtime_dir /run/user/4101
	check "run --user pu-alice: the client reaches her manager through the relay" run_relays
	check "run --user pu-alice, user_manager=off: the client fails with 'No data available'" run_relay_off
	# The stand-in is pu-alice's own process, not systemd in her
	# user@4101.service: doctor must not talk to it (planted.sh).
	check "doctor, a stand-in manager: '- systemctl --user' finds no real manager" \
		line_is '- systemctl --user: not checked: found no real systemd user manager (skipped /run/user/4101/systemd/private: its listener, pid '
	runtime_down

	d=$(mktemp -d)
	printf 'session required %s helper=%s user_manager=off\n' "$MODULE" "$HELPER" >"$d"/pu-off
	check "doctor, a service with user_manager=off: '! systemctl --user' says it fails there by choice" \
		line_is '! systemctl --user: systemctl --user fails in the sessions of pu-off by choice: their pam.d lines say user_manager=off' \
		--pamd "$d"
	rm -rf "$d"
}

# enable_refuses SERVICE WHERE: enable leaves SERVICE as it was and names
# WHERE as the line that would skip the module.
enable_refuses() {
	local before out rc=0
	before=$(cat "$W/pam.d/$1")
	out=$("$BUILD"/pam-unshare enable --pamd "$W/pam.d" "$1" 2>&1) || rc=$?
	echo "$out"
	[ "$rc" -ne 0 ] || fail "enable exited 0" || return 1
	[ "$(cat "$W/pam.d/$1")" = "$before" ] || fail "$1 was changed" || return 1
	grep -qF "($2) can return PAM_SUCCESS" <<<"$out"
}

t_enable_refuses_skippable() {
	stack_write pu-sufficient "session required pam_unix.so" "session sufficient pam_permit.so"
	check "enable refuses a stack with 'session sufficient X', naming the line, and changes nothing" \
		enable_refuses pu-sufficient "pu-sufficient line 2"
	stack_write pu-done "session required pam_unix.so" "session [success=done default=ignore] pam_permit.so"
	check "enable refuses a stack with '[success=done default=ignore] X', naming the line, and changes nothing" \
		enable_refuses pu-done "pu-done line 2"
	rm -f "$W"/pam.d/pu-*
}

# --- status cannot be spoofed -------------------------------------------

# status_lists_only_real: pam-unshare status shows one session, pu-alice's
# pamhost session.
status_lists_only_real() {
	local out
	out=$("$BUILD"/pam-unshare status 2>&1)
	echo "$out"
	pgrep -a -x "$HELPER_COMM"
	[ "$(grep -c . <<<"$out")" -eq 2 ] && grep -Eq '^pu-alice +pamhost ' <<<"$out"
}

# A user makes a process that looks like a helper to a careless eye: PID 1
# of its own PID namespace, named pam_unshare, executing a file named
# like the helper (a copy of sleep, run through a link named like the
# helper's process, so that the kernel names the process so).
t_status_spoof() {
	local fake=$W/home/pu-alice/fake pid host
	mkdir -p "$fake"
	cp /bin/sleep "$fake/${HELPER##*/}"
	ln -sf "${HELPER##*/}" "$fake/$HELPER_COMM"
	chown -R pu-alice "$fake"
	setpriv --reuid=pu-alice --regid=pu-students --clear-groups \
		unshare -Urpf --kill-child "$fake/$HELPER_COMM" 30 &
	pid=$!
	"$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -- /bin/sleep 3 >/dev/null 2>&1 &
	host=$!
	wait_until 30 leader_started "/bin/sleep 3"
	if ! wait_until 30 pgrep -x -u pu-alice "$HELPER_COMM" >/dev/null; then
		skip "status: a user's fake helper is not listed" "unprivileged user namespaces are not available"
	else
		check "status lists the real session and not a user's fake helper (unshare -Urpf)" status_lists_only_real
	fi
	kill "$pid" 2>/dev/null # unshare, whose death kills the fake (--kill-child)
	wait "$pid" "$host"
	wait_until 30 sh -c "! pgrep -u pu-alice -x $HELPER_COMM >/dev/null"
	rm -rf "$fake"
}

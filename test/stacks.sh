# shellcheck shell=bash
# stacks.sh - PAM control semantics: stacks that skip the module or lose its
# error, and doctor and enable on them. Sourced by run-tests.sh inside its
# private world (lib.sh, tap.sh).
#
# Each shape is written as an administrator might, run by real libpam in
# pamhost, and shown to open a session that sees the host (fails open); then
# doctor must fail on it and name the line. The module gets a helper that
# does not exist, so that when it runs it returns PAM_SYSTEM_ERR.

BAD_HELPER=/nonexistent/pam_unshare-init

# stack_write NAME LINES...: the service NAME in the test world's pam.d,
# one line per argument.
stack_write() {
	local name=$1
	shift
	printf '%s\n' "$@" >"$W/pam.d/$name"
}

# opens_unisolated SERVICE: pamhost opens a session of SERVICE for pu-alice
# with PAM_SUCCESS, and ps in it sees the host's marker sleep.
opens_unisolated() {
	local out
	out=$("$PAMHOST" -c /etc/pam.d -s "$1" -u pu-alice -- /bin/ps -e -o args= 2>&1)
	echo "$out"
	grep -q 'open=PAM_SUCCESS' <<<"$out" && grep -q 'sleep 1001' <<<"$out"
}

# stack_refused SERVICE: pam_open_session of SERVICE fails and runs nothing.
stack_refused() {
	local out
	out=$("$PAMHOST" -c /etc/pam.d -s "$1" -u pu-alice -- /bin/ps -e -o args= 2>&1)
	echo "$out"
	grep -q 'open=PAM_SYSTEM_ERR close=NONE child=-1' <<<"$out"
}

# doctor_on SERVICE: doctor's report on a pam.d that holds only SERVICE
# and pu-inc, which some services include; doctor's exit status.
doctor_on() {
	local d rc=0
	d=$(mktemp -d)
	cp "$W/pam.d/$1" "$d/"
	[ ! -f "$W/pam.d/pu-inc" ] || cp "$W/pam.d/pu-inc" "$d/"
	"$BUILD"/pam-unshare doctor --pamd "$d" --module "$MODULE" --helper "$HELPER" 2>&1 || rc=$?
	rm -rf "$d"
	return "$rc"
}

# doctor_flags SERVICE WHERE: doctor exits non-zero, marks SERVICE as a
# problem and names WHERE ("FILE line N") as the line that causes it.
doctor_flags() {
	local out rc=0
	out=$(doctor_on "$1") || rc=$?
	echo "$out"
	[ "$rc" -ne 0 ] || fail "doctor exited 0" || return 1
	grep -q "^✗ service $1: " <<<"$out" && grep -qF "($2) can return" <<<"$out"
}

# doctor_passes SERVICE: doctor finds nothing wrong with SERVICE's stack.
doctor_passes() {
	local out
	out=$(doctor_on "$1")
	echo "$out"
	grep -q "^✓ service $1: " <<<"$out"
}

t_stack_shapes() {
	local unshare_bad="$MODULE helper=$BAD_HELPER"
	rm -f "$W/pam.d/pu-inc"

	stack_write pu-optional "session optional pam_permit.so" "session optional $unshare_bad"
	check "stack 'session optional pam_unshare.so': libpam ignores its PAM_SYSTEM_ERR, the session sees the host" \
		opens_unisolated pu-optional
	check "stack 'session optional pam_unshare.so': doctor fails and names the module's line" \
		doctor_flags pu-optional "pu-optional line 2"

	stack_write pu-sufficient "session optional pam_permit.so" "session sufficient pam_permit.so" "session required $unshare_bad"
	check "stack 'session sufficient X' before the module: libpam skips it, the session sees the host" \
		opens_unisolated pu-sufficient
	check "stack 'session sufficient X' before the module: doctor fails and names that line" \
		doctor_flags pu-sufficient "pu-sufficient line 2"

	stack_write pu-done "session optional pam_permit.so" "session [success=done default=ignore] pam_permit.so" "session required $unshare_bad"
	check "stack '[success=done default=ignore] X' before the module: libpam skips it, the session sees the host" \
		opens_unisolated pu-done
	check "stack '[success=done default=ignore] X' before the module: doctor fails and names that line" \
		doctor_flags pu-done "pu-done line 2"

	stack_write pu-ignore "session optional pam_permit.so" "session [default=ignore] $unshare_bad"
	check "stack 'session [default=ignore] pam_unshare.so': libpam ignores its PAM_SYSTEM_ERR, the session sees the host" \
		opens_unisolated pu-ignore
	check "stack 'session [default=ignore] pam_unshare.so': doctor fails and names the module's line" \
		doctor_flags pu-ignore "pu-ignore line 2"

	# include splices the file into the stack: its done ends the whole
	# stack. A substack's done ends only the substack, and the module runs.
	stack_write pu-inc "session sufficient pam_permit.so"
	stack_write pu-include "session optional pam_permit.so" "session include pu-inc" "session required $unshare_bad"
	check "stack 'session include F', F has 'sufficient': libpam skips the module, the session sees the host" \
		opens_unisolated pu-include
	check "stack 'session include F', F has 'sufficient': doctor fails and names F's line" \
		doctor_flags pu-include "pu-inc line 1"
	stack_write pu-substack "session optional pam_permit.so" "session substack pu-inc" "session required $unshare_bad"
	check "stack 'session substack F', F has 'sufficient': libpam still runs the module and refuses the session" \
		stack_refused pu-substack
	check "stack 'session substack F', F has 'sufficient': doctor finds nothing wrong with the stack" \
		doctor_passes pu-substack

	# The fixed form of the first shapes: required, last.
	stack_write pu-required "session optional pam_permit.so" "session required $unshare_bad"
	check "stack 'session required pam_unshare.so' last: its PAM_SYSTEM_ERR refuses the session" \
		stack_refused pu-required
	check "stack 'session required pam_unshare.so' last: doctor finds nothing wrong with the stack" \
		doctor_passes pu-required

	rm -f "$W"/pam.d/pu-*
}

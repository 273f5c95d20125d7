# shellcheck shell=bash
# tap.sh - the one TAP library of pam_unshare's shell tests. run-tests.sh
# (through lib.sh) and test/vm/scenarios.sh source it; test/vm/run.sh copies
# it into the guest payload next to scenarios.sh.
#
# A test is a function that returns 0 (pass) or 1 (fail) and prints what it
# saw; `check DESC FUNCTION ARGS...` runs it and prints one TAP line, with
# the function's output as "# " diagnostics only when it fails:
#
#   ps_shows_helper() {
#           local out
#           out=$(ps -e -o pid=,comm=)
#           echo "$out"
#           grep -Eq '^ *1 pam_unshare$' <<<"$out"
#   }
#   check "ps shows the helper as PID 1" ps_shows_helper
#
# The plan comes last (`plan`), since the number of checks depends on what
# runs. Exit codes: `plan` and `summary` return 1 if any check failed;
# `fatal` ends the run with a "Bail out!" line.

# HELPER_COMM: the helper's process name, what ps -e and pgrep -x show. Its
# one definition is NSINIT_HELPER_COMM in nsinit/handshake.h, read here
# from the source tree or, in the guest, from the copy that run.sh puts
# next to this file.
tap_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HELPER_COMM=$(sed -n 's/^#define NSINIT_HELPER_COMM "\(.*\)"$/\1/p' \
	"$tap_dir/../nsinit/handshake.h" "$tap_dir/handshake.h" 2>/dev/null)

# SSHD_COMM: the process name of OpenSSH's per-connection processes, as
# an extended regular expression (grep -E, awk, pgrep -x). OpenSSH up to
# 9.7 (Debian 12) runs them as sshd; 9.8 and later (Debian 13, and Debian
# 12 with OpenSSH from backports) as sshd-session, whose process titles
# read "sshd-session: alice@notty" and whose syslog tag is sshd-session.
# The listener is sshd in both.
# shellcheck disable=SC2034 # for the suites that source this file
SSHD_COMM='sshd(-session)?'

TAP_N=0
TAP_FAILED=0
TAP_SKIPPED=0
# Seconds between two tries of wait_until.
TAP_POLL=${TAP_POLL:-0.1}
TAP_OUT=$(mktemp "${TMPDIR:-/tmp}/tap.XXXXXX")

# ok DESC: a passing TAP line.
ok() {
	TAP_N=$((TAP_N + 1))
	echo "ok $TAP_N - $*"
}

# not_ok DESC: a failing TAP line.
not_ok() {
	TAP_N=$((TAP_N + 1))
	TAP_FAILED=$((TAP_FAILED + 1))
	echo "not ok $TAP_N - $*"
}

# skip DESC REASON...: a check that cannot run here.
skip() {
	local desc=$1
	shift
	TAP_N=$((TAP_N + 1))
	TAP_SKIPPED=$((TAP_SKIPPED + 1))
	echo "ok $TAP_N - $desc # SKIP $*"
}

# diag TEXT...: TEXT as TAP comments, one "# " line per line of TEXT (a
# trailing \r, from a pty, is dropped). Nothing for empty TEXT. To show a
# file or a command's output: diag "$(cat FILE)".
diag() {
	local line text="$*"
	[ -n "$text" ] || return 0
	while IFS= read -r line; do
		printf '# %s\n' "${line%$'\r'}"
	done <<<"$text"
}

# fail MSG: print MSG and return 1. Test functions use it as
# `cond || { fail MSG; return 1; }`.
fail() {
	echo "$*"
	return 1
}

# fatal MSG: the run cannot go on (its setup failed): bail out.
fatal() {
	echo "Bail out! $*"
	rm -f "$TAP_OUT"
	exit 1
}

# check DESC FUNCTION ARGS...: run FUNCTION ARGS... in this shell (so it may
# set variables and start and wait for jobs) and print one TAP line for its
# exit status; on failure its output (stdout and stderr) follows as
# diagnostics.
check() {
	local desc=$1 rc=0
	shift
	"$@" >"$TAP_OUT" 2>&1 || rc=$?
	if [ "$rc" = 0 ]; then
		ok "$desc"
	else
		not_ok "$desc"
		diag "$(cat "$TAP_OUT")"
	fi
}

# wait_until SECONDS COMMAND...: run COMMAND every TAP_POLL seconds until it
# succeeds (return 0) or SECONDS (an integer) have passed (return 1).
wait_until() {
	local deadline=$(($(tap_now_us) + $1 * 1000000))
	shift
	until "$@"; do
		[ "$(tap_now_us)" -lt "$deadline" ] || return 1
		sleep "$TAP_POLL"
	done
}

# tap_now_us: the time in microseconds (EPOCHREALTIME, whatever the
# locale's decimal point).
tap_now_us() {
	local t=$EPOCHREALTIME
	echo "${t//[!0-9]/}"
}

[ -n "$HELPER_COMM" ] || fatal "no NSINIT_HELPER_COMM in $tap_dir/../nsinit/handshake.h or $tap_dir/handshake.h"

# plan: the TAP plan, 1..N, printed after the last check. Returns 1 if any
# check failed.
plan() {
	echo "1..$TAP_N"
	rm -f "$TAP_OUT"
	[ "$TAP_FAILED" = 0 ]
}

# summary: one line for a person reading the run. Returns 1 if any check
# failed.
summary() {
	echo "$((TAP_N - TAP_FAILED - TAP_SKIPPED)) passed, $TAP_FAILED failed, $TAP_SKIPPED skipped"
	[ "$TAP_FAILED" = 0 ]
}

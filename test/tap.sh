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

# ---- suites: which tests a run has, and the runner -------------------------
#
# A suite is a list of files, each with the tests of one concern (and the
# helpers only they use). A test is a function PREFIXNAME (t_ in
# run-tests.sh, sc_ in test/vm/scenarios.sh) whose definition starts a line
# of one of those files; defining it registers it. A suite runs its files'
# tests in the order the suite lists the files, each file's in the order
# they are defined, so a test that must come late (uninstall) is defined
# late in the last file. A test for a person to run by name only (a survey,
# a debugging aid) ends its definition line with "# manual".
#
# Two places still have to agree, and tap_check and tap_run say so when they
# do not: a function is the one its definition line says (defined once in
# the suite, never again elsewhere, which would silently replace a test or a
# helper), and every PREFIX function is in the suite's files.

# tap_defs FILE...: "NAME FILE LINE MANUAL" for each function defined at
# the start of a line of FILEs (MANUAL: 1 for a "# manual" test).
tap_defs() {
	awk '/^[A-Za-z_][A-Za-z0-9_]*\(\) *\{/ {
		n = $0; sub(/\(\).*/, "", n)
		print n, FILENAME, FNR, ($0 ~ /# manual$/) ? 1 : 0
	}' "$@"
}

# tap_check PREFIX FILE...: the suite's test names (PREFIX dropped), one a
# line, manual ones as "NAME manual"; without running anything of FILEs.
# Fails, saying why, if a function is defined twice in FILEs or another .sh
# file next to them defines a PREFIX function.
tap_check() {
	local prefix=$1 f bad=0 defs other
	shift
	defs=$(tap_defs "$@") || return 1
	awk '{ n[$1]++; at[$1] = at[$1] " " $2 ":" $3 }
		END { for (f in n) if (n[f] > 1) print f " is defined twice:" at[f] }' <<<"$defs" | grep . && bad=1
	for f in $(dirname "$@" | sort -u); do
		other=$(tap_defs "$f"/*.sh | awk -v p="$prefix" 'index($1, p) == 1 { print $2 }' |
			sort -u | grep -vxF -f <(printf '%s\n' "$@"))
		[ -z "$other" ] || { echo "$prefix functions in a file the suite does not list: $other"; bad=1; }
	done
	[ "$bad" = 0 ] || return 1
	awk -v p="$prefix" 'index($1, p) == 1 { print substr($1, length(p) + 1) ($4 ? " manual" : "") }' <<<"$defs"
}

# tap_check_live PREFIX FILE...: what tap_check does, and, with FILEs
# sourced, that each function is the one defined there (not redefined
# after) and that every PREFIX function comes from FILEs.
tap_check_live() {
	local prefix=$1 f abs name file line where bad=0 fn out defs=
	shift
	out=$(tap_check "$prefix" "$@") || { echo "$out"; return 1; }
	shopt -s extdebug
	for f in "$@"; do
		abs=$(tap_abs "$f")
		while read -r name file line _; do
			defs+=" $name "
			where=$(declare -F "$name")
			# A helper's definition line may be one inside a string, a
			# script the test writes: not a function here.
			[ -n "$where" ] || [ "${name#"$prefix"}" != "$name" ] || continue
			[ "$where" = "$name $line $abs" ] ||
				{ echo "$name, defined at $file:$line, is not that function: ${where:-not defined}"; bad=1; }
		done < <(tap_defs "$f")
	done
	for fn in $(declare -F | awk -v p="$prefix" '$2 == "-f" && index($3, p) == 1 { print $3 }'); do
		[[ $defs == *" $fn "* ]] ||
			{ echo "$fn comes from no file of the suite: $(declare -F "$fn" | awk '{ print $3 ":" $2 }')"; bad=1; }
	done
	shopt -u extdebug
	return "$bad"
}

# tap_abs FILE: FILE with an absolute directory, as declare -F shows it for
# a file sourced by that name.
tap_abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }

# tap_select PREFIX FILE... -- [NAME...]: the tests to run, one a line:
# NAMEs (with or without PREFIX) or, with none, every test that is not
# manual. Fails on a name that is not a test.
tap_select() {
	local prefix=$1 files=() names tests n
	shift
	while [ "$1" != -- ]; do files+=("$1") && shift; done
	shift
	tests=$(tap_check "$prefix" "${files[@]}") || { echo "$tests"; return 1; }
	if [ $# = 0 ]; then
		awk 'NF == 1' <<<"$tests"
		return
	fi
	names=$(awk '{ print $1 }' <<<"$tests")
	for n in "$@"; do
		grep -qxF "${n#"$prefix"}" <<<"$names" ||
			{ echo "no such test: $n (tests: ${names//$'\n'/ })"; return 1; }
		echo "${n#"$prefix"}"
	done
}

# tap_list PREFIX FILE... -- [NAME...]: tap_check_live, then tap_select:
# the tests to run, one a line, or what is wrong (and a failure).
tap_list() {
	local prefix=$1 files=()
	shift
	while [ "$1" != -- ]; do files+=("$1") && shift; done
	tap_check_live "$prefix" "${files[@]}" && tap_select "$prefix" "${files[@]}" "$@"
}

# tap_run PREFIX FILE... -- [NAME...]: run the tests of tap_list (FILEs are
# sourced), each after a "# test: NAME" line and before one saying how long
# it took. Bails out if tap_list fails.
tap_run() {
	local prefix=$1 out t t0
	out=$(tap_list "$@") || fatal "${out//$'\n'/; }"
	for t in $out; do
		echo "# test: $prefix$t"
		t0=$SECONDS
		"$prefix$t"
		echo "# $prefix$t took $((SECONDS - t0)) s"
	done
}

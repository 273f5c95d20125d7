#!/bin/bash
# bench.sh - measure what pam_unshare costs a PAM host and the machine.
#
# Usage: bench.sh BUILD_DIR [CSV]
#   BUILD_DIR holds pamhost, pam_unshare.so, pam_unshare_go.so,
#   pam_unshare-init, bench/noop.so and bench/nsfloor (make build, and the
#   bench.mk rules for the last two). pam_unshare.so loads the Go library from its installed
#   path; this script puts BUILD_DIR's there in its own mount namespace
#   (test/stage.sh). A BUILD_DIR without pam_unshare_go.so is taken to be
#   an older build whose pam_unshare.so is the Go library itself.
#   CSV defaults to BUILD_DIR/bench.csv; a markdown copy of the table goes
#   next to it (.md).
# Environment: N (sessions per latency run, default 200), SCALE (concurrent
#   sessions, default 1000), BENCH_USER (default nobody), HELPER (the PID-1
#   helper to pass as helper=, default BUILD_DIR/pam_unshare-init; set it
#   to compare helper builds), BENCH_ARGS (more module arguments for the
#   pam_unshare stack, e.g. user_manager=off), COLD (fresh hosts per stack
#   in the fresh-host section, default 21).
#
# Runs as root, in a private mount namespace of its own (it re-executes
# itself under unshare -m), and reads /proc only: the module mounts the
# sessions' /proc in namespaces it creates. PAM configuration comes from a
# temporary directory through pam_start_confdir, never from /etc/pam.d.
#
# Three PAM stacks, each pam_permit for auth and account and a single
# "session required" line:
#   a  pam_permit      - the cost of libpam and pamhost alone
#   b  noop (Go)       - a Go c-shared module that returns PAM_SUCCESS,
#                        so b - a is the Go runtime
#   c  pam_unshare     - c - b is the namespace work itself
# and f, the syscall floor (test/bench/nsfloor.c): no PAM and no Go, only
# the system calls an isolated session needs, so that c / f is what the
# module costs over the kernel's own work; g is the floor whose PID 1
# execs a small static program, as the module's helper is one, so g - f
# is the helper's exec. Latencies and the live
# session's memory are given absolute and as ratios to a, b and f, all
# taken in the same run; the last line of output is a summary of those
# ratios, to compare machines by.
# Sections: no session (pam_start, auth and account only), latency, fresh
# host (the first open in a new process, as every su and ssh login runs,
# broken down into the runtime, our library, the namespace and the lookup;
# with callgrind instruction counts, inittrace and strace syscall counts
# when those tools are installed), host
# memory, helper, teardown, scale, per-user namespaces (scope=user:
# create against join latency, and the helper with PERUSER sessions,
# default 50, in one namespace), and the user manager's relay (with a
# stand-in manager: open latency with and without it, and one call through
# it against one made directly).
set -euo pipefail

if [[ $(id -u) != 0 ]]; then
	echo "bench: must run as root" >&2
	exit 1
fi
if [[ ${PAM_UNSHARE_BENCH_NS:-} != 1 ]]; then
	export PAM_UNSHARE_BENCH_NS=1
	exec unshare -m --propagation private -- "$0" "$@"
fi

[[ $# -ge 1 ]] || { echo "usage: bench.sh BUILD_DIR [CSV]" >&2; exit 2; }
BUILD=$(cd "$1" && pwd)
CSV=${2:-$BUILD/bench.csv}
MD=${CSV%.csv}.md
N=${N:-200}
SCALE=${SCALE:-1000}
BENCH_USER=${BENCH_USER:-nobody}
BENCH_ARGS=${BENCH_ARGS:-}

PAMHOST=$BUILD/pamhost
NOOP=$BUILD/bench/noop.so
FLOOR=$BUILD/bench/nsfloor
COLD=${COLD:-21}
MODULE=$BUILD/pam_unshare.so
HELPER=${HELPER:-$BUILD/pam_unshare-init}
[[ $HELPER == /* ]] || HELPER=$PWD/$HELPER # helper= must be absolute
# The helper's process name; its one definition is in nsinit/handshake.h.
HELPER_COMM=$(sed -n 's/^#define NSINIT_HELPER_COMM "\(.*\)"$/\1/p' \
	"$(dirname "$0")/../../nsinit/handshake.h")

for f in "$PAMHOST" "$NOOP" "$FLOOR"; do
	[[ -e $f ]] || { echo "bench: missing $f (make build)" >&2; exit 1; }
done
if [[ -e $BUILD/pam_unshare_go.so ]]; then
	# shellcheck source=test/stage.sh
	. "$(dirname "$0")/../stage.sh"
	STAGE=$(mktemp -d /tmp/pam_unshare-bench-stage.XXXXXX)
	GO_MODULE=$(stage_go_module "$BUILD" "$STAGE") ||
		{ echo "bench: cannot stage the Go library" >&2; exit 1; }
	echo "bench: Go library staged at $GO_MODULE" >&2
fi
STACKS=(permit noop)
if [[ -e $MODULE && -e $HELPER ]]; then
	STACKS+=(unshare)
	# The module refuses a helper that is not root-owned or is writable by
	# group or others; say so here rather than as a failed benchmark.
	if [[ $(stat -c %u "$HELPER") != 0 ]] ||
		(( 8#$(stat -c %a "$HELPER") & 8#022 )); then
		echo "bench: $HELPER must be root-owned, not group/world-writable" >&2
		exit 1
	fi
else
	echo "bench: $MODULE or $HELPER missing: stack c skipped" >&2
fi

W=$(mktemp -d /tmp/pam_unshare-bench.XXXXXX)
BG_PIDS=()
cleanup() {
	local p
	# Only processes this script started, by their PID.
	for p in "${BG_PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
	done
	rm -rf "$W" "${STAGE:-}"
}
trap cleanup EXIT

CONF=$W/pam.d
mkdir -p "$CONF"
# service NAME SESSION-LINE: auth and account by pam_permit, then the line.
service() {
	printf 'auth required pam_permit.so\naccount required pam_permit.so\n%s\n' \
		"$2" >"$CONF/$1"
}
service permit "session required pam_permit.so"
service noop "session required $NOOP"
service unshare "session required $MODULE helper=$HELPER $BENCH_ARGS"

# Two more pam_unshare stacks for the fresh-host breakdown: the user
# exempt (the library loads, parses and decides, and steps aside), and no
# relay (no account lookup).
service exempt "session required $MODULE helper=$HELPER $BENCH_ARGS exempt_users=$BENCH_USER"
service nolookup "session required $MODULE helper=$HELPER $BENCH_ARGS user_manager=off"

declare -A LABEL=([permit]="a pam_permit" [noop]="b Go no-op"
	[unshare]="c pam_unshare" [floor]="f syscall floor"
	[exempt]="e pam_unshare, user exempt" [nolookup]="o pam_unshare, user_manager=off"
	[floorexec]="g floor, PID 1 execs")

# host STACK: the command line of a host for STACK, before its options:
# nsfloor for the floor, pamhost with the stack's service otherwise.
host() {
	if [[ $1 == floor ]]; then
		echo "$FLOOR"
	elif [[ $1 == floorexec ]]; then
		echo "$FLOOR -x"
	else
		echo "$PAMHOST -c $CONF -s $1 -u $BENCH_USER"
	fi
}

echo "section,case,metric,value,unit,x_a,x_b,x_f,target" >"$CSV"
ROWS=()
# record SECTION CASE METRIC VALUE UNIT [TARGET]: one result row.
record() {
	record_x "$1" "$2" "$3" "$4" "$5" "" "" "" "${6:-}"
}
# record_x SECTION CASE METRIC VALUE UNIT XA XB XF [TARGET]: a row with
# VALUE's ratios to pam_permit's (a), the Go no-op's (b) and the syscall
# floor's (f) value of the same metric, from this run.
record_x() {
	printf '%s,%s,%s,%s,%s,%s,%s,%s,%s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8" "${9:-}" >>"$CSV"
	ROWS+=("| $1 | $2 | $3 | $4 | $5 | $6 | $7 | $8 | ${9:-} |")
}
# ratio A B: A / B to two decimals, or nothing if either is not a number.
ratio() {
	[[ $1 =~ ^[0-9]+$ && $2 =~ ^[0-9]+$ && $2 != 0 ]] || return 0
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
}
# record3 SECTION STACK METRIC VALUE UNIT REFVAR [TARGET]: record_x with the
# ratios to the values of a, b and f stored in the associative array
# named REFVAR (keys permit, noop, floor).
record3() {
	local -n _ref=$6
	record_x "$1" "${LABEL[$2]}" "$3" "$4" "$5" "$(ratio "$4" "${_ref[permit]:-}")" \
		"$(ratio "$4" "${_ref[noop]:-}")" "$(ratio "$4" "${_ref[floor]:-}")" "${7:-}"
}
# verdict OK: "hit" or "miss", for the target column.
verdict() { if "$@"; then echo hit; else echo miss; fi; }

# Microseconds of wall-clock time, without forking.
now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }
# pct FILE P: nearest-rank P-th percentile of the numbers in FILE.
pct() {
	sort -n "$1" | awk -v p="$2" '{ a[NR] = $1 }
		END { if (NR == 0) { print "NA"; exit }
		      i = int((p * NR + 99) / 100); print a[i < 1 ? 1 : i] }'
}
# field FILE NAME: the number after "NAME:" in a /proc key-value file.
# Prints nothing, and succeeds, if the process is gone.
field() {
	awk -v f="$2:" '$1 == f { print $2; exit }' "$1" 2>/dev/null || true
}
# private PID: private (clean + dirty) memory of PID in KiB.
private() {
	awk '$1 == "Private_Clean:" || $1 == "Private_Dirty:" { s += $2 }
		END { print s + 0 }' "/proc/$1/smaps_rollup" 2>/dev/null || true
}
# private_dirty PID: private dirty memory of PID in KiB: what no other
# process can share. Private clean pages are file pages that only PID maps
# now (such as the Go library's code while one host has it loaded); a
# second host shares them.
private_dirty() {
	awk '$1 == "Private_Dirty:" { s += $2 } END { print s + 0 }' \
		"/proc/$1/smaps_rollup" 2>/dev/null || true
}
# child_with_comm PID COMM: print the PID of a child of PID named COMM.
child_with_comm() {
	local c kids=()
	read -r -a kids < <(cat /proc/"$1"/task/*/children 2>/dev/null) || true
	for c in "${kids[@]}"; do
		if [[ $(cat "/proc/$c/comm" 2>/dev/null) == "$2" ]]; then
			echo "$c"
			return 0
		fi
	done
	return 1
}
# wait_child PID COMM: wait up to 10 s for child_with_comm, print its PID.
wait_child() {
	local i
	for ((i = 0; i < 1000; i++)); do
		child_with_comm "$1" "$2" && return 0
		(($(count_running "$1") > 0)) || return 1
		sleep 0.01
	done
	return 1
}
# sum_field FILE KEY PID...: the total of KEY's number in /proc/PID/FILE
# over these processes.
sum_field() {
	local file=$1 key=$2 p files=()
	shift 2
	for p in "$@"; do
		[[ -r /proc/$p/$file ]] && files+=("/proc/$p/$file")
	done
	# cat, not awk on the files: a process may exit in between.
	{ cat "${files[@]}" 2>/dev/null || true; } |
		awk -v key="$key" '$1 == key { s += $2 } END { print s + 0 }'
}
# sum_pss PID...: total PSS in KiB of these processes.
sum_pss() { sum_field smaps_rollup Pss: "$@"; }
# sum_threads PID...: total threads of these processes.
sum_threads() { sum_field status Threads: "$@"; }
# switches PID: voluntary + involuntary context switches of PID so far;
# nothing if PID is gone.
switches() {
	awk '$1 == "voluntary_ctxt_switches:" ||
		$1 == "nonvoluntary_ctxt_switches:" { s += $2; n++ }
		END { if (n == 2) print s }' "/proc/$1/status" 2>/dev/null || true
}
# count_running PID...: how many of these processes have not exited yet
# (a zombie that this shell has not waited for counts as exited).
count_running() {
	local p st n=0
	for p in "$@"; do
		st=
		{ read -r _ _ st _ <"/proc/$p/stat"; } 2>/dev/null || true
		[[ -n $st && $st != Z ]] && n=$((n + 1))
	done
	echo "$n"
}
# pid_namespaces: every PID namespace that has a process, one a line.
pid_namespaces() {
	# find fails on processes that exit while it runs; that is fine.
	{ find /proc -mindepth 3 -maxdepth 3 -path '/proc/[0-9]*/ns/pid' \
		-printf '%l\n' 2>/dev/null || true; } | sort -u
}
# count_tasks: threads on the machine.
count_tasks() {
	{ find /proc -mindepth 3 -maxdepth 3 -path '/proc/[0-9]*/task/*' \
		2>/dev/null || true; } | wc -l
}
# children_of HOSTS_FILE: one line "PID NAME NSPIDS LAST" for each child
# of the processes listed in HOSTS_FILE, in one pass over /proc: NSPIDS is
# how many PID namespaces it is in, LAST its PID in the innermost one.
# Only this script's hosts count, so sessions that others open on the
# machine meanwhile do not.
children_of() {
	{ grep -s -H -E '^(Name|PPid|NSpid):' /proc/[0-9]*/status || true; } |
		awk 'NR == FNR { host[$1] = 1; next }
		{
			i = index($0, ":"); split(substr($0, 1, i - 1), path, "/")
			rest = substr($0, i + 1); j = index(rest, ":")
			key = substr(rest, 1, j - 1); n = split(substr(rest, j + 1), v)
			p = path[3]
			if (key == "Name") name[p] = v[1]
			else if (key == "PPid") ppid[p] = v[1]
			else { depth[p] = n; last[p] = v[n] }
		}
		END { for (p in ppid) if (ppid[p] in host)
			print p, name[p], depth[p], last[p] }' "$1" -
}
# Depth of this script's PID namespace (PIDs on its NSpid line).
SELF_DEPTH=$(awk '$1 == "NSpid:" { print NF - 1 }' /proc/self/status)
# leaders_in FILE: leaders of live sessions in children_of output: a sleep
# that is PID 2 one PID namespace below this script's.
leaders_in() {
	awk -v d=$((SELF_DEPTH + 1)) '$2 == "sleep" && $3 == d && $4 == 2 {
		print $1 }' "$1"
}
# helpers_in FILE: the PID-1 helpers in children_of output.
helpers_in() {
	awk -v d=$((SELF_DEPTH + 1)) -v comm="$HELPER_COMM" '$2 == comm && $3 == d && $4 == 1 {
		print $1 }' "$1"
}

echo "bench: $(uname -r), $(nproc) CPUs, N=$N, SCALE=$SCALE," \
	"user $BENCH_USER, work dir $W" >&2

# go_mapped PID: "yes" if PID has a Go c-shared library mapped (the no-op,
# the Go library, or an older pam_unshare.so that was itself the Go
# library), else "no".
go_mapped() {
	local golibs=("$NOOP")
	if [[ -n ${GO_MODULE:-} ]]; then golibs+=("$GO_MODULE"); else golibs+=("$MODULE"); fi
	if awk '{ print $6 }' "/proc/$1/maps" 2>/dev/null | grep -qxF -f <(printf '%s\n' "${golibs[@]}"); then
		echo yes
	else
		echo no
	fi
}

# BENCH_ONLY=peruser runs section 5 alone, BENCH_ONLY=relay section 6.
if [[ -z ${BENCH_ONLY:-} ]]; then

# --- 0. no session -----------------------------------------------------------
# What every process that loads the stack pays, including sshd connections
# that never log in: pam_start, pam_authenticate and pam_acct_mgmt, and no
# session (pamhost -m noopen). The host is sampled while its child sleeps.
declare -A NS_PSS NS_THREADS
for s in "${STACKS[@]}"; do
	l=${LABEL[$s]}
	"$PAMHOST" -c "$CONF" -s "$s" -u "$BENCH_USER" -m noopen -- /bin/sleep 1 \
		>/dev/null 2>"$W/nosession-$s.err" &
	hp=$!
	BG_PIDS+=("$hp")
	if ! wait_child "$hp" sleep >/dev/null; then
		record "no session" "$l" "host sampled" no "" "see stderr"
		cat "$W/nosession-$s.err" >&2
		wait "$hp" || true
		continue
	fi
	sleep 0.3
	NS_PSS[$s]=$(field "/proc/$hp/smaps_rollup" Pss)
	NS_THREADS[$s]=$(field "/proc/$hp/status" Threads)
	if [[ $s == unshare ]]; then
		record "no session" "$l" "host threads" "${NS_THREADS[$s]}" count \
			"1: $(verdict test "${NS_THREADS[$s]}" = 1)"
	else
		record "no session" "$l" "host threads" "${NS_THREADS[$s]}" count
	fi
	record "no session" "$l" "host PSS" "${NS_PSS[$s]}" KiB
	record "no session" "$l" "host private" "$(private "$hp")" KiB
	record "no session" "$l" "Go library mapped" "$(go_mapped "$hp")" ""
	wait "$hp" || true
	BG_PIDS=()
done
for s in noop unshare; do
	[[ -n ${NS_PSS[$s]:-} && -n ${NS_PSS[permit]:-} ]] || continue
	d=$((NS_PSS[$s] - NS_PSS[permit]))
	if [[ $s == unshare ]]; then
		record "no session" "${LABEL[$s]%% *} - a" "host PSS" "$d" KiB \
			"<= 100 KiB: $(verdict test "$d" -le 100)"
	else
		record "no session" "${LABEL[$s]%% *} - a" "host PSS" "$d" KiB
	fi
done

# --- 1. latency ------------------------------------------------------------
# Sessions one after another in one pamhost, fork-per-session like su; the
# child lists /proc. open = pam_open_session alone; total = pam_start to
# pam_end, child included. The stacks take turns over ROUNDS runs so that
# a change in machine load hits all of them alike. The first session of
# each run also loads the module: it is reported apart as "cold" (median
# over the runs) and left out of the percentiles. The syscall floor (f)
# runs the same way: its open is unshare to PID 1's ready byte, its total
# includes the leader and the setns back.
ROUNDS=5
PER_RUN=$(((N + ROUNDS - 1) / ROUNDS))
LAT_STACKS=(floor floorexec "${STACKS[@]}")
declare -A OPEN50 TOTAL50 PSS PRIV DIRTY RC
for ((r = 0; r < ROUNDS; r++)); do
	for s in "${LAT_STACKS[@]}"; do
		rc=0
		read -r -a cmd <<<"$(host "$s")"
		timeout -k 5 120 "${cmd[@]}" \
			-n $((PER_RUN + 1)) -t -- /bin/ls /proc >"$W/lat-$s.out" \
			2>>"$W/lat-$s.err" || rc=$?
		((rc == 0)) || RC[$s]=$rc
		# The child's listing shares stdout with the CSV lines.
		grep -E '^[0-9]+,[0-9]+,[0-9]+,[01]$' "$W/lat-$s.out" |
			awk -F, -v cold="$W/lat-$s.cold" -v warm="$W/lat-$s.csv" \
				'$1 == 0 { print >>cold; next } { print >>warm }' ||
			true
	done
done
# Percentiles of each metric for each stack, then one row each with the
# ratios to a, b and f.
LAT_METRICS=("open p50" "open p90" "open p99" "total p50" "total p90" "total p99"
	"open cold (first session; median)" "total cold (first session; median)")
declare -A LATV
for s in "${LAT_STACKS[@]}"; do
	touch "$W/lat-$s.csv" "$W/lat-$s.cold"
	cut -d, -f2 "$W/lat-$s.csv" >"$W/lat-$s.open"
	cut -d, -f3 "$W/lat-$s.csv" >"$W/lat-$s.total"
	cut -d, -f2 "$W/lat-$s.cold" >"$W/lat-$s.cold-open"
	cut -d, -f3 "$W/lat-$s.cold" >"$W/lat-$s.cold-total"
	for p in 50 90 99; do
		LATV[$s|open p$p]=$(pct "$W/lat-$s.open" $p)
		LATV[$s|total p$p]=$(pct "$W/lat-$s.total" $p)
	done
	k="open cold (first session; median)"
	LATV[$s|$k]=$(pct "$W/lat-$s.cold-open" 50)
	k="total cold (first session; median)"
	LATV[$s|$k]=$(pct "$W/lat-$s.cold-total" 50)
	OPEN50[$s]=${LATV[$s|open p50]}
	TOTAL50[$s]=${LATV[$s|total p50]}
done
for s in "${LAT_STACKS[@]}"; do
	runs=$((ROUNDS * (PER_RUN + 1)))
	ok=$(grep -c ' open=PAM_SUCCESS close=PAM_SUCCESS child=0 ' \
		"$W/lat-$s.err" || true)
	iso=$(cat "$W/lat-$s.csv" "$W/lat-$s.cold" | awk -F, '$4 == 1' | wc -l)
	l=${LABEL[$s]}
	record latency "$l" "sessions ok" "$ok/$runs" count \
		"$( [[ $ok == "$runs" ]] && echo all ||
			echo "host exit ${RC[$s]:-0}")"
	for m in "${LAT_METRICS[@]}"; do
		# shellcheck disable=SC2034 # read by record3 through a nameref
		declare -A LREF=([permit]=${LATV[permit|$m]:-} [noop]=${LATV[noop|$m]:-}
			[floor]=${LATV[floor|$m]:-})
		t=
		if [[ $s == unshare && $m == "open p50" ]]; then
			x=$(ratio "${LATV[$s|$m]}" "${LREF[floor]}")
			t="warm open <= 1.3 x f: $(verdict awk -v x="${x:-99}" 'BEGIN { exit !(x <= 1.3) }')"
		fi
		record3 latency "$s" "$m" "${LATV[$s|$m]}" us LREF "$t"
	done
	if [[ $s == unshare ]]; then
		record latency "$l" isolated "$iso/$runs" count \
			"100%: $(verdict test "$iso" = "$runs")"
	else
		record latency "$l" isolated "$iso/$runs" count
	fi
	if [[ -n ${RC[$s]:-} ]]; then
		echo "bench: latency $s: host exit ${RC[$s]}; stderr:" >&2
		grep -v ' open=PAM_SUCCESS close=PAM_SUCCESS child=0 ' \
			"$W/lat-$s.err" | head -n 5 >&2 || true
	fi
done
if [[ -n ${OPEN50[unshare]:-} ]]; then
	d=$((OPEN50[unshare] - OPEN50[noop]))
	record latency "c - b" "open p50" "$d" us \
		"<= 300 us: $(verdict test "$d" -le 300)"
	record latency "c - a" "open p50" $((OPEN50[unshare] - OPEN50[permit])) us
	[[ ${OPEN50[floor]} =~ ^[0-9]+$ ]] &&
		record latency "c - f" "open p50" $((OPEN50[unshare] - OPEN50[floor])) us
	record latency "c - b" "total p50" \
		$((TOTAL50[unshare] - TOTAL50[noop])) us
	record latency "c - a" "total p50" \
		$((TOTAL50[unshare] - TOTAL50[permit])) us
fi

# --- 1b. fresh host -----------------------------------------------------------
# What a login waits for: a new host process, from before pam_start to the
# return of pam_open_session (pamhost's start_open_us, -m nofork), module
# loading included (b loads the Go runtime in pam_start, c in its open).
# One host per stack per round, the stacks taking turns, COLD rounds; the
# median is reported. Two more pam_unshare stacks split c into its parts:
#   e  the user exempt: the Go library is loaded and decides, no namespace
#   o  user_manager=off: the namespace without the account lookup
# so that b - a is the Go runtime's start (dlopen, relocation, runtime),
# e - b our library (the front's checks, its larger relocation, package
# initialisers, options and policy), o - e the namespace (the helper's
# trust check, unshare, spawn, the helper until ready), c - o the account
# lookup for the relay. f is the floor's first session in a new process.
COLD_STACKS=(floor floorexec permit noop)
[[ -n ${OPEN50[unshare]:-} ]] && COLD_STACKS+=(exempt nolookup unshare)
declare -A COLDV
for ((r = 0; r < COLD; r++)); do
	for s in "${COLD_STACKS[@]}"; do
		read -r -a cmd <<<"$(host "$s")"
		timeout -k 5 60 "${cmd[@]}" -m nofork 2>&1 >/dev/null |
			sed -n 's/.* start_open_us=\([0-9]*\).*/\1/p' >>"$W/cold-$s" || true
	done
done
for s in "${COLD_STACKS[@]}"; do
	touch "$W/cold-$s"
	COLDV[$s]=$(pct "$W/cold-$s" 50)
done
for s in "${COLD_STACKS[@]}"; do
	t=
	if [[ $s == unshare ]]; then
		x=$(ratio "${COLDV[unshare]}" "${COLDV[noop]}")
		t="<= 1.25 x b: $(verdict awk -v x="${x:-99}" 'BEGIN { exit !(x <= 1.25) }')"
	fi
	record3 "fresh host" "$s" "pam_start to open, p50 of $(wc -l <"$W/cold-$s")" \
		"${COLDV[$s]}" us COLDV "$t"
done
if [[ -n ${COLDV[unshare]:-} ]]; then
	# breakdown NAME MINUEND SUBTRAHEND: one row of the breakdown.
	breakdown() {
		[[ ${COLDV[$2]} =~ ^[0-9]+$ && ${COLDV[$3]} =~ ^[0-9]+$ ]] || return 0
		local d=$((COLDV[$2] - COLDV[$3]))
		record_x "fresh host" "$1" "p50 difference" "$d" us \
			"$(ratio "$d" "${COLDV[permit]}")" "$(ratio "$d" "${COLDV[noop]}")" \
			"$(ratio "$d" "${COLDV[floor]}")" "${LABEL[$2]%% *} - ${LABEL[$3]%% *}"
	}
	record "fresh host" "a: libpam, pam_start, pam_permit" "p50" "${COLDV[permit]}" us
	breakdown "Go runtime: dlopen, relocation, runtime start" noop permit
	breakdown "our library: front checks, relocation, initialisers, options, policy" exempt noop
	breakdown "the namespace: trust check, unshare, helper spawn until ready" nolookup exempt
	breakdown "account lookup (NSS) for the relay" unshare nolookup
fi

# --- 1c. fresh host, counted -------------------------------------------------
# The same fresh-host runs, measured by what does not depend on the load of
# the machine (each only if its tool is installed):
#   callgrind  instructions the host executes (all its threads; not the
#              helper, which valgrind does not follow into its exec), per
#              stack, and for c split by object: the dynamic linker
#              (loading and relocating), libc, the Go library, the rest
#   inittrace  GODEBUG=inittrace=1: the Go package initialisers' clock
#              time, bytes and allocations, summed, for b and c
#   strace -c  system calls of the whole session (open and close, host
#              threads and children, the helper included)
if command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null; then
	declare -A IRV
	for s in "${COLD_STACKS[@]}"; do
		read -r -a cmd <<<"$(host "$s")"
		: >"$W/ir-$s"
		# Three runs, the median reported: thread scheduling moves the
		# count by a few percent. No asynchronous preemption: its
		# signals can trip callgrind's signal bookkeeping (an assertion
		# in threads.c), and it changes no instruction of ours.
		for ((i = 0; i < 3; i++)); do
			rm -f "$W"/cg.*
			# Not its exit status: e's host fails (PAM_IGNORE from the
			# only session module), and a run that valgrind could not
			# finish leaves no summary line.
			GODEBUG=asyncpreemptoff=1 timeout -k 5 300 valgrind --tool=callgrind \
				--callgrind-out-file="$W/cg.%p" "${cmd[@]}" -m nofork \
				>/dev/null 2>&1 || true
			# The host's own profile is the largest; forked children
			# (the floor's PID 1, the helper before its exec) have
			# their own.
			best='' max=0
			for f in "$W"/cg.*; do
				[[ -e $f ]] || continue
				n=$(awk '$1 == "summary:" || $1 == "totals:" { print $2; exit }' "$f")
				if ((${n:-0} > max)); then max=$n best=$f; fi
			done
			((max > 0)) && echo "$max" >>"$W/ir-$s"
			if [[ $s == unshare && -n $best ]]; then
				callgrind_annotate --threshold=100 "$best" 2>/dev/null |
					awk '$1 ~ /^[0-9,]+$/ && $NF ~ /^\[.*\]$/ {
						n = $1; gsub(/,/, "", n); o = $NF
						if (o ~ /ld-linux/) k = "dynamic linker (load, relocation)"
						else if (o ~ /libc\.so/) k = "libc"
						else if (o ~ /pam_unshare_go\.so\]$/) k = "Go library (runtime and ours)"
						else k = "other (libpam, pamhost, front)"
						s[k] += n }
					END { for (k in s) print s[k] "\t" k }' >"$W/cg-objects" || true
			fi
		done
		IRV[$s]=$(pct "$W/ir-$s" 50)
	done
	for s in "${COLD_STACKS[@]}"; do
		record3 "fresh host, counted" "$s" "instructions (callgrind)" "${IRV[$s]}" Ir IRV
	done
	if [[ -n ${IRV[unshare]:-} ]]; then
		irdiff() {
			[[ ${IRV[$2]} =~ ^[0-9]+$ && ${IRV[$3]} =~ ^[0-9]+$ ]] || return 0
			local d=$((IRV[$2] - IRV[$3]))
			record_x "fresh host, counted" "$1" "instructions, difference" "$d" Ir \
				"$(ratio "$d" "${IRV[permit]}")" "$(ratio "$d" "${IRV[noop]}")" \
				"$(ratio "$d" "${IRV[floor]}")" "${LABEL[$2]%% *} - ${LABEL[$3]%% *}"
		}
		irdiff "Go runtime: dlopen, relocation, runtime start" noop permit
		irdiff "our library: front checks, relocation, initialisers, options, policy" exempt noop
		irdiff "the namespace: trust check, unshare, helper spawn until ready" nolookup exempt
		irdiff "account lookup (NSS) for the relay" unshare nolookup
		while IFS=$'\t' read -r n k; do
			record "fresh host, counted" "c: $k" "instructions" "$n" Ir
		done < <(sort -rn "$W/cg-objects" 2>/dev/null)
	fi
fi
for s in noop unshare; do
	[[ " ${COLD_STACKS[*]} " == *" $s "* ]] || continue
	read -r -a cmd <<<"$(host "$s")"
	GODEBUG=inittrace=1 timeout -k 5 60 "${cmd[@]}" -m nofork 2>&1 >/dev/null |
		awk '$1 == "init" { n++; ms += $5; b += $8; a += $10 }
			END { printf "%d %.3f %d %d\n", n, ms, b, a }' >"$W/init-$s" || true
	read -r pk ms by al <"$W/init-$s" || continue
	record "fresh host, counted" "${LABEL[$s]}" "package initialisers (inittrace)" "$pk" count \
		"$ms ms clock, $by bytes, $al allocations"
done
if command -v strace >/dev/null; then
	declare -A SYSV
	for s in "${COLD_STACKS[@]}"; do
		read -r -a cmd <<<"$(host "$s")"
		timeout -k 5 60 strace -f -c -o "$W/strace-$s" "${cmd[@]}" -m nofork \
			>/dev/null 2>&1 || true
		# The total line: % time, seconds, usecs/call, calls, errors.
		SYSV[$s]=$(awk '$NF == "total" { print $4; exit }' "$W/strace-$s" 2>/dev/null)
	done
	for s in "${COLD_STACKS[@]}"; do
		record3 "fresh host, counted" "$s" "system calls, whole session (strace -f)" \
			"${SYSV[$s]:-}" count SYSV
	done
fi

# --- 2. host memory and the helper ------------------------------------------
# One host holds a session open with a sleeping leader; sample it (and,
# for c, its helper) from here. The floor's host is sampled too, so that
# each figure has its ratio to a, b and f.
MEM_METRICS=("host PSS" "host private (clean+dirty)" "host private dirty"
	"host RSS" "host threads" "host open fds")
declare -A MEMV
for s in "${LAT_STACKS[@]}"; do
	l=${LABEL[$s]}
	hold=2
	[[ $s == unshare ]] && hold=8
	read -r -a cmd <<<"$(host "$s")"
	"${cmd[@]}" -- /bin/sleep "$hold" >/dev/null 2>"$W/mem-$s.err" &
	hp=$!
	BG_PIDS+=("$hp")
	if ! wait_child "$hp" sleep >/dev/null; then
		record memory "$l" "session open" no "" "see stderr"
		cat "$W/mem-$s.err" >&2
		wait "$hp" || true
		continue
	fi
	sleep 0.3
	PSS[$s]=$(field "/proc/$hp/smaps_rollup" Pss)
	PRIV[$s]=$(private "$hp")
	DIRTY[$s]=$(private_dirty "$hp")
	fds=(/proc/"$hp"/fd/*)
	MEMV[$s|host PSS]=${PSS[$s]}
	k="host private (clean+dirty)"
	MEMV[$s|$k]=${PRIV[$s]}
	MEMV[$s|host private dirty]=${DIRTY[$s]}
	MEMV[$s|host RSS]=$(field "/proc/$hp/status" VmRSS)
	MEMV[$s|host threads]=$(field "/proc/$hp/status" Threads)
	MEMV[$s|host open fds]=${#fds[@]}
	if [[ $s == unshare ]]; then
		if hpid=$(child_with_comm "$hp" "$HELPER_COMM"); then
			st=/proc/$hpid/status
			ro=/proc/$hpid/smaps_rollup
			pss=$(field "$ro" Pss)
			priv=$(private "$hpid")
			thr=$(field "$st" Threads)
			w0=$(switches "$hpid")
			sleep 5
			w1=$(switches "$hpid")
			record helper "$l" PSS "$pss" KiB \
				"<= 256 KiB: $(verdict test "${pss:-0}" -le 256)"
			record helper "$l" "private (clean+dirty)" "$priv" KiB
			record helper "$l" RSS "$(field "$st" VmRSS)" KiB
			record helper "$l" "executable size" \
				$(($(stat -c %s "$HELPER") / 1024)) KiB
			record helper "$l" threads "$thr" count \
				"1: $(verdict test "$thr" = 1)"
			if [[ -n $w0 && -n $w1 ]]; then
				record helper "$l" "wakeups in 5 s idle" \
					$((w1 - w0)) count \
					"0: $(verdict test $((w1 - w0)) = 0)"
			else
				record helper "$l" "wakeups in 5 s idle" - count \
					"helper exited while idle"
			fi
		else
			record helper "$l" "helper found" no "" \
				"no child named $HELPER_COMM"
		fi
	fi
	rc=0
	wait "$hp" || rc=$?
	BG_PIDS=()
	[[ $rc == 0 ]] || { echo "bench: memory $s: exit $rc" >&2;
		cat "$W/mem-$s.err" >&2; }
done

for s in "${LAT_STACKS[@]}"; do
	for m in "${MEM_METRICS[@]}"; do
		[[ -n ${MEMV[$s|$m]:-} ]] || continue
		# shellcheck disable=SC2034 # read by record3 through a nameref
		declare -A MREF=([permit]=${MEMV[permit|$m]:-} [noop]=${MEMV[noop|$m]:-}
			[floor]=${MEMV[floor|$m]:-})
		u=KiB
		[[ $m == "host threads" || $m == "host open fds" ]] && u=count
		record3 memory "$s" "$m" "${MEMV[$s|$m]}" "$u" MREF
	done
done
if [[ -n ${PSS[noop]:-} && -n ${PSS[permit]:-} ]]; then
	record memory "b - a" "host PSS" $((PSS[noop] - PSS[permit])) KiB
fi
if [[ -n ${PSS[unshare]:-} && -n ${PSS[noop]:-} ]]; then
	record memory "c - b" "host PSS" $((PSS[unshare] - PSS[noop])) KiB
fi
if [[ -n ${PRIV[unshare]:-} && -n ${PRIV[permit]:-} ]]; then
	record memory "c - a" "host private (clean+dirty), one host" \
		$((PRIV[unshare] - PRIV[permit])) KiB \
		"includes the Go library's code, shared by all hosts"
	d=$((DIRTY[unshare] - DIRTY[permit]))
	record memory "c - a" "host private dirty per live session" "$d" KiB \
		"<= 1024 KiB: $(verdict test "$d" -le 1024)"
fi

# --- 3. teardown -------------------------------------------------------------
# close = pam_close_session; empty = from its return until no process is
# left in the session's PID namespace (pamhost -e polls every 100 us).
# teardown NAME COUNT CMD...: one row set per kind of session.
teardown() {
	local name=$1 count=$2 rc=0 f=$W/td-$1
	shift 2
	timeout -k 5 120 "$PAMHOST" -c "$CONF" -s unshare -u "$BENCH_USER" \
		-n "$count" -t -e -- "$@" >"$f.out" 2>"$f.err" || rc=$?
	grep -E '^[0-9]+,[0-9]+,[0-9]+,[01],-?[0-9]+,-?[0-9]+$' "$f.out" \
		>"$f.csv" || true
	cut -d, -f5 "$f.csv" >"$f.close"
	awk -F, '$6 >= 0 { print $6 }' "$f.csv" >"$f.empty"
	record teardown "$name" "sessions ok" \
		"$(grep -c ' open=PAM_SUCCESS close=PAM_SUCCESS ' "$f.err" ||
			true)/$count" count "pamhost exit $rc"
	record teardown "$name" "close p50" "$(pct "$f.close" 50)" us
	record teardown "$name" "close p99" "$(pct "$f.close" 99)" us
	record teardown "$name" "namespace emptied" \
		"$(wc -l <"$f.empty")/$count" count
	record teardown "$name" "close->empty p50" "$(pct "$f.empty" 50)" us
	record teardown "$name" "close->empty max" "$(pct "$f.empty" 100)" us
}
if [[ -n ${OPEN50[unshare]:-} ]]; then
	teardown "leader exits" 100 /bin/true
	teardown "orphan left" 20 /bin/sh -c '/bin/sleep 60 & exit 0'
	# Teardown sends SIGHUP with SIGTERM; ignoring both waits out the grace.
	teardown "orphan ignores TERM and HUP" 3 \
		/bin/sh -c 'trap "" TERM HUP; /bin/sleep 60 & exit 0'
fi

# --- 4. scale ----------------------------------------------------------------
# SCALE pamhost processes, each holding one session whose leader sleeps.
if [[ -n ${OPEN50[unshare]:-} ]]; then
	l="$SCALE sessions"
	record limits host kernel.pid_max "$(cat /proc/sys/kernel/pid_max)" count
	record limits host kernel.threads-max \
		"$(cat /proc/sys/kernel/threads-max)" count
	record limits host user.max_pid_namespaces \
		"$(cat /proc/sys/user/max_pid_namespaces)" count
	record limits host user.max_mnt_namespaces \
		"$(cat /proc/sys/user/max_mnt_namespaces)" count
	record limits host "ulimit -n" "$(ulimit -n)" count
	record limits host "ulimit -u" "$(ulimit -u)" count
	pid_namespaces >"$W/ns-before"
	tasks0=$(count_tasks)
	mem0=$(field /proc/meminfo MemAvailable)
	hosts=()
	t0=$(now_us)
	for ((i = 0; i < SCALE; i++)); do
		"$PAMHOST" -c "$CONF" -s unshare -u "$BENCH_USER" -- \
			/bin/sleep 600 >/dev/null 2>>"$W/scale.err" &
		hosts+=("$!")
		BG_PIDS+=("$!")
	done
	t_launch=$(now_us)
	printf '%s\n' "${hosts[@]}" >"$W/hosts"
	# Wait until every session has its leader, or every host that has
	# none has exited, or 120 s pass.
	live=0
	for ((i = 0; i < 1200; i++)); do
		children_of "$W/hosts" >"$W/children"
		live=$(leaders_in "$W/children" | wc -l)
		((live >= SCALE)) && break
		(($(count_running "${hosts[@]}") > live)) || break
		sleep 0.1
	done
	t_open=$(now_us)
	sleep 1
	children_of "$W/hosts" >"$W/children"
	mapfile -t leaders < <(leaders_in "$W/children")
	mapfile -t helpers < <(helpers_in "$W/children")
	live=${#leaders[@]}
	# The sessions' PID namespaces, to check afterwards that none is left.
	for p in "${leaders[@]}"; do
		echo "/proc/$p/ns/pid"
	done | { xargs -r readlink 2>/dev/null || true; } | sort -u >"$W/ns-mine"
	tasks1=$(count_tasks)
	mem1=$(field /proc/meminfo MemAvailable)
	helper_pss=$(sum_pss "${helpers[@]}")
	host_pss=$(sum_pss "${hosts[@]}")
	record scale "$l" "live sessions" "$live/$SCALE" count \
		"zero failures: $(verdict test "$live" = "$SCALE")"
	record scale "$l" "helpers" "${#helpers[@]}" count
	record scale "$l" "launch $SCALE hosts" $(((t_launch - t0) / 1000)) ms
	record scale "$l" "time to open all" $(((t_open - t0) / 1000)) ms \
		"from the first launch"
	record scale "$l" "helpers total PSS" "$helper_pss" KiB
	record scale "$l" "helper PSS mean" \
		$((helper_pss / (${#helpers[@]} > 0 ? ${#helpers[@]} : 1))) KiB
	record scale "$l" "hosts total PSS" "$host_pss" KiB
	((live > 0)) && record scale "$l" "host PSS mean" $((host_pss / live)) KiB \
		"pam_permit host alone: ${PSS[permit]:-?} KiB"
	record scale "$l" "MemAvailable drop" $(((mem0 - mem1) / 1024)) MiB \
		"machine-wide"
	record scale "$l" "MemAvailable drop per session" \
		$(((mem0 - mem1) / SCALE)) KiB
	record scale "$l" "tasks (threads) before / during" \
		"$tasks0 / $tasks1" count
	if ((live > 0)); then
		# Counted on the sessions' own processes, so that what others
		# run on the machine meanwhile does not count.
		own=$(( $(sum_threads "${hosts[@]}") + ${#helpers[@]} + ${#leaders[@]} ))
		record scale "$l" "tasks per session" \
			"$(awk -v t="$own" -v n="$live" 'BEGIN { printf "%.2f", t / n }')" count \
			"< 8: $(verdict test "$own" -lt $((8 * live))) (host threads + helper + leader)"
		per=$(((tasks1 - tasks0) / live))
		record scale "$l" "tasks per session, machine-wide" "$per" count \
			"tasks during - before, over live sessions"
		((per > 0)) && record scale "$l" "sessions kernel.pid_max allows" \
			$((($(cat /proc/sys/kernel/pid_max) - tasks0) / per)) count \
			"at this many tasks per session"
	fi
	# Teardown: SIGTERM each leader by PID, then wait for every host.
	t1=$(now_us)
	for p in "${leaders[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for ((i = 0; i < 6000; i++)); do
		left=$(count_running "${hosts[@]}")
		((left == 0)) && break
		sleep 0.01
	done
	t2=$(now_us)
	wait || true
	BG_PIDS=()
	record scale "$l" "time to tear all down" $(((t2 - t1) / 1000)) ms
	record scale "$l" "hosts still running after 60 s" "$left" count
	ok=$(grep -c ' open=PAM_SUCCESS close=PAM_SUCCESS ' "$W/scale.err" ||
		true)
	record scale "$l" "open+close PAM_SUCCESS" "$ok/$SCALE" count
	fails=$(grep -v ' open=PAM_SUCCESS close=PAM_SUCCESS ' "$W/scale.err" |
		sort | uniq -c | sort -rn | head -n 3 || true)
	[[ -z $fails ]] || printf 'bench: scale failures:\n%s\n' "$fails" >&2
	sleep 0.5
	pid_namespaces >"$W/ns-after"
	mine=$(wc -l <"$W/ns-mine")
	mine_left=$(comm -12 "$W/ns-mine" "$W/ns-after" | wc -l)
	newns=$(comm -13 "$W/ns-before" "$W/ns-after" | wc -l)
	# Processes in another PID namespace than PID 1's; if PID 1's link is
	# unreadable (some sandboxes deny it even to root), than this shell's.
	# Machine-wide, so other sessions opened meanwhile count here too.
	ref=/proc/1/ns/pid
	init_ns=$(readlink $ref 2>/dev/null) ||
		{ ref=/proc/self/ns/pid; init_ns=$(readlink $ref); }
	other=0
	for f in /proc/[0-9]*/ns/pid; do
		n=$(readlink "$f" 2>/dev/null) || continue
		[[ $n == "$init_ns" ]] || other=$((other + 1))
	done
	if ((mine_left > 0)); then
		echo "bench: processes left in the sessions' PID namespaces:" >&2
		comm -12 "$W/ns-mine" "$W/ns-after" >"$W/ns-left"
		for f in /proc/[0-9]*/ns/pid; do
			n=$(readlink "$f" 2>/dev/null) || continue
			if grep -qxF "$n" "$W/ns-left"; then
				p=${f#/proc/}
				p=${p%%/*}
				echo "  $n: $(tr '\0' ' ' <"/proc/$p/cmdline" \
					2>/dev/null) ($(grep -E '^(PPid|NSpid)' \
					"/proc/$p/status" 2>/dev/null | tr '\n\t' '  '))" >&2
			fi
		done
	fi
	record scale "$l" "session PID namespaces seen" "$mine" count
	record scale "$l" "of those still with a process" "$mine_left" count \
		"0: $(verdict test "$mine_left" = 0)"
	record scale "$l" "new PID namespaces on the machine" "$newns" count \
		"machine-wide"
	record scale "$l" "processes outside ${ref%/ns/pid}/ns/pid" "$other" \
		count "machine-wide"
fi
fi # BENCH_ONLY

# --- 5. per-user namespaces (scope=user) -------------------------------------
# create: sessions one after another, each alone, so each open creates the
# namespace (and each close ends it). join: the same while another session
# holds the namespace, so each open joins it. Then PERUSER sessions at once
# in one namespace: the helper's PSS, threads and idle wakeups.
# The rendezvous goes to a private /run (this script's mount namespace).
PERUSER=${PERUSER:-50}
if [[ -e $MODULE && -e $HELPER && ${BENCH_ONLY:-peruser} == peruser ]]; then
	mount -t tmpfs -o mode=755 bench-run /run
	echo "session required $MODULE helper=$HELPER scope=user" >"$CONF/user"
	# peruser_latency NAME: N sessions in one pamhost; open p50/p90.
	peruser_latency() {
		local f=$W/pu-$1 rc=0
		timeout -k 5 120 "$PAMHOST" -c "$CONF" -s user -u "$BENCH_USER" \
			-n $((N + 1)) -t -- /bin/true >"$f.out" 2>"$f.err" || rc=$?
		grep -E '^[0-9]+,' "$f.out" | awk -F, '$1 > 0 { print $2 }' >"$f.open"
		record peruser "$1" "sessions ok" \
			"$(grep -c ' open=PAM_SUCCESS close=PAM_SUCCESS child=0 ' \
				"$f.err" || true)/$((N + 1))" count "pamhost exit $rc"
		record peruser "$1" "open p50" "$(pct "$f.open" 50)" us
		record peruser "$1" "open p90" "$(pct "$f.open" 90)" us
		PU50[$1]=$(pct "$f.open" 50)
	}
	declare -A PU50
	peruser_latency create
	"$PAMHOST" -c "$CONF" -s user -u "$BENCH_USER" -- /bin/sleep 600 \
		>/dev/null 2>&1 &
	holder=$!
	BG_PIDS+=("$holder")
	hpid=$(wait_child "$holder" pam_unshare) || hpid=
	peruser_latency join
	record peruser "join - create" "open p50" \
		$((PU50[join] - PU50[create])) us \
		"<= 0: $(verdict test "${PU50[join]}" -le "${PU50[create]}")"
	for ((i = 1; i < PERUSER; i++)); do
		"$PAMHOST" -c "$CONF" -s user -u "$BENCH_USER" -- /bin/sleep 600 \
			>/dev/null 2>&1 &
		BG_PIDS+=("$!")
	done
	l="$PERUSER sessions, 1 namespace"
	for ((i = 0; i < 300; i++)); do
		n=$(pgrep -c -f '^/bin/sleep 600$' || true)
		((n >= PERUSER)) && break
		sleep 0.1
	done
	sleep 1
	record peruser "$l" "sessions live" "$n/$PERUSER" count
	record peruser "$l" "helpers" "$(pgrep -c -x pam_unshare || true)" count \
		"1 (machine-wide)"
	if [[ -n $hpid ]]; then
		pss=$(field "/proc/$hpid/smaps_rollup" Pss)
		thr=$(field "/proc/$hpid/status" Threads)
		w0=$(switches "$hpid")
		sleep 5
		w1=$(switches "$hpid")
		record peruser "$l" "helper PSS" "$pss" KiB \
			"<= 256 KiB: $(verdict test "${pss:-999}" -le 256)"
		record peruser "$l" "helper threads" "$thr" count \
			"1: $(verdict test "$thr" = 1)"
		record peruser "$l" "helper wakeups in 5 s idle" $((w1 - w0)) count \
			"0: $(verdict test $((w1 - w0)) = 0)"
	fi
	for p in "${BG_PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	wait || true
	BG_PIDS=()
fi

# --- 6. the user manager's relay (user_manager=relay) ---------------------------
# With a stand-in user manager listening (test/manager.py, as BENCH_USER, in
# this script's private /run), so that every session's helper covers its
# socket: open latency with the relay and with user_manager=off, taking
# turns; and one call through the relay from inside a session against the
# same call made directly from outside any session (median of 50 each).
if [[ -e $MODULE && -e $HELPER && ${BENCH_ONLY:-relay} == relay ]]; then
	# A private /run (section 5 may have made it already).
	findmnt -n -o SOURCE /run | grep -qx bench-run || mount -t tmpfs -o mode=755 bench-run /run
	ROUNDS=${ROUNDS:-5}
	PER_RUN=$(((N + ROUNDS - 1) / ROUNDS))
	uid=$(id -u "$BENCH_USER")
	gid=$(id -g "$BENCH_USER")
	rt=/run/user/$uid
	mkdir -p "$rt"
	mount -t tmpfs -o "uid=$uid,gid=$gid,mode=700,size=1m" bench-runtime "$rt"
	as_user=(setpriv --reuid="$uid" --regid="$gid" --clear-groups)
	"${as_user[@]}" mkdir "$rt/systemd"
	MANAGER_PY=$(cd "$(dirname "$0")/.." && pwd)/manager.py
	"${as_user[@]}" /usr/bin/python3 "$MANAGER_PY" serve "$rt/systemd/private" bench >/dev/null 2>&1 &
	BG_PIDS+=("$!")
	for ((i = 0; i < 100; i++)); do
		[[ -S $rt/systemd/private ]] && break
		sleep 0.05
	done
	service relay "session required $MODULE helper=$HELPER user_manager=relay"
	service relayoff "session required $MODULE helper=$HELPER user_manager=off"
	declare -A RL50
	for s in relay relayoff; do : >"$W/rl-$s.open"; done
	for ((r = 0; r < ROUNDS; r++)); do
		for s in relay relayoff; do
			timeout -k 5 120 "$PAMHOST" -c "$CONF" -s "$s" -u "$BENCH_USER" \
				-n $((PER_RUN + 1)) -t -- /bin/true 2>/dev/null |
				awk -F, '/^[0-9]+,/ && $1 > 0 { print $2 }' >>"$W/rl-$s.open" || true
		done
	done
	for s in relay relayoff; do
		RL50[$s]=$(pct "$W/rl-$s.open" 50)
		record relay "$s" "open p50" "${RL50[$s]}" us "$(wc -l <"$W/rl-$s.open") sessions"
	done
	record relay "relay - off" "open p50" $((RL50[relay] - RL50[relayoff])) us
	direct=$("${as_user[@]}" /usr/bin/python3 "$MANAGER_PY" time "$rt/systemd/private" 50 || true)
	inside=$("$PAMHOST" -c "$CONF" -s relay -u "$BENCH_USER" -- "$(command -v setpriv)" "${as_user[@]:1}" \
		/usr/bin/python3 "$MANAGER_PY" time "$rt/systemd/private" 50 2>/dev/null | grep -E '^[0-9]+$' || true)
	record relay "one call, outside a session" "p50" "${direct:-NA}" us "direct to the manager"
	record relay "one call, inside a session" "p50" "${inside:-NA}" us "through the relay"
	for p in "${BG_PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	wait || true
	BG_PIDS=()
fi

{
	echo "| section | case | metric | value | unit | x a | x b | x f | target |"
	echo "|---|---|---|---|---|---|---|---|---|"
	# Rows grouped by section, in the order the sections appear above.
	for sec in "no session" latency "fresh host" "fresh host, counted" memory helper \
		teardown limits scale peruser relay; do
		for r in "${ROWS[@]}"; do
			if [[ $r == "| $sec |"* ]]; then printf '%s\n' "$r"; fi
		done
	done
} | tee "$MD"

# One line of ratios, all from this run, to compare machines by: f is the
# syscall floor, a pam_permit, b the Go no-op, c pam_unshare.
if [[ -z ${BENCH_ONLY:-} ]]; then
	x() { local r; r=$(ratio "$1" "$2"); echo "${r:-NA}"; }
	echo "summary: fresh-host open c/b=$(x "${COLDV[unshare]:-}" "${COLDV[noop]:-}")" \
		"c/f=$(x "${COLDV[unshare]:-}" "${COLDV[floor]:-}")" \
		"b/f=$(x "${COLDV[noop]:-}" "${COLDV[floor]:-}")" \
		"a/f=$(x "${COLDV[permit]:-}" "${COLDV[floor]:-}")" \
		"| warm open c/f=$(x "${OPEN50[unshare]:-}" "${OPEN50[floor]:-}")" \
		"c/g=$(x "${OPEN50[unshare]:-}" "${OPEN50[floorexec]:-}")" \
		"g/f=$(x "${OPEN50[floorexec]:-}" "${OPEN50[floor]:-}")" \
		"c/a=$(x "${OPEN50[unshare]:-}" "${OPEN50[permit]:-}")" \
		"| session total c/f=$(x "${TOTAL50[unshare]:-}" "${TOTAL50[floor]:-}")" \
		"| live session host threads c/f=$(x "${MEMV[unshare|host threads]:-}" "${MEMV[floor|host threads]:-}")" \
		"c/b=$(x "${MEMV[unshare|host threads]:-}" "${MEMV[noop|host threads]:-}")" \
		"private dirty c/f=$(x "${DIRTY[unshare]:-}" "${DIRTY[floor]:-}")" \
		"c/b=$(x "${DIRTY[unshare]:-}" "${DIRTY[noop]:-}")" \
		"| instructions c/b=$(x "${IRV[unshare]:-}" "${IRV[noop]:-}")" \
		"| syscalls c/f=$(x "${SYSV[unshare]:-}" "${SYSV[floor]:-}")" | tee -a "$MD"
fi
echo "bench: results in $CSV and $MD" >&2

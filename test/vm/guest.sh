# shellcheck shell=bash
# guest.sh - what the VM scenarios share: observing the guest from the
# host side (helpers, processes in other PID namespaces, the host's /proc)
# and what a session sees. Sourced by scenarios.sh before the scenario
# files; tmp, T, HELPER and the TAP helpers come from scenarios.sh.
# shellcheck disable=SC2154,SC2153,SC2034

# ---- observing the guest from the host side -------------------------------

# helper_pids prints the PIDs of live session helpers that were not there
# at mark_leftovers.
helper_pids() {
	local p
	for p in $(pgrep -x "$HELPER_COMM" | grep -vxF -f "$tmp/known"); do
		[ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$HELPER" ] && echo "$p"
	done
}

# foreign_pids prints the PID of every process whose PID namespace is not
# the host's (session helpers and everything inside sessions).
foreign_pids() {
	# One find for all processes: a readlink per process costs seconds
	# under TCG.
	find /proc/[0-9]*/ns/pid -maxdepth 0 -printf '%p %l\n' 2>/dev/null |
		awk -v host="$host_pidns" '$2 != host { split($1, p, "/"); print p[3] }'
}

# mark_leftovers records the processes already outside the host's PID
# namespace, so that a check reports only what the scenario under test left
# behind (an earlier leak is reported once, by the check that caused it).
mark_leftovers() { foreign_pids >"$tmp/known"; }
: >"$tmp/known"

# new_foreign_pids: foreign_pids minus those recorded by mark_leftovers.
new_foreign_pids() { foreign_pids | grep -vxF -f "$tmp/known"; }

# proc_line PID: one line describing a process, for diagnostics.
proc_line() {
	local p=$1
	printf 'pid %s ppid %s state %s comm %s pidns %s nspid %s args: %s\n' "$p" \
		"$(awk '/^PPid:/ { print $2 }' "/proc/$p/status" 2>/dev/null)" \
		"$(awk '/^State:/ { print $2 }' "/proc/$p/status" 2>/dev/null)" \
		"$(cat "/proc/$p/comm" 2>/dev/null)" \
		"$(readlink "/proc/$p/ns/pid" 2>/dev/null)" \
		"$(awk '/^NSpid:/ { $1 = ""; print }' "/proc/$p/status" 2>/dev/null | tr -s ' ' | tr ' ' '/')" \
		"$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
}

# describe_leftovers PID...: each process, then each host-side parent with
# where it is blocked (wchan and kernel stack).
describe_leftovers() {
	local p pp parents=""
	for p in "$@"; do
		proc_line "$p"
		pp=$(awk '/^PPid:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
		[ -n "$pp" ] && [ "$(readlink "/proc/$pp/ns/pid" 2>/dev/null)" = "$host_pidns" ] &&
			parents="$parents $pp"
	done
	for pp in $(echo "$parents" | tr ' ' '\n' | sort -un); do
		echo "host parent: $(proc_line "$pp")"
		echo "  wchan: $(cat "/proc/$pp/wchan" 2>/dev/null)"
		sed 's/^/  stack: /' "/proc/$pp/stack" 2>/dev/null | head -n 8
	done
}

# proc_mounts prints the mount points at or under /proc, without duplicates
# (binfmt_misc shows as autofs, plus binfmt_misc once triggered).
proc_mounts() {
	awk '$5 == "/proc" || $5 ~ /^\/proc\// { print $5 }' /proc/1/mountinfo | sort -u
}
proc_mounts_baseline=$(proc_mounts)

# host_intact: the host's /proc is still the host's, with all its mounts.
host_intact() {
	local self now
	self=$(readlink /proc/self) || { fail "host: /proc/self does not resolve"; return 1; }
	case $self in
	'' | *[!0-9]* | 1 | 2) { fail "host: /proc/self is '$self'"; return 1; } ;;
	esac
	[ "$(cat /proc/1/comm)" = systemd ] || { fail "host: /proc/1/comm is $(cat /proc/1/comm)"; return 1; }
	now=$(proc_mounts)
	[ "$now" = "$proc_mounts_baseline" ] || {
		echo "host: mounts under /proc changed"
		echo "before:"
		echo "$proc_mounts_baseline"
		echo "now:"
		echo "$now"
		return 1
	}
	findmnt -n /proc/sys/fs/binfmt_misc >/dev/null ||
		{ fail "host: nothing mounted at /proc/sys/fs/binfmt_misc"; return 1; }
}

# host_clean: two seconds after a session, the host /proc is intact and
# nothing that was not there at mark_leftovers is left in another PID
# namespace (no helper, no session process).
host_clean() {
	local left
	sleep 2
	host_intact || return 1
	left=$(new_foreign_pids)
	[ -z "$left" ] || {
		echo "processes left in other PID namespaces:"
		# shellcheck disable=SC2086 # a list of PIDs
		describe_leftovers $left
		return 1
	}
	left=$(foreign_pids | wc -l)
	[ "$left" = 0 ] || echo "($left processes left over by earlier checks)"
}

# helper_of PID: the helper whose parent is PID (the process that opened
# the PAM session).
helper_of() {
	local h
	for h in $(helper_pids); do
		[ "$(awk '/^PPid:/ { print $2 }' "/proc/$h/status" 2>/dev/null)" = "$1" ] && echo "$h"
	done
}

# helper_for SERVICE USER: a helper whose argv ends in "SERVICE USER".
helper_for() {
	local h
	for h in $(helper_pids); do
		case $(tr '\0' ' ' <"/proc/$h/cmdline" 2>/dev/null) in
		*" $1 $2 ") echo "$h" ;;
		esac
	done
}

helpers_at_least() { [ "$(helper_pids | wc -l)" -ge "$1" ]; }
has_helper_of() { [ -n "$(helper_of "$1")" ]; }
has_helper_for() { [ -n "$(helper_for "$1" "$2")" ]; }

journal_since() {
	journalctl --no-pager -o short-precise --since "@$1" 2>/dev/null
}

# ---- what a session sees --------------------------------------------------

# The command each session runs to list its processes.
PS_ARGV=(ps -eo "pid,user,stat,comm,args")
PS_CMD=${PS_ARGV[*]}

# sees_only_session FILE: FILE holds PS_CMD output from inside a session.
# PID 1 must be the helper, ps must see itself, and nothing from the host
# may show: only the helper and the session's own processes.
sees_only_session() {
	local f=$1 bad
	tr -d '\r' <"$f" >"$f.clean"
	awk '$1 == 1 { print $4 }' "$f.clean" | grep -qx "$HELPER_COMM" ||
		{ fail "PID 1 is not $HELPER_COMM"; return 1; }
	awk 'NR > 1 { print $4 }' "$f.clean" | grep -qx ps ||
		{ fail "ps does not list itself (is the output a ps listing?)"; return 1; }
	bad=$(awk -v sshd="$SSHD_COMM" 'NR > 1 && $1 != 1 && $4 !~ "^(ps|bash|sh|sleep|sudo|su|" sshd ")$"' "$f.clean")
	[ -z "$bad" ] || { fail "foreign processes visible: $bad"; return 1; }
	bad=$(grep -E 'systemd|cron|dbus|agetty|\[listener\]|sshd -D|/usr/sbin/sshd' "$f.clean")
	[ -z "$bad" ] || { fail "host processes visible: $bad"; return 1; }
	[ "$(awk 'NR > 1' "$f.clean" | wc -l)" -le 8 ] || { fail "too many processes"; return 1; }
}

# session_check DESC CMD...: run a session command, assert what it sees,
# then assert the host is clean afterwards (scenario 2).
session_check() {
	local desc=$1 rc=0
	shift
	mark_leftovers
	timeout "$T" "$@" >"$tmp/session" 2>"$tmp/session.err" </dev/null || rc=$?
	{
		[ "$rc" = 0 ] || echo "exit status $rc"
		sees_only_session "$tmp/session"
	} >"$tmp/verdict" 2>&1
	if [ "$rc" = 0 ] && [ ! -s "$tmp/verdict" ]; then
		ok "$desc sees only the helper and its own processes"
	else
		not_ok "$desc sees only the helper and its own processes"
		diag "$(
			cat "$tmp/verdict"
			echo "--- output (first 40 lines):"
			head -n 40 "$tmp/session"
			echo "--- stderr:"
			head -n 20 "$tmp/session.err"
		)"
	fi
	check "after $desc: host /proc intact, binfmt_misc mounted, nothing left in another PID namespace" host_clean
}

# ---- what several scenario files use ---------------------------------------

# set_pam_args ARGS: the module line of su, sshd and sudo with ARGS added to
# runner.sh's (PAM_LINE); "" restores it.
set_pam_args() {
	local f
	for f in su sshd sudo; do
		sed -i "s|^session required pam_unshare.so.*\$|$PAM_LINE${1:+ $1}|" "/etc/pam.d/$f"
	done
}

# refused WHAT CMD...: CMD (WHAT, for the message), which would create
# /var/tmp/vmtest-marker, fails and does not run.
refused() {
	local what=$1 marker=/var/tmp/vmtest-marker rc=0
	shift
	rm -f "$marker"
	timeout "$T" "$@" </dev/null || rc=$?
	echo "$what exited $rc"
	[ ! -e "$marker" ] || { fail "$what ran the command although the session was refused"; return 1; }
	[ "$rc" != 0 ] || { fail "$what succeeded"; return 1; }
}

# uid_of USER: USER's uid.
uid_of() { id -u "$1"; }

# pid2_of HELPER: the host PID of PID 2 in HELPER's PID namespace.
pid2_of() {
	local ns p
	ns=$(readlink "/proc/$1/ns/pid") || return 1
	for p in $(foreign_pids); do
		[ "$(readlink "/proc/$p/ns/pid" 2>/dev/null)" = "$ns" ] &&
			awk '/^NSpid:/ && $NF == 2 { f = 1 } END { exit !f }' "/proc/$p/status" 2>/dev/null &&
			echo "$p" && return 0
	done
	return 1
}

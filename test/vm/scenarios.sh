#!/bin/bash
# pam_unshare scenarios, run as root inside the test guest by runner.sh.
#
#   scenarios.sh [SCENARIO...]
#
# Each scenario is a function named sc_NAME that prints one or more TAP
# lines; with no arguments all run in order. Output is TAP: one line per
# check, diagnostics as "# " lines after a failing check, the plan last.
# With VM_SMOKE=1 only the harness checks run (the module is not installed).
#
# The guest is prepared by build-image.sh (users alice, bob, carol in group
# vmtest; root's ssh key logs in as each of them) and by runner.sh, which
# installs the package (dpkg -i; VM_INSTALL=make: copies a `make install`
# tree), creates /etc/pam.d/pamtester-unshare and runs `pam-unshare enable`
# (every service that starts a user's processes, and the guards) and
# `pam-unshare enable pamtester-unshare` (VM_ENABLE=append: appends
# `session required pam_unshare.so` to each itself, and installs no guard).
set -u
export LC_ALL=C

HELPER=/usr/libexec/pam_unshare/pam_unshare-init
MODULE=/usr/lib/x86_64-linux-gnu/security/pam_unshare.so
# The Go library that MODULE loads when a session opens (GO_MODULE in the
# Makefile).
GO_MODULE=/usr/libexec/pam_unshare/pam_unshare_go.so
CLI=/usr/sbin/pam-unshare
PKG=pam-unshare
SERVICES=${SERVICES:-su su-l sshd sudo sudo-i login cron atd pamtester-unshare}
# How runner.sh installed the module (deb or make) and where its logs are.
VM_INSTALL=${VM_INSTALL:-deb}
VM_OUT=${VM_OUT:-/nonexistent}
USER_A=alice
# The module line runner.sh wrote (VM_PAM_ARGS: extra module arguments).
PAM_LINE="session required pam_unshare.so${VM_PAM_ARGS:+ $VM_PAM_ARGS}"
# Per-command limit, so one hung session cannot stall the whole run.
T=120

# tap.sh, the TAP library: next to this file in the guest payload (run.sh
# copies it there), one directory up in the source tree.
here=$(cd "$(dirname "$0")" && pwd)
lib=$here/tap.sh
[ -f "$lib" ] || lib=$here/../tap.sh
# Polling is costly under TCG: helper_pids reads /proc of every process.
TAP_POLL=0.2
# shellcheck source=test/tap.sh
. "$lib"

tmp=$(mktemp -d /tmp/scenarios.XXXXXX) || fatal "mktemp failed"
host_pidns=$(readlink /proc/1/ns/pid)

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

# ---- scenarios ------------------------------------------------------------

# session_stack FILE: FILE's session lines in the order libpam runs them,
# with @include and "session include" (su-l includes su) expanded.
session_stack() {
	local line typ control target
	while read -r line; do
		read -r typ control target _ <<<"$line"
		case $typ:$control in
		@include:*) session_stack "/etc/pam.d/$control" ;;
		session:include | session:substack) session_stack "/etc/pam.d/$target" ;;
		session:* | -session:*) echo "$line" ;;
		esac
	done <"$1"
}

# last_session_line FILE: the module line is the last of FILE's session
# stack.
last_session_line() {
	session_stack "$1" >"$tmp/stack"
	[ "$(tail -n 1 "$tmp/stack")" = "$PAM_LINE" ] || {
		echo "session stack of $1:"
		cat "$tmp/stack"
		return 1
	}
}

sc_harness() {
	check "harness: ssh alice@127.0.0.1 logs in with a key" \
		timeout "$T" ssh "$USER_A@127.0.0.1" true
	check "harness: binfmt_misc is mounted at /proc/sys/fs/binfmt_misc" \
		findmnt /proc/sys/fs/binfmt_misc
	[ "${VM_SMOKE:-0}" = 1 ] && return
	local f built installed
	if [ "$VM_INSTALL" = make ]; then
		built="make install DESTDIR=..."
		installed="the make install tree is copied into /"
	else
		built="make deb"
		installed="dpkg -i installs the package"
	fi
	built=${VM_BUILT:-$built}
	if [ "${VM_INSTALL_RC:-0}" = 0 ]; then
		ok "harness: $built succeeded on the build host"
	else
		not_ok "harness: $built succeeded on the build host (exit $VM_INSTALL_RC)"
		diag "$(tail -n 5 "$here/install.log" 2>/dev/null)"
	fi
	if [ "${VM_GUEST_INSTALL_RC:-0}" = 0 ]; then
		ok "harness: $installed"
	else
		not_ok "harness: $installed (exit $VM_GUEST_INSTALL_RC)"
		diag "$(tail -n 20 "$VM_OUT/install.log" 2>/dev/null)"
	fi
	check "harness: the helper, the module, its Go library and pam-unshare are in place" \
		ls -l "$HELPER" "$MODULE" "$GO_MODULE" "$CLI"
	if [ "$VM_INSTALL" = deb ]; then
		check "harness: dpkg lists $PKG as installed and owning the module" pkg_owns_module
	fi
	if [ "${VM_ENABLE_RC:-0}" = 0 ]; then
		ok "harness: enabling the module ($VM_ENABLE) for $SERVICES succeeded"
	else
		not_ok "harness: enabling the module ($VM_ENABLE) for $SERVICES succeeded (exit $VM_ENABLE_RC)"
		diag "$(cat "$VM_OUT/enable.log")"
	fi
	for f in $SERVICES; do
		check "harness: pam_unshare is the last session line of /etc/pam.d/$f" \
			last_session_line "/etc/pam.d/$f"
	done
}

pkg_installed() {
	local st
	st=$(dpkg-query -W -f '${Status}' "$PKG" 2>&1)
	echo "dpkg status of $PKG: $st"
	case $st in *" ok installed") ;; *) return 1 ;; esac
}
pkg_owns_module() {
	pkg_installed || return 1
	dpkg -S "$MODULE" | grep -q "^$PKG:" || { fail "dpkg -S $MODULE: $(dpkg -S "$MODULE" 2>&1)"; return 1; }
}

# ---- what an administrator does after installing --------------------------

# doctor_clean: `pam-unshare doctor` exits 0 and reports no failed check.
doctor_clean() {
	local rc=0
	timeout "$T" "$CLI" doctor >"$tmp/doctor" 2>&1 || rc=$?
	cp "$tmp/doctor" "$VM_OUT/doctor.txt" 2>/dev/null
	cat "$tmp/doctor"
	[ "$rc" = 0 ] || { fail "pam-unshare doctor exited $rc"; return 1; }
	! grep -qF '✗' "$tmp/doctor" || { fail "pam-unshare doctor reports a failed check"; return 1; }
}

# man_page PAGE: man finds the page in the packaged section 8.
man_page() {
	local path
	command -v man >/dev/null || { fail "man is not installed in the guest"; return 1; }
	path=$(man -w "$1" 2>&1) || { fail "man -w $1: $path"; return 1; }
	echo "$path"
	case $path in */man8/"$1".8*) ;; *) fail "not a section 8 page: $path" ;; esac
}

# remove_refused: `dpkg -r` is refused by the package's prerm while pam.d
# files use the module, and the package stays installed. If it was removed
# anyway, it is installed again so that the other scenarios still run.
remove_refused() {
	local rc=0
	timeout "$T" dpkg -r "$PKG" >"$tmp/dpkg-r" 2>&1 </dev/null || rc=$?
	cp "$tmp/dpkg-r" "$VM_OUT/dpkg-r-refused.txt" 2>/dev/null
	cat "$tmp/dpkg-r"
	echo "dpkg -r exited $rc"
	if [ "$rc" = 0 ]; then
		echo "reinstalling for the remaining scenarios:"
		dpkg -i "$(dirname "$VM_OUT")"/deb/*.deb
		fail "dpkg -r removed the package while the module is enabled"
		return 1
	fi
	pkg_installed || { fail "the package is no longer installed"; return 1; }
	ls -l "$MODULE" "$GO_MODULE" "$HELPER" "$CLI" || { fail "files are gone"; return 1; }
	grep -q 'pam-unshare disable' "$tmp/dpkg-r" ||
		{ fail "the refusal does not tell the administrator to run pam-unshare disable"; return 1; }
}

sc_admin() {
	check "admin: pam-unshare doctor exits 0 and reports no failed check" doctor_clean
	# Warnings do not fail the check; show them.
	diag "$(grep -E '^! ' "$tmp/doctor" 2>/dev/null)"
	check "admin: man -w pam_unshare finds pam_unshare(8)" man_page pam_unshare
	check "admin: man -w pam-unshare finds pam-unshare(8)" man_page pam-unshare
	if [ "$VM_INSTALL" != deb ]; then
		skip "admin: dpkg -r $PKG is refused while the module is enabled" "VM_INSTALL=$VM_INSTALL"
		return
	fi
	mark_leftovers
	check "admin: dpkg -r $PKG is refused while the module is enabled; the package stays" remove_refused
	session_check "su - alice after the refused dpkg -r" su - "$USER_A" -c "$PS_CMD"
}

# ---- removing the package (last) -------------------------------------------

# pamd_users lists the pam.d files that still have a pam_unshare.so session
# line (as the package's prerm looks for them).
pamd_users() {
	grep -lsE '^[[:space:]]*-?session[[:space:]].*pam_unshare\.so' /etc/pam.d/* |
		grep -vE '\.(pam-unshare\.bak|dpkg-[a-z]+)$'
}
disable_all() {
	local rc=0 left
	timeout "$T" "$CLI" disable || rc=$?
	[ "$rc" = 0 ] || { fail "pam-unshare disable exited $rc"; return 1; }
	left=$(pamd_users)
	[ -z "$left" ] || { fail "still using the module: $left"; return 1; }
}
remove_package() {
	local rc=0 st
	timeout "$T" dpkg -r "$PKG" </dev/null || rc=$?
	[ "$rc" = 0 ] || { fail "dpkg -r exited $rc"; return 1; }
	st=$(dpkg-query -W -f '${Status}' "$PKG" 2>&1)
	echo "dpkg status of $PKG: $st"
	case $st in *" ok installed") fail "still installed" ;; esac
}
files_gone() {
	local f left=0
	for f in "$MODULE" "$GO_MODULE" "$HELPER" "$CLI" /usr/share/man/man8/pam_unshare.8.gz; do
		[ ! -e "$f" ] || { echo "still there: $f"; left=1; }
	done
	[ "$left" = 0 ]
}
# su_sees_host: a session after the removal is an ordinary one again.
su_sees_host() {
	local out rc=0
	out=$(timeout "$T" su - "$USER_A" -c 'ps -e' </dev/null 2>&1) || rc=$?
	echo "$out"
	[ "$rc" = 0 ] || { fail "su exited $rc"; return 1; }
	echo "$out" | awk '$1 == 1 { print $4 }' | grep -qx systemd || { fail "PID 1 is not systemd"; return 1; }
	host_clean
}
sc_uninstall() {
	markers_down
	check "uninstall: pam-unshare disable leaves no pam_unshare line in /etc/pam.d" disable_all
	check "uninstall: after disable, the guards are gone and the bus lists processes to alice again" guards_gone
	if [ "$VM_INSTALL" = deb ]; then
		check "uninstall: dpkg -r $PKG succeeds once the module is disabled" remove_package
		check "uninstall: the module, the helper, pam-unshare and the man page are gone" files_gone
	else
		skip "uninstall: dpkg -r $PKG succeeds once the module is disabled" "VM_INSTALL=$VM_INSTALL"
	fi
	check "uninstall: su - alice -c 'ps -e' sees the host again (systemd is PID 1)" su_sees_host
	# enable and disable keep the previous version of each file they change
	# there (never in /etc/pam.d); purging the package removes them.
	diag "$(echo "kept in /var/backups/pam-unshare:" /var/backups/pam-unshare/*)"
}

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

# ssh_session_with_helper: start an ssh session of alice's running sleep 30
# in the background, its client's pid in the caller's ssh_pid, and wait for
# its helper.
ssh_session_with_helper() {
	ssh "$USER_A@127.0.0.1" 'sleep 30' </dev/null >/dev/null 2>&1 &
	ssh_pid=$!
	wait_until 60 has_helper_for sshd "$USER_A" || {
		kill "$ssh_pid"
		{ fail "no helper appeared for the ssh session"; return 1; }
	}
}

# sshd's post-auth child is PID 2 of an ssh session: it runs as the user for
# the whole connection and never execs, so it keeps whatever descriptors the
# host holds when it forks. None of the module's may be among them: the
# saved root and working directory (directories; the root reaches the
# host's /proc), the saved namespaces, pidfds, the Go runtime's cgroup
# files. Listed from the host (the child is not dumpable) into
# $tmp/ssh-fds, which sc_sessions shows.
ssh_pid2_fds() {
	local ssh_pid h p f bad=""
	mark_leftovers
	ssh_session_with_helper || return 1
	h=$(helper_for sshd "$USER_A")
	wait_until 30 pid2_of "$h" >/dev/null
	p=$(pid2_of "$h")
	if [ -n "$p" ]; then
		{
			echo "/proc/2/fd of an ssh session (host pid $p, $(cat "/proc/$p/comm"), uid $(awk '/^Uid:/ { print $2 }' "/proc/$p/status")):"
			for f in "/proc/$p/fd/"*; do
				echo "  ${f##*/} -> $(readlink "$f")"
				if [ -d "$f" ] || readlink "$f" | grep -Eq '^(pid|mnt):\[|pidfd|^/sys/fs/cgroup/'; then
					bad="$bad ${f##*/}"
				fi
			done
		} >"$tmp/ssh-fds"
	fi
	kill "$ssh_pid"
	wait "$ssh_pid" 2>/dev/null
	[ -n "$p" ] || { fail "no PID 2 in the session of helper $h"; return 1; }
	[ -z "$bad" ] || { fail "descriptors of the module in PID 2:$bad"; return 1; }
}

# 1 + 2: each kind of session sees only itself; the host is clean after.
sc_sessions() {
	session_check "su - alice" su - "$USER_A" -c "$PS_CMD"
	session_check "su alice" su "$USER_A" -c "$PS_CMD"
	session_check "sudo -u alice" sudo -u "$USER_A" "${PS_ARGV[@]}"
	session_check "ssh alice@127.0.0.1" ssh "$USER_A@127.0.0.1" "$PS_CMD"
	session_check "ssh -tt alice@127.0.0.1" ssh -tt "$USER_A@127.0.0.1" "$PS_CMD"
	rm -f "$tmp/ssh-fds"
	check "ssh: PID 2 (sshd's post-auth child) holds no descriptor of the module" ssh_pid2_fds
	[ -f "$tmp/ssh-fds" ] && diag "$(cat "$tmp/ssh-fds")"
	check "after the ssh session: nothing left in another PID namespace" host_clean
}

# 3: the first command of a session already sees the new /proc.
sc_first_command() {
	local i out bad=0
	for i in $(seq 1 20); do
		out=$(timeout "$T" su "$USER_A" -c 'readlink /proc/self; cat /proc/1/comm' 2>&1 </dev/null)
		case $out in
		[0-9]$'\n'"$HELPER_COMM" | [0-9][0-9]$'\n'"$HELPER_COMM") ;;
		*)
			bad=$((bad + 1))
			printf 'session %d saw:\n%s\n' "$i" "$out"
			;;
		esac
	done >"$tmp/first"
	if [ "$bad" = 0 ]; then
		ok "20 su sessions in a row: the first command sees the new /proc"
	else
		not_ok "20 su sessions in a row: the first command sees the new /proc ($bad saw the host's)"
		diag "$(cat "$tmp/first")"
	fi
}

# 4: orphans left by the session are reaped by the helper.
orphans_reaped() {
	# shellcheck disable=SC2016 # expanded by the session's shell
	timeout "$T" su "$USER_A" -c '
		for i in 1 2 3 4 5; do (sleep "1.$i" &); done
		echo "--- while running"; ps -eo pid,ppid,stat,comm
		sleep 4
		echo "--- after exit"; ps -eo pid,ppid,stat,comm' </dev/null >"$tmp/orphans" 2>&1 ||
		{ fail "su exited $?"; return 1; }
	cat "$tmp/orphans"
	awk '/while running/ { on = 1 } /after exit/ { on = 0 } on && $4 == "sleep" && $2 == 1' \
		"$tmp/orphans" | grep -q . || { fail "no orphaned sleep was reparented to PID 1"; return 1; }
	awk '/after exit/ { on = 1 } on && ($3 ~ /Z/ || $4 == "sleep")' "$tmp/orphans" |
		grep -q . && { fail "zombies or sleeps left after the orphans exited"; return 1; }
	return 0
}
sc_orphans() {
	mark_leftovers
	check "five orphaned sleeps are reparented to the helper and reaped (no zombies)" orphans_reaped
	check "after the orphan session: nothing left in another PID namespace" host_clean
}

# 5: root is exempt.
root_sees_host() {
	local out
	out=$(timeout "$T" su - root -c 'ps -e; readlink /proc/1/ns/pid' </dev/null 2>&1) || { fail "su exited $?"; return 1; }
	echo "$out"
	echo "$out" | awk '$1 == 1 { print $4 }' | grep -qx systemd || { fail "PID 1 is not systemd"; return 1; }
	echo "$out" | grep -qxF "$host_pidns" || { fail "root's PID namespace is not the host's"; return 1; }
}
sc_root_exempt() {
	check "su - root is exempt: ps -e shows systemd as PID 1" root_sees_host
}

# 6: parallel sessions do not see each other. Each session starts a sleep
# with a unique argument, waits until every session is up (so they overlap),
# and lists the arguments of all processes it can see.
parallel_sessions() {
	local kind=$1 count=$2 i pids=() rc bad=0 tok seen
	local barrier=/tmp/vmtest-barrier
	mark_leftovers
	rm -rf "$barrier" && mkdir -m 1777 "$barrier"
	for i in $(seq 1 "$count"); do
		tok=$((20000 + i))
		# shellcheck disable=SC2016 # expanded by the session's shell
		local script='sleep '"$tok"' & s=$!
			n=0; while [ ! -e '"$barrier"'/go ] && [ $n -lt 600 ]; do sleep 0.2; n=$((n+1)); done
			ps -eo args; kill $s'
		case $kind in
		su) timeout 300 su "$USER_A" -c "$script" ;;
		ssh) timeout 300 ssh "$USER_A@127.0.0.1" "$script" ;;
		esac </dev/null >"$tmp/par.$i" 2>&1 &
		pids+=($!)
	done
	# Release the sessions once all of them are inside their namespaces.
	wait_until 120 helpers_at_least "$count" ||
		echo "only $(helper_pids | wc -l) of $count helpers appeared within 120 s"
	echo "concurrent helpers: $(helper_pids | wc -l)"
	touch "$barrier/go"
	for i in $(seq 1 "$count"); do
		rc=0
		wait "${pids[$((i - 1))]}" || rc=$?
		tok=$((20000 + i))
		seen=$(grep -oE 'sleep 2[0-9]{4}' "$tmp/par.$i" | sort -u | tr '\n' ' ')
		if [ "$rc" != 0 ] || [ "$seen" != "sleep $tok " ]; then
			bad=$((bad + 1))
			echo "session $i: exit $rc, saw sleeps: ${seen:-none}"
			sed 's/^/    /' "$tmp/par.$i"
		fi
	done
	rm -rf "$barrier"
	[ "$bad" = 0 ] || { fail "$bad of $count sessions failed or saw another session"; return 1; }
}
sc_concurrency() {
	check "20 parallel su sessions all succeed and see only their own processes" parallel_sessions su 20
	check "after 20 parallel su sessions: nothing left in another PID namespace" host_clean
	check "10 parallel ssh sessions all succeed and see only their own processes" parallel_sessions ssh 10
	check "after 10 parallel ssh sessions: nothing left in another PID namespace" host_clean
}

# cpu_busy_pct SECONDS: percentage of non-idle CPU time over SECONDS.
cpu_busy_pct() {
	local a b
	a=$(awk '/^cpu / { print $2+$3+$4+$7+$8, $5+$6 }' /proc/stat)
	sleep "$1"
	b=$(awk '/^cpu / { print $2+$3+$4+$7+$8, $5+$6 }' /proc/stat)
	echo "$a $b" | awk '{ busy = $3 - $1; idle = $4 - $2; print int(100 * busy / (busy + idle + 1)) }'
}

# 7: pamtester opens and closes without ever forking a session process.
pamtester_open_close() {
	local busy
	mark_leftovers
	timeout "$T" pamtester -v pamtester-unshare "$USER_A" open_session close_session </dev/null ||
		{ fail "pamtester exited $?"; return 1; }
	host_clean || return 1
	busy=$(cpu_busy_pct 3)
	echo "CPU busy over 3 s after pamtester: ${busy}%"
	[ "$busy" -lt 30 ] || {
		ps -eo pid,pcpu,comm,args --sort=-pcpu | head -n 5
		{ fail "CPU is being burnt"; return 1; }
	}
}
pamtester_open_only() {
	mark_leftovers
	timeout "$T" pamtester -v pamtester-unshare "$USER_A" open_session </dev/null ||
		{ fail "pamtester exited $?"; return 1; }
	host_clean
}
sc_pamtester() {
	check "pamtester open_session close_session: nothing left behind, no CPU burnt" pamtester_open_close
	check "pamtester open_session, then exit without closing: nothing left behind" pamtester_open_only
}

# 8: a bad module argument refuses every session, fatally even for sudo.
set_pam_args() {
	local f
	for f in su sshd sudo; do
		sed -i "s|^session required pam_unshare.so.*\$|$PAM_LINE${1:+ $1}|" "/etc/pam.d/$f"
	done
}
refused() {
	local what=$1 marker=/var/tmp/vmtest-marker rc=0
	shift
	rm -f "$marker"
	timeout "$T" "$@" </dev/null || rc=$?
	echo "$what exited $rc"
	[ ! -e "$marker" ] || { fail "$what ran the command although the session was refused"; return 1; }
	[ "$rc" != 0 ] || { fail "$what succeeded"; return 1; }
}
bad_arg_logged() {
	local since=$1 i
	for i in 1 2 3 4 5; do
		journal_since "$since" | grep pam_unshare | grep -q bogus_option && {
			journal_since "$since" | grep pam_unshare | grep bogus_option | head -n 3
			return 0
		}
		sleep 1
	done
	journal_since "$since" | grep -E "pam_unshare|su\\[|sudo\\[|$SSHD_COMM\\[" | tail -n 20
	{ fail "no pam_unshare journal line names bogus_option"; return 1; }
}
sc_bad_argument() {
	local since
	since=$(date +%s)
	mark_leftovers
	set_pam_args bogus_option
	check "bad argument: su is refused" \
		refused su su "$USER_A" -c 'touch /var/tmp/vmtest-marker'
	check "bad argument: ssh is refused" \
		refused ssh ssh "$USER_A@127.0.0.1" 'touch /var/tmp/vmtest-marker'
	check "bad argument: sudo is refused and does not run the command" \
		refused sudo sudo -u "$USER_A" touch /var/tmp/vmtest-marker
	check "bad argument: the journal names the argument" bad_arg_logged "$since"
	check "bad argument: host untouched, nothing left in another PID namespace" host_clean
	set_pam_args ""
	session_check "su alice after restoring the configuration" su "$USER_A" -c "$PS_CMD"
}

# 9: faults.
kill_helper() {
	local su_pid h t0 rc=0
	mark_leftovers
	t0=$SECONDS
	su "$USER_A" -c 'sleep 60; echo survived' </dev/null >"$tmp/kh" 2>&1 &
	su_pid=$!
	wait_until 30 has_helper_of "$su_pid" || { fail "no helper appeared for su $su_pid"; return 1; }
	h=$(helper_of "$su_pid")
	sleep 1
	echo "killing helper $h of su $su_pid"
	kill -9 "$h"
	wait_until 20 sh -c "! kill -0 $su_pid 2>/dev/null" || {
		kill -9 "$su_pid"
		{ fail "su still running 20 s after its helper was killed"; return 1; }
	}
	wait "$su_pid" || rc=$?
	echo "su exited $rc after $((SECONDS - t0)) s"
	cat "$tmp/kh"
	! grep -q survived "$tmp/kh" || { fail "the session's command survived its helper"; return 1; }
	host_clean
}
kill_su() {
	local su_pid h
	mark_leftovers
	su "$USER_A" -c 'sleep 4; echo shell done' </dev/null >"$tmp/ks" 2>&1 &
	su_pid=$!
	wait_until 30 has_helper_of "$su_pid" || { fail "no helper appeared for su $su_pid"; return 1; }
	h=$(helper_of "$su_pid")
	echo "killing su $su_pid (helper $h)"
	kill -9 "$su_pid"
	wait "$su_pid" 2>/dev/null
	sleep 6 # the orphaned shell's sleep ends
	cat "$tmp/ks"
	host_clean
}
ssh_nohup() {
	mark_leftovers
	timeout "$T" ssh "$USER_A@127.0.0.1" 'nohup sleep 1000 >/dev/null 2>&1 &' </dev/null ||
		{ fail "ssh exited $?"; return 1; }
	sleep 1
	host_clean || return 1
	! pgrep -u "$USER_A" -a -x sleep || { fail "alice's nohup sleep survived the logout"; return 1; }
}
sc_faults() {
	check "kill -9 of the helper ends the su session cleanly" kill_helper
	check "kill -9 of su leaves no helper once the orphaned shell ends" kill_su
	check "nohup sleep 1000 & over ssh is gone after logout" ssh_nohup
}

# 10: an idle helper does not wake up; report its memory and threads.
ctxt_switches() {
	awk '/^(voluntary|nonvoluntary)_ctxt_switches:/ { s += $2 } END { print s }' "/proc/$1/status"
}
idle_helper() {
	local ssh_pid h a b pss threads rc=0
	mark_leftovers
	ssh_session_with_helper || return 1
	h=$(helper_for sshd "$USER_A")
	sleep 2
	a=$(ctxt_switches "$h")
	sleep 4
	b=$(ctxt_switches "$h")
	pss=$(awk '/^Pss:/ { print $2 }' "/proc/$h/smaps_rollup")
	threads=$(awk '/^Threads:/ { print $2 }' "/proc/$h/status")
	echo "helper pid $h: context switches $a -> $b over 4 s"
	echo "helper pss_kb=$pss threads=$threads" >"$tmp/idle.metrics"
	kill "$ssh_pid"
	wait "$ssh_pid" 2>/dev/null
	[ "$a" = "$b" ] || rc=1
	[ "$rc" = 0 ] || { fail "the idle helper woke up $((b - a)) times"; return 1; }
}
sc_idle() {
	rm -f "$tmp/idle.metrics"
	check "an idle helper makes no wakeups over 4 s" idle_helper
	[ -f "$tmp/idle.metrics" ] && diag "$(cat "$tmp/idle.metrics")"
	check "after the idle ssh session: nothing left in another PID namespace" host_clean
}

# 11: proc mounts of the host's PID namespace. Root binds /proc into a
# chroot (schroot and sbuild do) or mounts a second procfs, before alice
# logs in and while her session runs; bob holds a marker in his own
# isolated ssh session and in a host daemon. Through none of these mounts
# may alice's isolated ssh session find a marker, and none may be in its
# mount table; root outside any session, and alice outside any session
# (setpriv, no PAM: the door open), find both through each: the check can
# fail. Paths with a space exercise mountinfo's \040.
PROCFS_DIR=/var/tmp/pu-procfs
PROCFS_EARLY=(/srv/pu-chroot/proc "/mnt/pu second proc")
PROCFS_LATE=(/srv/pu-chroot-late/proc "/mnt/pu late proc")
PROCFS_DAEMON=pu-procfs-marker.service

# procfs_markers_up: bob's marker in his isolated ssh session and in a
# system service running as bob. The marker is in $PROCFS_DIR/mark, so no
# command line of the probe holds it.
procfs_markers_up() {
	local mark
	mark=$(cat "$PROCFS_DIR/mark")
	# shellcheck disable=SC2029 # the marker is expanded here on purpose
	ssh "bob@127.0.0.1" "exec -a $mark-session sleep 1000" </dev/null >/dev/null 2>&1 &
	systemctl reset-failed "$PROCFS_DAEMON" 2>/dev/null
	systemd-run --quiet --unit="$PROCFS_DAEMON" --uid=bob --description="bob's marker daemon" \
		/bin/bash -c "exec -a $mark-daemon sleep 1000" || { fail "systemd-run failed"; return 1; }
	wait_until 60 sh -c "pgrep -f '^$mark-session' && pgrep -f '^$mark-daemon'" >/dev/null ||
		{ fail "bob's markers are not both running"; return 1; }
	wait_until 30 has_helper_for sshd bob || { fail "bob's ssh session has no helper"; return 1; }
}

no_helper_for_bob() { ! has_helper_for sshd bob; }
bob_runtime_dir_gone() { ! findmnt -n "/run/user/$(id -u bob)" >/dev/null; }
procfs_markers_down() {
	systemctl stop "$PROCFS_DAEMON" 2>/dev/null
	pkill -u bob -f "^$(cat "$PROCFS_DIR/mark")-session" 2>/dev/null
	wait_until 30 no_helper_for_bob
	# logind unmounts bob's /run/user/UID 10 s after his last session: a
	# mount event that would wake every helper (they watch the mount
	# table) in the middle of a later scenario, such as idle. Now instead.
	loginctl terminate-user bob 2>/dev/null
	wait_until 30 bob_runtime_dir_gone
}

# The probe: `sh probe.sh DIR...` prints "visible: DIR WHICH" for each
# marker (session, daemon) found through DIR, "mounted: LINE" for each
# line of the caller's mount table naming one of the test's mount points,
# and "probe done". It matches inside the shell, so that no command line
# of its own holds the marker.
procfs_probe_write() {
	cat >"$PROCFS_DIR/probe.sh" <<-'EOF'
		m=$(cat /var/tmp/pu-procfs/mark)
		[ -n "$m" ] || { echo "no marker to look for"; exit 1; }
		for d in "$@"; do
			args=$(cat "$d"/[0-9]*/cmdline 2>/dev/null | tr '\0' '\n')
			for which in session daemon; do
				case $args in *"$m-$which"*) echo "visible: $d $which" ;; esac
			done
		done
		grep -E ' /(srv/pu-chroot|mnt/pu\\040)' /proc/self/mountinfo | sed 's/^/mounted: /'
		echo "probe done"
	EOF
	chmod 644 "$PROCFS_DIR/probe.sh"
}

# probe_hidden FILE: a probe that ran to the end and saw nothing.
probe_hidden() {
	tr -d '\r' <"$1"
	grep -q '^probe done' "$1" || { fail "the probe did not run to the end"; return 1; }
	! grep -Eq '^(visible|mounted):' "$1"
}

# probe_leaks WHO FILE: the door open, the probe sees both markers through
# each of the four mounts.
probe_leaks() {
	cat "$2"
	[ "$(grep -c '^visible:' "$2")" = 8 ] || { fail "$1 does not see both markers through all four mounts"; return 1; }
}

procfs_before_login() {
	timeout "$T" ssh "$USER_A@127.0.0.1" "sh $PROCFS_DIR/probe.sh '${PROCFS_EARLY[0]}' '${PROCFS_EARLY[1]}'" \
		</dev/null >"$tmp/procfs.before" 2>&1
	probe_hidden "$tmp/procfs.before"
}

# alice logs in; once her session runs, root mounts; her session waits (up
# to 10 s) until its mount table no longer names them, then probes.
procfs_after_login() {
	local pid flags=$PROCFS_DIR/flags
	rm -f "$flags"/*
	timeout "$T" ssh "$USER_A@127.0.0.1" "touch $flags/started
		while [ ! -e $flags/mounted ]; do sleep 0.1; done
		n=0
		while grep -qE ' /(srv/pu-chroot-late|mnt/pu\\\\040late)' /proc/self/mountinfo && [ \$n -lt 100 ]; do
			sleep 0.1; n=\$((n + 1))
		done
		sh $PROCFS_DIR/probe.sh '${PROCFS_LATE[0]}' '${PROCFS_LATE[1]}'" </dev/null >"$tmp/procfs.after" 2>&1 &
	pid=$!
	wait_until 60 test -e "$flags/started" || {
		kill "$pid"
		fail "alice's session did not start"
		return 1
	}
	mount --bind /proc "${PROCFS_LATE[0]}"
	mount -t proc proc "${PROCFS_LATE[1]}"
	touch "$flags/mounted"
	wait "$pid"
	probe_hidden "$tmp/procfs.after"
}

procfs_root_sees() {
	sh "$PROCFS_DIR/probe.sh" "${PROCFS_EARLY[@]}" "${PROCFS_LATE[@]}" >"$tmp/procfs.root" 2>&1
	probe_leaks root "$tmp/procfs.root"
}

procfs_alice_unisolated_sees() {
	setpriv --reuid="$USER_A" --regid="$(id -g "$USER_A")" --init-groups \
		sh "$PROCFS_DIR/probe.sh" "${PROCFS_EARLY[@]}" "${PROCFS_LATE[@]}" >"$tmp/procfs.open" 2>&1
	probe_leaks "alice outside a session" "$tmp/procfs.open"
}

sc_procfs() {
	mark_leftovers
	rm -rf "$PROCFS_DIR"
	mkdir -p "$PROCFS_DIR/flags" "${PROCFS_EARLY[@]}" "${PROCFS_LATE[@]}"
	chmod 755 "$PROCFS_DIR"
	chmod 1777 "$PROCFS_DIR/flags"
	echo "pu$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')procfs" >"$PROCFS_DIR/mark"
	chmod 644 "$PROCFS_DIR/mark"
	procfs_probe_write
	check "procfs: bob's markers run, in his isolated ssh session and in a host daemon" procfs_markers_up
	mount --bind /proc "${PROCFS_EARLY[0]}"
	mount -t proc proc "${PROCFS_EARLY[1]}"
	check "procfs: a /proc bound into a chroot and a second procfs before login: alice's ssh session finds no marker through them" \
		procfs_before_login
	check "procfs: a /proc bound into a chroot and a second procfs after login: alice's running session finds no marker through them" \
		procfs_after_login
	check "procfs: root finds both markers through all four mounts" procfs_root_sees
	check "procfs: alice outside any session finds both markers through all four (the checks can fail)" \
		procfs_alice_unisolated_sees
	umount "${PROCFS_EARLY[@]}" "${PROCFS_LATE[@]}"
	procfs_markers_down
	check "after the procfs scenario: host /proc intact, nothing left in another PID namespace" host_clean
}


# 12: scope=user, with and without linger, over ssh and su.
# user_ps USER: what ps -e shows in a new ssh session of USER.
user_ps() { timeout "$T" ssh "$1@127.0.0.1" 'ps -e -o args=' </dev/null 2>&1; }
two_ssh_share() {
	local a b out rc=0
	mark_leftovers
	ssh "$USER_A@127.0.0.1" 'sleep 31' </dev/null >/dev/null 2>&1 &
	a=$!
	su bob -c 'sleep 32' </dev/null >/dev/null 2>&1 &
	b=$!
	wait_until 60 pgrep -u "$USER_A" -x -f 'sleep 31' >/dev/null
	wait_until 60 pgrep -u bob -x -f 'sleep 32' >/dev/null
	out=$(user_ps "$USER_A")
	echo "$out"
	grep -qx 'sleep 31' <<<"$out" || { echo "alice's other ssh session is not visible"; rc=1; }
	! grep -qx 'sleep 32' <<<"$out" || { echo "bob's session is visible to alice"; rc=1; }
	grep -q '^pam_unshare-init .* -U ' <<<"$out" || { echo "PID 1 is not a per-user helper"; rc=1; }
	kill "$a" "$b" 2>/dev/null
	wait "$a" "$b" 2>/dev/null
	return "$rc"
}
linger_survives() {
	local out
	mark_leftovers
	timeout "$T" ssh "$USER_A@127.0.0.1" 'nohup sleep 1001 >/dev/null 2>&1 &' </dev/null ||
		{ fail "ssh exited $?"; return 1; }
	sleep 2
	pgrep -u "$USER_A" -x -f 'sleep 1001' || { fail "the nohup sleep did not survive logout"; return 1; }
	out=$(user_ps "$USER_A")
	echo "$out"
	grep -qx 'sleep 1001' <<<"$out" || { fail "the next login does not see it"; return 1; }
	out=$($CLI status)
	echo "$out"
	grep -Eq "^$USER_A +user +[0-9]+ +yes " <<<"$out" || { fail "status does not show the lingering namespace"; return 1; }
	timeout "$T" ssh "$USER_A@127.0.0.1" 'pkill -x sleep' </dev/null
	wait_until 10 sh -c "! pgrep -u $USER_A -x sleep" || { fail "the next login could not kill it"; return 1; }
	host_clean
}
stop_ends() {
	local out
	mark_leftovers
	timeout "$T" ssh "$USER_A@127.0.0.1" 'nohup sleep 1002 >/dev/null 2>&1 &' </dev/null
	wait_until 10 pgrep -u "$USER_A" -x -f 'sleep 1002' >/dev/null || { fail "no lingering sleep"; return 1; }
	out=$(timeout "$T" su bob -c "$CLI stop $USER_A" </dev/null 2>&1)
	echo "bob: $out"
	pgrep -u "$USER_A" -x -f 'sleep 1002' >/dev/null || { fail "bob stopped alice's namespace"; return 1; }
	$CLI stop "$USER_A" || { fail "pam-unshare stop failed"; return 1; }
	! pgrep -u "$USER_A" -x -f 'sleep 1002' || { fail "the sleep survived stop"; return 1; }
	host_clean
}
sc_peruser() {
	set_pam_args "scope=user linger"
	check "scope=user: two ssh sessions of alice see each other and nothing of bob" two_ssh_share
	check "scope=user linger: a nohup sleep survives logout, the next login sees and kills it" linger_survives
	check "pam-unshare stop: bob cannot stop alice's namespace, root can" stop_ends
	set_pam_args "scope=user"
	check "scope=user without linger: nohup sleep over ssh is gone after logout" ssh_nohup
	set_pam_args ""
	check "after the per-user scenario: nothing left in another PID namespace" host_clean
}

# 12b: a host that runs inside a session must not make the per-user
# namespace of another user there. alice may run one command as bob
# (sudoers); from her ssh session she runs it while bob has no namespace.
# sudo's PAM session then runs in alice's PID namespace: bob's namespace
# must not be created below hers and published for his next login.
NESTED_GO=/run/vmtest-nested-go
nested_sudo() {
	local a b p found rc=0 sock out
	mark_leftovers
	sock=/run/pam_unshare/$(id -u bob).sock
	rm -f "$NESTED_GO"
	echo 'alice ALL=(bob) NOPASSWD: /bin/sleep' >/etc/sudoers.d/vmtest-nested
	chmod 0440 /etc/sudoers.d/vmtest-nested
	# A namespace of bob from an earlier scenario may still be ending;
	# once it has, its socket file is stale (the next creator replaces
	# it), and removing it lets the check below see a new one.
	wait_until 30 sh -c "! $CLI status | grep -Eq '^bob +user '" ||
		{ fail "bob still has a namespace: $($CLI status)"; return 1; }
	rm -f "$sock"
	timeout "$T" ssh "$USER_A@127.0.0.1" "sudo -n -u bob /bin/sleep 1021 >/dev/null 2>&1 &
		while [ ! -e $NESTED_GO ]; do sleep 0.2; done; ps -e -o args=" </dev/null >"$tmp/nested.alice" 2>&1 &
	a=$!
	wait_until 60 pgrep -u bob -x -f '/bin/sleep 1021' >/dev/null || { fail "alice's sudo -u bob did not start"; rc=1; }
	if [ -e "$sock" ]; then
		echo "alice's sudo published bob's rendezvous $sock"
		rc=1
	fi
	# bob logs in, with a marker in his command line.
	timeout "$T" ssh bob@127.0.0.1 'sleep 1022' </dev/null >/dev/null 2>&1 &
	b=$!
	wait_until 60 pgrep -u bob -x -f 'sleep 1022' >/dev/null || { fail "bob's ssh session did not start"; rc=1; }
	# His own helper, made by sshd, hangs right below the host's PID
	# namespace (NSpid: its host PID and 1).
	found=0
	for p in $(pgrep -x "$HELPER_COMM"); do
		tr '\0' ' ' <"/proc/$p/cmdline" | grep -q ' sshd bob $' || continue
		found=1
		awk '/^NSpid:/ { if (NF != 3) exit 1 }' "/proc/$p/status" ||
			{ echo "bob's helper is not in a child of the host's PID namespace: $(proc_line "$p")"; rc=1; }
	done
	[ "$found" = 1 ] || { echo "bob's ssh login made no namespace of its own (it joined one)"; rc=1; }
	touch "$NESTED_GO"
	wait "$a"
	out=$(cat "$tmp/nested.alice")
	echo "alice's ps:"
	echo "$out"
	! grep -qx 'sleep 1022' <<<"$out" || { echo "alice sees bob's login"; rc=1; }
	# alice's logout ends her session with everything in it, her sudo too.
	wait_until 60 sh -c "! pgrep -u bob -x -f '/bin/sleep 1021'" >/dev/null ||
		{ echo "alice's sudo sleep outlived her session"; rc=1; }
	pgrep -u bob -x -f 'sleep 1022' >/dev/null || { echo "alice's logout ended bob's login"; rc=1; }
	kill "$b" 2>/dev/null
	wait "$b" 2>/dev/null
	rm -f /etc/sudoers.d/vmtest-nested "$NESTED_GO"
	[ "$rc" = 0 ] && host_clean
}
sc_nested_peruser() {
	set_pam_args "scope=user"
	check "scope=user: alice's sudo -u bob from her session neither publishes bob's namespace nor lets her see or end his login" \
		nested_sudo
	set_pam_args ""
	check "after the nested per-user scenario: nothing left in another PID namespace" host_clean
}

# shellcheck source=test/vm/doors.sh
. "$here/doors.sh"
# shellcheck source=test/vm/user_manager.sh
. "$here/user_manager.sh"
# shellcheck source=test/vm/admin_trust.sh
. "$here/admin_trust.sh"
# shellcheck source=test/vm/lifecycle.sh
. "$here/lifecycle.sh"
# shellcheck source=test/vm/hostwide.sh
. "$here/hostwide.sh"
# shellcheck source=test/vm/systemd.sh
. "$here/systemd.sh"

all="harness admin sessions first_command orphans root_exempt concurrency pamtester bad_argument faults idle procfs peruser nested_peruser door_ps door_dbus door_user_manager user_manager_survey user_manager relay_flood door_cron door_at door_sudo_i door_visible door_doctor systemd_sessions names_refused run_user_pty doctor_planted hostwide_service hostwide_workers hostwide_transient hostwide_routes hostwide_closed restarts upgrade uninstall"
[ "${VM_SMOKE:-0}" = 1 ] && all=harness
read -ra list <<<"${*:-$all}"
for s in "${list[@]}"; do
	declare -F "sc_$s" >/dev/null || fatal "no such scenario: $s (scenarios: $all)"
done
for s in "${list[@]}"; do
	echo "# scenario: $s"
	t0=$SECONDS
	"sc_$s"
	echo "# scenario $s took $((SECONDS - t0)) s"
done
rm -rf "$tmp"
plan

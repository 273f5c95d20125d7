# shellcheck shell=bash
# sessions.sh - sessions of every kind through the installed module: ssh,
# su, sudo, pamtester, first commands, orphans, concurrency, faults, an
# idle helper, bad arguments and other proc mounts. Sourced by
# scenarios.sh.
# tmp, T, USER_A, CLI and the TAP and wait helpers come from scenarios.sh,
# the guest's observers from guest.sh.
# shellcheck disable=SC2154,SC2153

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

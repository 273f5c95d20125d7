# shellcheck shell=bash
# procfs.sh - other proc mounts (a chroot's bind of the host's /proc, a
# second procfs) before and after login. Sourced by run-tests.sh inside its
# private world (lib.sh, tap.sh).
#
# Root binds the host's /proc into a chroot (as schroot and sbuild do) or
# mounts a second procfs: each is a view of the host's PID namespace, and
# the session's mount namespace receives such mounts, before login as a copy
# and after login through slave propagation. The helper detaches them in
# the session only. Directories with a space exercise mountinfo's \040.
# PROCFS, PROCFS_EARLY and PROCFS_LATE are set by t_procfs_mounts.

# procfs_probe_write: the script a session runs to report what it sees:
#   sh probe.sh PROC_DIR...
# prints "visible: DIR" for each DIR through which the marker sleep shows,
# "mounted: LINE" for each proc mount (and binfmt_misc, or its tmpfs
# stand-in, below one) of its mount table below $PROCFS, and
# "probe done".
procfs_probe_write() {
	cat >"$PROCFS"/probe.sh <<-EOF
		for d in "\$@"; do
			# sleep 100[1]: grep's own command line must not match.
			if cat "\$d"/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -q 'sleep 100[1]'; then
				echo "visible: \$d"
			fi
		done
		awk -v dir='$PROCFS/' '{ for (i = 7; i < NF; i++) if (\$i == "-") { t = \$(i + 1); break } }
			index(\$5, dir) == 1 && t ~ /^(proc|binfmt_misc|autofs|tmpfs)\$/ { print "mounted: " \$0 }' /proc/self/mountinfo
		echo "probe done"
	EOF
	chmod 644 "$PROCFS"/probe.sh
}

# probe_sees_nothing FILE: FILE is a probe's output that ran to the end and
# saw no foreign process and no mount below $PROCFS.
probe_sees_nothing() {
	cat "$1"
	grep -q '^probe done$' "$1" || { fail "the probe did not run to the end"; return 1; }
	! grep -Eq '^(visible|mounted):' "$1"
}

# Outside a session the probe must see the marker through every one of
# them: proof that the session checks below can fail.
procfs_leak_outside() {
	local out
	out=$(sh "$PROCFS"/probe.sh "${PROCFS_EARLY[@]}" "${PROCFS_LATE[@]}")
	echo "$out"
	[ "$(grep -c '^visible:' <<<"$out")" -eq 5 ] &&
		grep -qF "chroot/proc/sys/fs/binfmt_misc" <<<"$out"
}

procfs_before_login() {
	su pu-alice -c "sh $PROCFS/probe.sh '${PROCFS_EARLY[0]}' '${PROCFS_EARLY[1]}' '${PROCFS_EARLY[2]}'" >"$PROCFS"/before.out 2>&1
	probe_sees_nothing "$PROCFS"/before.out
}

# The session starts, then root mounts; the session waits (up to 3 s) for
# the helper to detach what propagated in, then probes.
procfs_after_login() {
	local pid flag=$PROCFS/flag
	rm -f "$flag"/*
	pamhost -s pamhost -u pu-alice -- /bin/sh -c "
		touch $flag/started
		while [ ! -e $flag/mounted ]; do sleep 0.05; done
		n=0
		while grep -qF ' $PROCFS/late' /proc/self/mountinfo && [ \$n -lt 60 ]; do
			sleep 0.05; n=\$((n + 1))
		done
		exec sh $PROCFS/probe.sh '${PROCFS_LATE[0]}' '${PROCFS_LATE[1]}'" >"$PROCFS"/after.out 2>&1 &
	pid=$!
	wait_until 30 test -e "$flag"/started || {
		wait "$pid"
		cat "$PROCFS"/after.out
		fail "the session did not start"
		return 1
	}
	mount --bind /proc "${PROCFS_LATE[0]}"
	mount -t proc proc "${PROCFS_LATE[1]}"
	touch "$flag"/mounted
	wait "$pid"
	probe_sees_nothing "$PROCFS"/after.out
}

# The host keeps every one of its proc mounts (the detach is the session's
# alone), binfmt_misc below the chroot's /proc included.
procfs_host_keeps() {
	local m bad=0
	for m in "${PROCFS_EARLY[@]}" "${PROCFS_LATE[@]}" "$PROCFS/chroot/proc/sys/fs/binfmt_misc"; do
		findmnt -n "$m" >/dev/null || { echo "gone from the host: $m"; bad=1; }
	done
	cat "${PROCFS_EARLY[1]}"/[0-9]*/cmdline 2>/dev/null | tr '\0' ' ' | grep -q 'sleep 100[1]' ||
		{ echo "the host's second procfs no longer shows the marker"; bad=1; }
	[ "$bad" = 0 ]
}

# Root runs a session (pam-unshare run has no root exemption), mounts a
# procfs in it and binds the session's /proc and its /proc/sys: all belong
# to the session's PID namespace and stay; none reaches the host.
procfs_inside_stays() {
	local out
	out=$("$BUILD"/pam-unshare run --options "helper=$HELPER" -- /bin/sh -c "
		mount -t proc proc '$PROCFS/inner' && mount --bind /proc '$PROCFS/inner bind' &&
			mount --bind /proc/sys '$PROCFS/inner sys' || exit 1
		sleep 0.5
		grep -F ' $PROCFS/inner' /proc/self/mountinfo
		echo comm=\$(cat '$PROCFS/inner/1/comm') bind=\$(cat '$PROCFS/inner bind/1/comm') \\
			sys=\$(cat '$PROCFS/inner sys/kernel/ostype')" 2>&1)
	echo "$out"
	[ "$(grep -cF " $PROCFS/inner" <<<"$out")" -eq 3 ] &&
		grep -qx 'comm=pam_unshare bind=pam_unshare sys=Linux' <<<"$out" || return 1
	! findmnt -n "$PROCFS/inner" || { fail "the session's procfs reached the host"; return 1; }
}

# A foreign procfs the helper cannot reach (a tmpfs covers its directory):
# the session is refused, and syslog names the step.
procfs_unreachable_refused() {
	local out mark rc=0
	mkdir -p "$PROCFS/hidden/proc"
	mount -t proc proc "$PROCFS/hidden/proc"
	mount -t tmpfs pu-cover "$PROCFS/hidden"
	mark=$(syslog_mark)
	out=$(pamhost -s pamhost -u pu-alice -- /bin/true 2>&1)
	echo "$out"
	grep -q 'open=PAM_SYSTEM_ERR' <<<"$out" || rc=1
	if ! { wait_until 10 no_helpers && no_other_pidns; }; then
		echo "left over: $(pidns_others)"
		rc=1
	fi
	wait_until 30 syslog_count_at_least "$mark" 1 'cannot isolate the session of user pu-alice: helper: detach another proc mount'
	syslog_since "$mark" | grep 'pam_unshare' || true
	syslog_since "$mark" | grep -q 'cannot isolate the session of user pu-alice: helper: detach another proc mount' || rc=1
	umount "$PROCFS/hidden"
	umount "$PROCFS/hidden/proc"
	return "$rc"
}

# A foreign procfs that arrives covered: root bind-mounts, after login, a
# tree in which a tmpfs covers a procfs's directory. The helper cannot reach
# it, says so in syslog once and keeps retrying; when root removes the
# cover, it detaches the procfs.
procfs_covered_later() {
	local pid rc=0 mark stage=$PROCFS/stage flag=$PROCFS/flag
	rm -f "$flag"/*
	mkdir -p "$stage" "$PROCFS/covered"
	mark=$(syslog_mark)
	pamhost -s pamhost -u pu-alice -- /bin/sh -c "
		touch $flag/started
		while [ ! -e $flag/uncovered ]; do sleep 0.05; done
		n=0
		while grep -F ' $PROCFS/covered' /proc/self/mountinfo | grep -q ' - proc ' && [ \$n -lt 60 ]; do
			sleep 0.05; n=\$((n + 1))
		done
		exec sh $PROCFS/probe.sh '$PROCFS/covered/sub/proc'" >"$PROCFS"/covered.out 2>&1 &
	pid=$!
	wait_until 30 test -e "$flag"/started || rc=1
	# The stage is private, so what is mounted in it stays off the running
	# session until the bind below copies it there in one piece.
	mount --bind "$stage" "$stage"
	mount --make-private "$stage"
	mkdir -p "$stage/sub/proc"
	mount -t proc proc "$stage/sub/proc"
	mount -t tmpfs pu-cover "$stage/sub"
	mount --rbind "$stage" "$PROCFS/covered"
	wait_until 30 syslog_says_retrying "$mark" || { echo "no syslog line about the covered procfs"; rc=1; }
	umount "$PROCFS/covered/sub"
	touch "$flag"/uncovered
	wait "$pid"
	syslog_since "$mark" | grep pam_unshare
	probe_sees_nothing "$PROCFS"/covered.out || rc=1
	# Lazily: umount -R cannot walk to the procfs below the cover.
	mount --make-rprivate "$PROCFS/covered"
	umount -l "$PROCFS/covered" "$stage"
	return "$rc"
}
syslog_says_retrying() {
	syslog_since "$1" | grep -q 'pam_unshare-init.*cannot detach a proc mount of another PID namespace: .*; retrying'
}

# ctxt_switches PID: how often PID has been scheduled out so far.
ctxt_switches() {
	awk '/^(voluntary|nonvoluntary)_ctxt_switches:/ { s += $2 } END { print s }' "/proc/$1/status"
}

# ctxt_switched PID N: PID has been switched more than N times.
ctxt_switched() { [ "$(ctxt_switches "$1")" -gt "$2" ]; }

# The helper of an idle session is never scheduled; an unrelated mount
# wakes it once (it watches the mount table), and then it idles again.
helper_idle() {
	local pid d rc=0
	# The leader waits on a lock until the test is done, however slow the
	# machine.
	d=$(mktemp -d)
	hold_lock "$d"
	pamhost -s pamhost -u pu-alice -- /usr/bin/flock -s -w 1800 "$d/lock" true >/dev/null 2>&1 {HOLD_FD}<&- &
	pid=$!
	if wait_until 30 leader_started "/usr/bin/flock -s -w 1800 $d/lock true"; then
		sleep 1 # the session has started; its helper settles
		idles_and_wakes "$(helpers_alive | head -1)" 2 pu-idle || rc=1
	else
		echo "no session"
		rc=1
	fi
	release_lock
	wait "$pid"
	rm -rf "$d"
	return "$rc"
}

# idles_and_wakes PID SECONDS NAME: the helper PID makes no context switch
# over SECONDS idle; a tmpfs NAME mounted at $PROCFS/idle wakes it (however
# long a busy machine takes to run it), and after 0.5 s to handle that it
# makes none again over SECONDS.
idles_and_wakes() {
	local h=$1 secs=$2 a b c d
	a=$(ctxt_switches "$h")
	sleep "$secs"
	b=$(ctxt_switches "$h")
	mount -t tmpfs "$3" "$PROCFS/idle"
	wait_until 10 ctxt_switched "$h" "$b"
	sleep 0.5
	c=$(ctxt_switches "$h")
	sleep "$secs"
	d=$(ctxt_switches "$h")
	umount "$PROCFS/idle"
	echo "helper $h context switches: $a -> $b over $secs s idle; $c -> $d over $secs s after a tmpfs mount"
	[ "$a" = "$b" ] && [ "$c" -gt "$b" ] && [ "$c" = "$d" ]
}

t_procfs_mounts() {
	PROCFS=$W/procfs
	# The third has a mount table line over 1 KiB, longer than the
	# helper's first buffer.
	local long
	long=$(printf '%0220d' 0)
	PROCFS_EARLY=("$PROCFS/chroot/proc" "$PROCFS/second proc" "$PROCFS/$long/$long/$long/$long/$long/proc")
	PROCFS_LATE=("$PROCFS/late/proc" "$PROCFS/late second")
	mkdir -p "$PROCFS/chroot/proc" "${PROCFS_EARLY[@]:1}" "${PROCFS_LATE[@]}" \
		"$PROCFS/inner" "$PROCFS/inner bind" "$PROCFS/inner sys" "$PROCFS/idle" "$PROCFS/flag"
	chmod 1777 "$PROCFS/flag"
	procfs_probe_write
	mount --rbind /proc "$PROCFS/chroot/proc"
	mount -t proc proc "${PROCFS_EARLY[1]}"
	mount -t proc proc "${PROCFS_EARLY[2]}"
	check "before login: the session sees neither a /proc bound into a chroot (with its binfmt_misc) nor second procfs mounts" \
		procfs_before_login
	check "after login: a /proc bound into a chroot and a second procfs are detached from the running session" \
		procfs_after_login
	check "outside a session, the marker shows through all five (the checks above can fail)" procfs_leak_outside
	check "the host keeps all five proc mounts" procfs_host_keeps
	check "a procfs that root mounts in the session, and binds of the session's /proc and /proc/sys, stay" \
		procfs_inside_stays
	check "an idle helper makes no wakeups; a mount wakes it once, then it idles again" helper_idle
	check "a foreign procfs the helper cannot reach: PAM_SYSTEM_ERR, syslog names the step, nothing left" \
		procfs_unreachable_refused
	check "after login, a covered foreign procfs: syslog says so, and it is detached once uncovered" \
		procfs_covered_later
	# Private first: the chroot's /proc is a peer of /proc, and unmounting
	# its binfmt_misc would propagate to the real one.
	mount --make-rprivate "$PROCFS/chroot/proc"
	umount -l "$PROCFS/chroot/proc" "${PROCFS_EARLY[@]:1}" "${PROCFS_LATE[@]}"
}

#!/bin/bash
# run-tests.sh BUILD_DIR - pam_unshare loaded into real PAM clients: the C
# host test/pamhost.c, su and sudo. Prints TAP.
#
# Needs root (it builds namespaces and mounts proc). It re-executes itself
# inside a private mount namespace and builds its own /etc/pam.d, users,
# sudoers and /dev/log there (lib.sh), so the machine is never changed. It
# also runs in a PID namespace of its own, with its own /proc: "nothing is
# left" then means nothing of this run, whatever else runs on the machine.
set -u

TEST_DIR=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${1:-build}" && pwd)
MODULE=$BUILD/pam_unshare.so
HELPER=$BUILD/pam_unshare-init
PAMHOST=$BUILD/pamhost
export TEST_DIR BUILD MODULE HELPER PAMHOST

if [ "$(id -u)" -ne 0 ]; then
	echo "1..0 # SKIP the real-client tests need root"
	exit 0
fi
if [ -z "${PAM_UNSHARE_TEST_NS:-}" ]; then
	PAM_UNSHARE_TEST_NS=1 exec unshare --mount --propagation private \
		--pid --fork --mount-proc --net "$0" "$@"
fi
# A network namespace of our own: the test sshd's port cannot collide with
# anything on the machine, nor with another run of these tests.
ip link set lo up

# shellcheck source=test/lib.sh
. "$TEST_DIR"/lib.sh

W=$(mktemp -d /tmp/pam_unshare-test.XXXXXX)
world_setup "$W"
trap world_teardown EXIT

# A host process that no session may see.
sleep 1001 &
MARKER=$!

# sees_only_session OUTPUT: in "ps -e -o pid=,comm=" output, PID 1 is the
# helper and nothing of the host shows: no marker sleep, no daemons, no
# sshd but the session's own post-auth child at PID 2.
sees_only_session() {
	local out=$1
	grep -Eq '^ *1 pam_unshare$' <<<"$out" &&
		! grep -q 'sleep 1001' <<<"$out" &&
		! grep -Eq '(^| )(init|systemd|cron|pamhost|run-tests\.sh|python3)$' <<<"$out" &&
		! grep -Ev '^ *2 sshd$' <<<"$out" | grep -Eq ' sshd$'
}

# concurrent_crosstalk N SECONDS CMD...: run N sessions at once, session I
# as CMD "sleep SECONDS.I & sleep 1; ps -e -o args=". Prints how many
# sessions saw another session's sleep, or not their own (a failed session
# sees nothing).
concurrent_crosstalk() {
	local n=$1 secs=$2 d i bad=0 pids=()
	shift 2
	d=$(mktemp -d)
	for i in $(seq "$n"); do
		"$@" "sleep $secs.$i & sleep 1; ps -e -o args=" >"$d/$i" 2>&1 &
		pids+=($!)
	done
	wait "${pids[@]}"
	for i in $(seq "$n"); do
		if [ "$(grep -c "^sleep $secs\\." "$d/$i")" -ne 1 ] || ! grep -q "^sleep $secs\\.$i\$" "$d/$i"; then
			bad=$((bad + 1))
		fi
	done
	rm -rf "$d"
	echo "$bad"
}

# --- pamhost: the module in a small C host --------------------------------

t_pamhost_ps() {
	local out
	out=$("$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -- /bin/ps -e -o pid=,comm= 2>&1)
	if sees_only_session "$out" && [ "$(grep -c . <<<"$out")" -eq 3 ]; then
		tap 0 "pamhost: ps -e in the session shows only the helper and ps"
	else
		tap 1 "pamhost: ps -e in the session shows only the helper and ps"
		diag "$out"
	fi
}

t_pamhost_50_in_one_process() {
	local out isolated
	out=$("$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -n 50 -t -- /bin/true 2>/dev/null)
	isolated=$(awk -F, '$4 == 1' <<<"$out" | wc -l)
	tap "$([ "$isolated" -eq 50 ] && echo 0 || echo 1)" "pamhost: 50 open-fork-close cycles in one process, 50 isolated (got $isolated)"
}

t_first_command_sees_new_proc() {
	local i out bad=0
	for i in $(seq 100); do
		out=$("$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -- /bin/cat /proc/1/comm 2>/dev/null)
		[ "$out" = pam_unshare ] || bad=$((bad + 1))
	done
	tap "$bad" "100 fast sessions: the first command always sees the new /proc ($bad saw another)"
}

t_host_keeps_cwd() {
	local out
	# A relative confdir only works while pamhost's working directory
	# survives each close; the child prints where it starts.
	out=$(cd /etc && "$PAMHOST" -c pam.d -s pamhost -u pu-alice -n 3 -- /bin/pwd 2>&1)
	[ "$(grep -c '^/etc$' <<<"$out")" -eq 3 ]
	tap $? "the host keeps its working directory across sessions"
	[ "$(grep -c '^/etc$' <<<"$out")" -eq 3 ] || diag "$out"
}

t_nofork_host() {
	local out rc
	out=$("$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -m nofork -n 5 2>&1)
	rc=$?
	[ "$rc" -eq 0 ] && wait_until 2 no_helpers && no_other_pidns
	tap $? "a host that never forks (like pamtester): open and close succeed, nothing is left"
	[ "$rc" -eq 0 ] || diag "$out"
}

t_systemd_services() {
	local out mark
	printf 'session optional pam_permit.so\nsession required %s helper=%s\n' "$MODULE" "$HELPER" >"$W"/pam.d/systemd-user
	mark=$(syslog_mark)
	out=$("$PAMHOST" -c /etc/pam.d -s systemd-user -u pu-alice -- /bin/ps -e -o args= 2>&1)
	grep -q 'open=PAM_SUCCESS' <<<"$out" && grep -q 'sleep 1001' <<<"$out"
	tap $? "systemd-user sessions are left alone (PAM_IGNORE): they see the host"
	sleep 0.2
	syslog_since "$mark" | grep -q 'pam_unshare(systemd-user:session): service systemd-user starts sessions through systemd'
	tap $? "systemd-user sessions: syslog says why they are not isolated"
}

t_pam_end_without_close() {
	local out mark
	mark=$(syslog_mark)
	out=$("$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -m noclose -n 3 -- /bin/true 2>&1)
	[ "$(grep -c 'open=PAM_SUCCESS close=SKIPPED child=0' <<<"$out")" -eq 3 ] && wait_until 2 no_helpers && no_other_pidns
	tap $? "pam_end without pam_close_session: the session still ends, three times in one process"
	sleep 0.2
	[ "$(syslog_since "$mark" | grep -c 'pam_end without pam_close_session: ended the session of user pu-alice$')" -eq 3 ]
	tap $? "pam_end without pam_close_session: syslog says so"
}

t_root_exempt() {
	local out
	out=$("$PAMHOST" -c /etc/pam.d -s pamhost -u root -- /bin/ps -e -o pid=,args= 2>&1)
	grep -q 'sleep 1001' <<<"$out"
	tap $? "root is exempt by default and sees the host's processes"
}

t_helper_shape() {
	local helper fds bad="" threads pid
	"$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -- /bin/sleep 2 2>/dev/null &
	pid=$!
	wait_until 2 helper_exists
	helper=$(helpers_alive | head -1)
	if [ -z "$helper" ]; then
		tap 1 "helper found for a live session"
		wait "$pid"
		return
	fi
	local f
	fds=$(for f in /proc/"$helper"/fd/*; do echo "${f##*/} $(readlink "$f")"; done)
	# Allowed: stdio on /dev/null, the control socket, pidfds, signalfd.
	bad=$(grep -Ev '^[012] /dev/null$|^3 socket:|anon_inode:\[?(pidfd|signalfd)' <<<"$fds")
	threads=$(awk '/^Threads:/ {print $2}' /proc/"$helper"/status)
	[ -z "$bad" ]
	tap $? "the helper holds no inherited descriptors"
	[ -n "$bad" ] && diag "$fds"
	[ "$threads" = 1 ]
	tap $? "the helper is single-threaded (threads=$threads)"
	grep -q '^pam_unshare-init .*pamhost pu-alice$' <<<"$(tr '\0' ' ' </proc/"$helper"/cmdline | sed 's/ $//')"
	tap $? "the helper is named pam_unshare and labelled with service and user"
	wait "$pid"
}

t_orphans_reaped() {
	local out
	# Five sleeps orphaned at once are reparented to the helper (PPID 1);
	# once they end, none may linger as a zombie.
	# shellcheck disable=SC2016 # expanded by the session's shell
	out=$("$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -- /bin/sh -c \
		'for i in 1 2 3 4 5; do (sleep 0.3 &); done; sleep 0.1;
		 echo orphans=$(ps -e -o ppid=,comm= | grep -c "^ *1 sleep");
		 sleep 1; ps -e -o stat=,comm=' 2>&1)
	if grep -q '^orphans=5$' <<<"$out" && ! grep -q '^Z' <<<"$out"; then
		tap 0 "five orphaned sleeps are reparented to the helper and reaped: no zombies"
	else
		tap 1 "five orphaned sleeps are reparented to the helper and reaped: no zombies"
		diag "$out"
	fi
}

t_concurrent_sessions() {
	local bad
	bad=$(concurrent_crosstalk 20 3 "$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -- /bin/sh -c)
	tap "$bad" "20 concurrent sessions cannot see each other ($bad saw another or failed)"
}

t_kill_helper() {
	local pid helper start
	"$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -- /bin/sleep 30 >/dev/null 2>&1 &
	pid=$!
	wait_until 2 helper_exists
	helper=$(helpers_alive | head -1)
	start=$SECONDS
	kill -9 "$helper"
	wait "$pid"
	[ $((SECONDS - start)) -lt 5 ] && wait_until 2 no_other_pidns
	tap $? "kill -9 of the helper ends the session at once and leaves nothing"
}

t_kill_host() {
	local pid
	"$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -- /bin/sleep 2 >/dev/null 2>&1 &
	pid=$!
	# Kill the host only once it has started the leader: a host killed
	# before that rightly takes the namespace with it.
	wait_until 2 leader_started "/bin/sleep 2"
	kill -9 "$pid"
	wait "$pid" 2>/dev/null
	sleep 0.5
	local alive=no
	helper_exists && alive=yes
	wait_until 4 no_helpers && wait_until 1 no_other_pidns && [ "$alive" = yes ]
	tap $? "kill -9 of the host: the session lives until its leader ends, then nothing is left"
	[ "$alive" = yes ] || diag "the helper did not outlive the host"
	no_other_pidns || diag "$(pidns_others)"
}

t_failed_helper() {
	local out mark
	pamd_write ""
	sed -i "s|helper=$HELPER|helper=/bin/false|" "$W"/pam.d/pamhost
	mark=$(syslog_mark)
	out=$("$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -- /bin/true 2>&1)
	grep -q 'open=PAM_SYSTEM_ERR' <<<"$out" && no_helpers && no_other_pidns && host_proc_intact
	tap $? "a helper that fails: PAM_SYSTEM_ERR, no stray process, host untouched"
	sleep 0.2
	syslog_since "$mark" | grep -q 'cannot isolate the session of user pu-alice: .*exited before it was ready'
	tap $? "a helper that fails: syslog names the failed step"
	pamd_write ""
}

t_untrusted_helper() {
	local out copy=$W/home/pu-alice/pam_unshare-init
	cp "$HELPER" "$copy"
	chown pu-alice "$copy"
	pamd_write "helper=$copy"
	sed -i "s| helper=$HELPER||" "$W"/pam.d/pamhost
	out=$("$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -- /bin/true 2>&1)
	grep -q 'open=PAM_SYSTEM_ERR' <<<"$out"
	tap $? "a helper owned by a user is refused"
	pamd_write ""
}

# --- the helper's polling mode, for kernels without pidfd_open -------------

t_poll_mode() {
	local out start pid
	out=$("$BUILD"/pam-unshare run --poll --options "helper=$HELPER" -- /bin/ps -e -o pid=,comm= 2>&1)
	sees_only_session "$out" && wait_until 3 no_helpers && no_other_pidns
	tap $? "polling mode: the session is isolated and ends with its leader"
	# The host dies while its leader runs: the helper outlives the host and
	# ends within its 1 s poll of the leader's end.
	"$BUILD"/pam-unshare run --poll --options "helper=$HELPER" -- /bin/sleep 1.5 >/dev/null 2>&1 &
	pid=$!
	wait_until 2 leader_started "/bin/sleep 1.5"
	kill -9 "$pid"
	wait "$pid" 2>/dev/null
	start=$SECONDS
	helper_exists && wait_until 4 no_helpers && no_other_pidns && [ $((SECONDS - start)) -ge 1 ]
	tap $? "polling mode: after kill -9 of the host the session lives until its leader ends"
}

# --- su and sudo ------------------------------------------------------------

t_su() {
	local out
	out=$(su pu-alice -c 'ps -e -o pid=,comm=' 2>&1)
	sees_only_session "$out"
	tap $? "su -c: ps -e sees only the helper and the session"
	sees_only_session "$out" || diag "$out"
	out=$(su - pu-alice -c 'ps -e -o pid=,comm=' 2>&1)
	sees_only_session "$out"
	tap $? "su - (login shell): ps -e sees only the helper and the session"
	wait_until 2 no_other_pidns && host_proc_intact
	tap $? "after su: nothing left in another PID namespace, host /proc and binfmt_misc intact"
}

t_su_root_exempt() {
	su - root -c 'ps -e -o args=' 2>&1 | grep -q 'sleep 1001'
	tap $? "su to root is exempt and sees the host"
}

t_su_nohup_gone() {
	su pu-alice -c 'nohup sleep 1002 >/dev/null 2>&1 &' 2>/dev/null
	wait_until 3 sh -c '! pgrep -f "^sleep 1002" >/dev/null'
	tap $? "a background nohup sleep is gone after logout"
}

t_sudo() {
	local out
	out=$(sudo -u pu-alice ps -e -o pid=,comm= 2>&1)
	sees_only_session "$out"
	tap $? "sudo -u: ps -e sees only the helper and the session"
	sees_only_session "$out" || diag "$out"
}

t_groups() {
	pamd_write "only_groups=pu-staff"
	su pu-alice -c 'ps -e -o args=' 2>&1 | grep -q 'sleep 1001'
	tap $? "only_groups: a user outside the groups is not isolated"
	su pu-carol -c 'ps -e -o pid=,comm=' 2>&1 | grep -Eq '^ *1 pam_unshare$'
	tap $? "only_groups: a member is isolated"
	pamd_write "exempt_groups=pu-students"
	su pu-bob -c 'ps -e -o args=' 2>&1 | grep -q 'sleep 1001'
	tap $? "exempt_groups: a member is not isolated"
	pamd_write ""
}

t_bad_option() {
	local mark m out
	pamd_write "grace=1 bogus_option"
	mark=$(syslog_mark)
	m=$W/marker
	rm -f "$m"
	su pu-alice -c "touch $m" >/dev/null 2>&1
	[ ! -e "$m" ]
	tap $? "bad module argument: su refuses the session and the command does not run"
	sudo -u pu-alice touch "$m" >/dev/null 2>&1
	[ ! -e "$m" ]
	tap $? "bad module argument: sudo refuses too (the command does not run)"
	out=$("$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -- /bin/true 2>&1)
	grep -q 'open=PAM_SYSTEM_ERR' <<<"$out"
	tap $? "bad module argument: pam_open_session returns PAM_SYSTEM_ERR"
	sleep 0.2
	syslog_since "$mark" | grep -q 'pam_unshare(su:session): bad module argument "bogus_option": unknown option'
	tap $? "bad module argument: syslog names it"
	no_helpers && no_other_pidns && host_proc_intact
	tap $? "bad module argument: no process left, host /proc intact"
	pamd_write ""
}

t_syslog_lines() {
	local mark log
	mark=$(syslog_mark)
	su pu-alice -c true >/dev/null 2>&1
	sleep 0.2
	log=$(syslog_since "$mark")
	grep -q 'pam_unshare(su:session): session opened for user pu-alice: helper pid [0-9]*' <<<"$log" &&
		grep -q 'pam_unshare(su:session): session closed for user pu-alice' <<<"$log" &&
		! grep -q 'pam_unshare.*debug\|entering' <<<"$log"
	tap $? "syslog: one line at open, one at close, no debug lines without debug"
	[ "$(grep -c 'pam_unshare' <<<"$log")" -eq 2 ] || diag "$log"
}

# --- hardening: helper trust, inherited descriptors, helper ids, signals ---

# fd_listing PID: "N -> TARGET" for each open descriptor of PID.
fd_listing() {
	local f
	for f in /proc/"$1"/fd/*; do
		echo "${f##*/} -> $(readlink "$f")"
	done
}

# close_fds_above_2: close every descriptor above stderr in this shell, so
# what a child lists beyond stdio came from the PAM stack. Run it in a
# subshell.
close_fds_above_2() {
	local f n
	for f in /proc/"$BASHPID"/fd/*; do
		n=${f##*/}
		[ "$n" -gt 2 ] && eval "exec $n>&-" 2>/dev/null
	done
	return 0
}

# syslog_socket INODE: socket INODE is a connection to /dev/log, which the
# host's libc opens at the first syslog line (pam_syslog) and keeps.
syslog_socket() {
	local peer
	peer=$(ss -x -a | awk -v i="$1" '$6 == i { print $8 }')
	[ -n "$peer" ] && ss -x -a | awk -v i="$peer" '$6 == i && $5 == "/dev/log" { f = 1 } END { exit !f }'
}

# only_stdio LISTING: fd_listing output holds nothing but descriptors 0-2
# and the host's own syslog connection.
only_stdio() {
	local line
	while read -r line; do
		case $line in
		[012]" -> "*) ;;
		*" -> socket:["*"]") syslog_socket "$(tr -dc 0-9 <<<"${line#* -> }")" || return 1 ;;
		*) return 1 ;;
		esac
	done <<<"$1"
}

# stopped_child PARENT: the PID of PARENT's child once it has stopped.
stopped_child() {
	local c
	for c in $(pgrep -P "$1"); do
		[ "$(ps -o stat= -p "$c" | cut -c1)" = T ] && echo "$c" && return 0
	done
	return 1
}

# pamhost -S stops its forked child before exec, as sshd's post-auth child
# never execs: list what it inherited from the module.
pamhost_leader_fds() {
	local pid child listing="" rc=1
	(close_fds_above_2 && exec "$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -S -- /bin/true) >/dev/null 2>&1 &
	pid=$!
	wait_until 3 stopped_child "$pid" >/dev/null
	child=$(stopped_child "$pid")
	if [ -n "$child" ]; then
		listing=$(fd_listing "$child")
		only_stdio "$listing" && rc=0
	fi
	pkill -CONT -P "$pid"
	wait "$pid"
	echo "session leader's descriptors before exec:"
	echo "$listing"
	return "$rc"
}

# The shell su starts is PID 2; its descriptors, listed by find (PID 3).
su_leader_fds() {
	local listing
	# shellcheck disable=SC2016 # expanded by the session's shell
	listing=$(close_fds_above_2 && su pu-alice -c 'find /proc/2/fd -mindepth 1 -printf "%f -> %l\n"' </dev/null 2>&1)
	echo "$listing"
	grep -q '^0 -> ' <<<"$listing" && ! grep -Ev '^[012] -> ' <<<"$listing" >/dev/null
}

t_leader_fds() {
	check "pamhost: the forked session leader inherits only stdio from the module" pamhost_leader_fds
	check "su: the session leader (PID 2) holds only stdio" su_leader_fds
}

# untrusted_symlink_refused LINK REAL: pamhost's session with helper=LINK is
# refused and syslog names REAL, the directory that makes it untrusted.
symlinked_helper_refused() {
	local link=$1 dir=$2 out mark
	mark=$(syslog_mark)
	out=$("$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -- /bin/true 2>&1)
	echo "$out"
	grep -q 'open=PAM_SYSTEM_ERR' <<<"$out" || return 1
	no_helpers && no_other_pidns || return 1
	sleep 0.2
	syslog_since "$mark"
	syslog_since "$mark" | grep -q "cannot isolate the session of user pu-alice: untrusted helper: $link: real path .*: directory $dir must be owned by root and not writable by group or others; refusing the session"
}

symlinked_helper_works() {
	local out
	out=$("$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -- /bin/ps -e -o pid=,comm= 2>&1)
	echo "$out"
	sees_only_session "$out"
}

t_symlinked_helper() {
	local links=$W/libexec userdir=$W/home/pu-alice/bin
	mkdir -p "$links" "$userdir"
	chmod 755 "$links"
	chown pu-alice "$userdir"
	# A root-owned, root-only helper file and a root-made link in a
	# root-only directory; only the target's directory is the user's,
	# who could replace the file at any time.
	cp "$HELPER" "$userdir"/pam_unshare-init
	ln -sf "$userdir"/pam_unshare-init "$links"/to-user
	pamd_write ""
	sed -i "s|helper=$HELPER|helper=$links/to-user|" "$W"/pam.d/pamhost
	check "a root-made symlink to a helper in a user's directory is refused, syslog names the directory" \
		symlinked_helper_refused "$links/to-user" "$W/home/pu-alice"
	# A chain of links through root-only directories is fine.
	ln -sf "$HELPER" "$links"/b
	ln -sf b "$links"/a
	pamd_write ""
	sed -i "s|helper=$HELPER|helper=$links/a|" "$W"/pam.d/pamhost
	check "a chain of symlinks to the helper through root-only directories works" symlinked_helper_works
	pamd_write ""
}

# su_as BY ARGS...: run su ARGS as user BY (su checks no password: the su
# service is made to permit anyone while a test needs it).
su_as() {
	local by=$1
	shift
	setpriv --reuid="$by" --regid="$(id -g "$by")" --clear-groups su "$@"
}

# helper_immune_to USER: the helper of a su that USER runs cannot be
# stopped or killed by USER, and the session goes on.
helper_immune_to() {
	local by=$1 out=$W/su-signal.out pid helper stop kill status
	su_as "$by" pu-alice -c 'sleep 1.5; echo session-alive' >"$out" 2>&1 </dev/null &
	pid=$!
	wait_until 3 leader_started "sleep 1.5"
	helper=$(helpers_alive | head -1)
	echo "helper $helper: $(grep -E '^(Uid|Gid):' /proc/"$helper"/status | tr '\t\n' '  ')"
	stop=$(setpriv --reuid="$by" --regid="$(id -g "$by")" --clear-groups kill -STOP "$helper" 2>&1)
	echo "kill -STOP as $by: ${stop:-delivered}"
	kill=$(setpriv --reuid="$by" --regid="$(id -g "$by")" --clear-groups kill -KILL "$helper" 2>&1)
	echo "kill -KILL as $by: ${kill:-delivered}"
	status=$(ps -o stat= -p "$helper")
	wait "$pid"
	cat "$out"
	kill -CONT "$helper" 2>/dev/null
	grep -q 'Operation not permitted' <<<"$stop" && grep -q 'Operation not permitted' <<<"$kill" &&
		[ "${status:0:1}" != T ] && grep -q '^session-alive$' "$out"
}

t_helper_ids() {
	pamd_write ""
	sed -i 's/pam_rootok.so/pam_permit.so/' "$W"/pam.d/su
	check "su run by pu-bob: pu-bob can neither stop nor kill the session's helper" helper_immune_to pu-bob
	check "su run by pu-alice to herself: she can neither stop nor kill the helper" helper_immune_to pu-alice
	pamd_write ""
}

# A process that ignores SIGTERM but exits on SIGHUP (as interactive shells
# do, saving their history) has exited through its handler when the
# session ends, long before the 5 s grace period would have SIGKILLed it.
hup_ends_term_ignorer() {
	local mark=$W/hup-saved t0 ms out
	rm -f "$mark"
	t0=$(date +%s%N)
	out=$("$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -- /bin/sh -c \
		"(trap '' TERM; trap 'echo saved >$mark; exit 0' HUP; while :; do sleep 0.1; done) >/dev/null 2>&1 & sleep 0.3" 2>&1)
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "$out"
	echo "session with its teardown took $ms ms; grace is 5000 ms"
	[ -e "$mark" ] && [ "$ms" -lt 3000 ] && no_other_pidns
}

t_teardown_sighup() {
	pamd_write "grace=5"
	check "teardown sends SIGHUP: a process that ignores SIGTERM exits through its SIGHUP handler, well before the grace period" hup_ends_term_ignorer
	pamd_write ""
}

# helper_g_verdict ARG: what the helper says about "-g ARG" on its control
# socket: "usage" for a rejected command line, "not-pid1" when it got as far
# as checking that it is PID 1 (which it is not here).
helper_g_verdict() {
	python3 - "$HELPER" "$1" <<-'EOF'
		import os, socket, struct, subprocess, sys
		host, helper = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
		def as_fd3():
		    os.dup2(helper.fileno(), 3)
		subprocess.run([sys.argv[1], "-g", sys.argv[2], "--", "test", "test"],
		               preexec_fn=as_fd3, pass_fds=(3,))
		helper.close()
		kind, step = struct.unpack("BB", host.recv(8)[:2])
		print({6: "usage", 5: "not-pid1"}.get(step, "step %d" % step) if kind == ord("F") else chr(kind))
	EOF
}

# Constants: NSINIT_STEP_USAGE 6 and NSINIT_STEP_NOT_PID1 5 (handshake.h).
helper_g_strict() {
	local arg verdict bad=0
	for arg in 0 1500 86400000; do
		verdict=$(helper_g_verdict "$arg")
		echo "-g '$arg': $verdict"
		[ "$verdict" = not-pid1 ] || bad=1
	done
	for arg in '' 12x ' 5' +5 -5 0x10 86400001 99999999999999999999; do
		verdict=$(helper_g_verdict "$arg")
		echo "-g '$arg': $verdict"
		[ "$verdict" = usage ] || bad=1
	done
	return "$bad"
}

t_helper_grace_arg() {
	check "the helper takes -g as whole milliseconds only, and refuses anything else" helper_g_strict
}

# --- sshd -------------------------------------------------------------------

# sshd_leader: the host PID of a live sshd post-auth child of a session:
# an sshd that is PID 2 of a nested PID namespace (NSpid: HOST_PID ... 2).
sshd_leader() {
	local p
	for p in $(pgrep -x sshd); do
		if awk '/^NSpid:/ && NF >= 3 && $NF == 2 { n = 1 } /^State:/ && $2 != "Z" { a = 1 } END { exit !(n && a) }' \
			/proc/"$p"/status 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# control_socket_peer HELPER: the inode of the host's end of HELPER's
# control socket (the helper holds the other end as fd 3).
control_socket_peer() {
	local own
	own=$(readlink /proc/"$1"/fd/3 | tr -dc 0-9)
	ss -x -a | awk -v i="$own" '$6 == i { print $8 }'
}

# sshd's post-auth child runs as the user for the whole connection and
# never execs: nothing the module holds may reach it. Listed from the host,
# since the child is not dumpable.
ssh_leader_fds() {
	local pid child helper peer listing f bad=""
	rm -f "$W"/home/pu-alice/ssh-started
	timeout 20 "${SSH[@]}" 'touch ~/ssh-started; sleep 3' >/dev/null 2>&1 &
	pid=$!
	wait_until 10 test -e "$W"/home/pu-alice/ssh-started
	child=$(sshd_leader)
	helper=$(helpers_alive | head -1)
	if [ -z "$child" ] || [ -z "$helper" ]; then
		wait "$pid"
		echo "no session found (post-auth child '$child', helper '$helper')"
		return 1
	fi
	peer=$(control_socket_peer "$helper")
	listing=$(fd_listing "$child")
	for f in /proc/"$child"/fd/*; do
		# Directories (the saved root and working directory), the
		# saved namespaces, pidfds, the runtime's cgroup files and the
		# host's end of the helper's control socket.
		if [ -d "$f" ] || readlink "$f" | grep -Eq '^(pid|mnt):\[|pidfd|^/sys/fs/cgroup/|^socket:\['"${peer:-none}"'\]$'; then
			bad+="${f##*/} "
		fi
	done
	wait "$pid"
	echo "post-auth child $child (PID 2 of the session), helper $helper, control socket host end ${peer:-?}:"
	echo "$listing"
	if [ -z "$peer" ] || [ -n "$bad" ]; then
		echo "from the module: ${bad:-?}"
		return 1
	fi
}

t_sshd() {
	if ! world_sshd; then
		skip "sshd: ps -e sees only the helper and the session" "openssh-server is not installed"
		return
	fi
	local out
	out=$(timeout 20 "${SSH[@]}" 'ps -e -o pid=,comm=' 2>&1)
	# PID 2 is sshd's post-auth child, which runs the user's commands.
	sees_only_session "$out" && grep -Eq '^ *2 sshd$' <<<"$out"
	tap $? "sshd: ps -e sees only the helper and the session"
	sees_only_session "$out" || diag "$out"
	wait_until 3 no_other_pidns && host_proc_intact
	tap $? "sshd: after logout nothing is left in another PID namespace"
	no_other_pidns || diag "$(ps -eo pid,ppid,stat,wchan:20,args)"
	timeout 20 "${SSH[@]}" 'nohup sleep 1003 >/dev/null 2>&1 &' 2>/dev/null
	wait_until 3 sh -c '! pgrep -f "^sleep 1003" >/dev/null'
	tap $? "sshd: a background nohup sleep is gone after logout"
	check "sshd: the post-auth child (PID 2) holds no descriptor of the module" ssh_leader_fds
	out=$(timeout 20 "${SSH[@]}" -tt 'ps -e -o pid=,comm=' 2>&1 | tr -d '\r')
	sees_only_session "$out"
	tap $? "sshd with a pty (ssh -tt): ps -e sees only the helper and the session"
	local bad
	bad=$(concurrent_crosstalk 10 2 timeout 30 "${SSH[@]}")
	tap "$bad" "sshd: 10 concurrent sessions cannot see each other ($bad saw another or failed)"
	wait_until 3 no_other_pidns
	tap $? "sshd: nothing left after 10 concurrent sessions"
}

t_pamhost_ps
t_pamhost_50_in_one_process
t_first_command_sees_new_proc
t_host_keeps_cwd
t_nofork_host
t_systemd_services
t_pam_end_without_close
t_root_exempt
t_helper_shape
t_orphans_reaped
t_concurrent_sessions
t_kill_helper
t_kill_host
t_failed_helper
t_untrusted_helper
t_poll_mode
t_su
t_su_root_exempt
t_su_nohup_gone
t_sudo
t_groups
t_bad_option
t_syslog_lines
t_leader_fds
t_symlinked_helper
t_helper_ids
t_teardown_sighup
t_helper_grace_arg
t_sshd

kill "$MARKER"
wait_until 3 no_helpers
tap $? "no helper is left after the whole run"
host_proc_intact
tap $? "the host's /proc and binfmt_misc are intact after the whole run"
tap_finish

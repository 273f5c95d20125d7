# shellcheck shell=bash
# helper.sh - the helper process: its polling mode (kernels without
# pidfd_open) and hardening: helper trust, inherited descriptors, helper
# ids, signals. Sourced by run-tests.sh inside its private world (lib.sh,
# tap.sh).
# shellcheck disable=SC2153 # HELPER comes from run-tests.sh

# --- the helper's polling mode, for kernels without pidfd_open -------------

poll_mode_isolated() {
	local out
	out=$("$BUILD"/pam-unshare run --poll --options "helper=$HELPER" -- /bin/ps -e -o pid=,comm= 2>&1)
	echo "$out"
	sees_only_session "$out" || return 1
	wait_until 10 no_helpers || { fail "helpers left: $(helpers_alive)"; return 1; }
	no_other_pidns || { fail "left in another PID namespace: $(pidns_others)"; return 1; }
}
# The host dies while its leader runs: the helper outlives the host and ends
# after its poll sees the leader's end. The leader runs 3 s, so that it
# outlasts the test's own steps on a busy machine.
poll_mode_outlives_host() {
	local pid start
	"$BUILD"/pam-unshare run --poll --options "helper=$HELPER" -- /bin/sleep 3 >/dev/null 2>&1 &
	pid=$!
	wait_until 30 leader_started "/bin/sleep 3" || { fail "the leader did not start"; return 1; }
	kill -9 "$pid"
	wait "$pid" 2>/dev/null
	start=$SECONDS
	helper_exists || { fail "no helper after kill -9 of the host"; return 1; }
	wait_until 10 no_helpers || { fail "helpers left: $(helpers_alive)"; return 1; }
	no_other_pidns || { fail "left in another PID namespace: $(pidns_others)"; return 1; }
	[ $((SECONDS - start)) -ge 1 ] || fail "the session ended before its leader"
}
t_poll_mode() {
	check "polling mode: the session is isolated and ends with its leader" poll_mode_isolated
	check "polling mode: after kill -9 of the host the session lives until its leader ends" poll_mode_outlives_host
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

# pamhost_done PID: continue PID's stopped children; true once PID exited.
pamhost_done() {
	pkill -CONT -P "$1"
	case $(ps -o stat= -p "$1") in '' | Z*) return 0 ;; esac
	return 1
}

# pamhost -S stops its forked child before exec, as sshd's post-auth child
# never execs: list what it inherited from the module.
pamhost_leader_fds() {
	local pid child listing="" rc=1
	(close_fds_above_2 && exec "$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -S -- /bin/true) >/dev/null 2>&1 &
	pid=$!
	wait_until 30 stopped_child "$pid" >/dev/null
	child=$(stopped_child "$pid")
	if [ -n "$child" ]; then
		listing=$(fd_listing "$child")
		only_stdio "$listing" && rc=0
	fi
	# Let the child go on, however late it stopped, until pamhost is done.
	wait_until 10 pamhost_done "$pid" || kill -9 "$pid"
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

# symlinked_helper_refused LINK DIR: pamhost's session with helper=LINK is
# refused, nothing is left, and syslog names DIR, the directory on the real
# path that makes it untrusted.
symlinked_helper_refused() {
	local link=$1 dir=$2 out mark
	mark=$(syslog_mark)
	out=$(pamhost -s pamhost -u pu-alice -- /bin/true 2>&1)
	echo "$out"
	grep -q 'open=PAM_SYSTEM_ERR' <<<"$out" || return 1
	nothing_left || return 1
	syslog_has "$mark" "cannot isolate the session of user pu-alice: untrusted helper: $link: real path .*: directory $dir must be owned by root and not writable by group or others; refusing the session"
}

symlinked_helper_works() {
	local out
	out=$(pamhost -s pamhost -u pu-alice -- /bin/ps -e -o pid=,comm= 2>&1)
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
	local by=$1 out=$W/su-signal.out pid helper stop kill status d
	# The session's command waits on a lock until the signals are sent.
	d=$(mktemp -d)
	hold_lock "$d"
	su_as "$by" pu-alice -c "flock -s -w 1800 $d/lock true; echo session-alive" >"$out" 2>&1 </dev/null {HOLD_FD}<&- &
	pid=$!
	wait_until 30 leader_started "flock -s -w 1800 $d/lock true"
	helper=$(helpers_alive | head -1)
	echo "helper $helper: $(grep -E '^(Uid|Gid):' /proc/"$helper"/status | tr '\t\n' '  ')"
	stop=$(setpriv --reuid="$by" --regid="$(id -g "$by")" --clear-groups kill -STOP "$helper" 2>&1)
	echo "kill -STOP as $by: ${stop:-delivered}"
	kill=$(setpriv --reuid="$by" --regid="$(id -g "$by")" --clear-groups kill -KILL "$helper" 2>&1)
	echo "kill -KILL as $by: ${kill:-delivered}"
	status=$(ps -o stat= -p "$helper")
	release_lock
	wait "$pid"
	rm -rf "$d"
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
# HUP_SAVER MARK READY: ignores SIGTERM, writes MARK and exits on SIGHUP,
# as an interactive shell saves its history; READY once both are set.
HUP_SAVER='
import signal, sys
def saved(*_):
    open(sys.argv[1], "w").write("saved")
    sys.exit(0)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGHUP, saved)
open(sys.argv[2], "w").close()
while True:
    signal.pause()
'
hup_ends_term_ignorer() {
	local mark=$W/hup-saved ready=$W/hup-ready t0 ms out
	rm -f "$mark" "$ready"
	t0=$(date +%s%N)
	# The leader returns only once the background process has set its
	# handlers, so teardown never meets a process without them. One
	# process that forks nothing: what is checked is the helper's
	# signals, not how a shell runs its traps around its children.
	out=$(pamhost -s pamhost -u pu-alice -- /bin/sh -c \
		"$PY -c '$HUP_SAVER' $mark $ready >/dev/null 2>&1 &
		while [ ! -e $ready ]; do sleep 0.05; done" 2>&1)
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "$out"
	echo "session with its teardown took $ms ms; grace is 30000 ms"
	[ -e "$mark" ] || { fail "the process did not run its SIGHUP handler"; return 1; }
	[ "$ms" -lt 15000 ] || { fail "teardown waited for the grace period"; return 1; }
	nothing_left
}

t_teardown_sighup() {
	# A grace period far above any scheduling delay on a loaded machine,
	# so "ended by SIGHUP" and "ended by the grace period" cannot be
	# confused.
	pamd_write "grace=30"
	check "teardown sends SIGHUP: a process that ignores SIGTERM exits through its SIGHUP handler, well before the grace period" hup_ends_term_ignorer
	pamd_write ""
}

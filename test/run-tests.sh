#!/bin/bash
# run-tests.sh [BUILD_DIR [TEST...]] - pam_unshare loaded into real PAM
# clients: the C host test/pamhost.c, su, sudo and sshd. Prints TAP.
#
# Each test is a function t_NAME that runs one or more checks (tap.sh:
# `check DESC FUNCTION`); with TEST names (NAME or t_NAME) only those run,
# otherwise all, in the order of ALL_TESTS below. The two checks of the
# whole run (no helper left, host /proc intact) always run last.
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
# shellcheck source=test/stage.sh
. "$TEST_DIR"/stage.sh
# shellcheck source=test/front.sh
. "$TEST_DIR"/front.sh
# shellcheck source=test/scope-user.sh
. "$TEST_DIR"/scope-user.sh
# shellcheck source=test/relay.sh
. "$TEST_DIR"/relay.sh
# shellcheck source=test/names.sh
. "$TEST_DIR"/names.sh
# shellcheck source=test/run-user.sh
. "$TEST_DIR"/run-user.sh
# shellcheck source=test/planted.sh
. "$TEST_DIR"/planted.sh
# shellcheck source=test/limits.sh
. "$TEST_DIR"/limits.sh

# pamhost ARGS...: the C host with the test world's PAM services.
pamhost() { "$PAMHOST" -c /etc/pam.d "$@"; }

# sees_only_session OUTPUT: in "ps -e -o pid=,comm=" output, PID 1 is the
# helper and nothing of the host shows: no marker sleep, no daemons, no
# sshd but the session's own post-auth child at PID 2.
sees_only_session() {
	local out=$1
	grep -Eq "^ *1 $HELPER_COMM\$" <<<"$out" &&
		! grep -q 'sleep 1001' <<<"$out" &&
		! grep -Eq '(^| )(init|systemd|cron|pamhost|run-tests\.sh|python3)$' <<<"$out" &&
		! grep -Ev "^ *2 $SSHD_COMM\$" <<<"$out" | grep -Eq " $SSHD_COMM\$"
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

pamhost_sees_only_ps() {
	local out
	out=$(pamhost -s pamhost -u pu-alice -- /bin/ps -e -o pid=,comm= 2>&1)
	echo "$out"
	sees_only_session "$out" && [ "$(grep -c . <<<"$out")" -eq 3 ]
}
t_pamhost_ps() {
	check "pamhost: ps -e in the session shows only the helper and ps" pamhost_sees_only_ps
}

# fifty_isolated: pamhost's -t lines are "cycle,open,close,isolated".
fifty_isolated() {
	local out isolated
	out=$(pamhost -s pamhost -u pu-alice -n 50 -t -- /bin/true 2>&1)
	isolated=$(awk -F, '$4 == 1' <<<"$out" | wc -l)
	echo "$isolated of 50 sessions isolated:"
	echo "$out"
	[ "$isolated" -eq 50 ]
}
t_pamhost_50_in_one_process() {
	check "pamhost: 50 open-fork-close cycles in one process, all 50 isolated" fifty_isolated
}

first_commands_see_new_proc() {
	local i out bad=0
	for i in $(seq 100); do
		out=$(pamhost -s pamhost -u pu-alice -- /bin/cat /proc/1/comm 2>/dev/null)
		[ "$out" = "$HELPER_COMM" ] && continue
		bad=$((bad + 1))
		printf 'session %d saw:\n%s\n' "$i" "$out"
	done
	echo "$bad of 100 sessions saw another /proc"
	[ "$bad" = 0 ]
}
t_first_command_sees_new_proc() {
	check "100 fast sessions: the first command always sees the new /proc" first_commands_see_new_proc
}

# A relative confdir only works while pamhost's working directory survives
# each close; the child prints where it starts.
host_keeps_cwd() {
	local out
	out=$(cd /etc && "$PAMHOST" -c pam.d -s pamhost -u pu-alice -n 3 -- /bin/pwd 2>&1)
	echo "$out"
	[ "$(grep -c '^/etc$' <<<"$out")" -eq 3 ]
}
t_host_keeps_cwd() {
	check "the host keeps its working directory across sessions" host_keeps_cwd
}

nofork_host_clean() {
	pamhost -s pamhost -u pu-alice -m nofork -n 5 2>&1 || { fail "pamhost exited $?"; return 1; }
	wait_until 2 no_helpers || { fail "helpers left: $(helpers_alive)"; return 1; }
	no_other_pidns || { fail "left in another PID namespace: $(pidns_others)"; return 1; }
}
t_nofork_host() {
	check "a host that never forks (like pamtester): open and close succeed, nothing is left" nofork_host_clean
}

systemd_user_sees_host() {
	local out
	out=$(pamhost -s systemd-user -u pu-alice -- /bin/ps -e -o args= 2>&1)
	echo "$out"
	grep -q 'open=PAM_SUCCESS' <<<"$out" && grep -q 'sleep 1001' <<<"$out"
}
t_systemd_services() {
	local mark
	printf 'session optional pam_permit.so\nsession required %s helper=%s\n' "$MODULE" "$HELPER" >"$W"/pam.d/systemd-user
	mark=$(syslog_mark)
	check "systemd-user sessions are left alone (PAM_IGNORE): they see the host" systemd_user_sees_host
	check "systemd-user sessions: syslog says why they are not isolated" \
		syslog_has "$mark" 'pam_unshare(systemd-user:session): service systemd-user starts sessions through systemd'
}

noclose_sessions_end() {
	local out
	out=$(pamhost -s pamhost -u pu-alice -m noclose -n 3 -- /bin/true 2>&1)
	echo "$out"
	[ "$(grep -c 'open=PAM_SUCCESS close=SKIPPED child=0' <<<"$out")" -eq 3 ] || return 1
	wait_until 2 no_helpers || { fail "helpers left: $(helpers_alive)"; return 1; }
	no_other_pidns || { fail "left in another PID namespace: $(pidns_others)"; return 1; }
}
t_pam_end_without_close() {
	local mark
	mark=$(syslog_mark)
	check "pam_end without pam_close_session: the session still ends, three times in one process" noclose_sessions_end
	check "pam_end without pam_close_session: syslog says so" \
		syslog_has_n "$mark" 3 'pam_end without pam_close_session: ended the session of user pu-alice$'
}

root_sees_host() {
	local out
	out=$(pamhost -s pamhost -u root -- /bin/ps -e -o pid=,args= 2>&1)
	echo "$out"
	grep -q 'sleep 1001' <<<"$out"
}
t_root_exempt() {
	check "root is exempt by default and sees the host's processes" root_sees_host
}

# The helper of the live session of t_helper_shape.
HELPER_PID=
helper_found() { [ -n "$HELPER_PID" ] || fail "no helper found for a live session"; }
helper_no_inherited_fds() {
	local f fds
	helper_found || return 1
	fds=$(for f in /proc/"$HELPER_PID"/fd/*; do echo "${f##*/} $(readlink "$f")"; done)
	echo "$fds"
	# Allowed: stdio on /dev/null, the control socket, pidfds, signalfd,
	# the session's mount table, which it watches, and the user manager's
	# relay: one more socket, the root of its own tmpfs (not the host's
	# root: another device), and the manager's socket or an inotify watch
	# for it.
	! grep -Eqv '^[012] /dev/null$|^[0-9]+ socket:|anon_inode:\[?(pidfd|signalfd|inotify)|^[0-9]+ /proc/1/mountinfo$|^[0-9]+ /$|^[0-9]+ /run/user/[0-9]+/systemd/private$' <<<"$fds" &&
		grep -q '^3 socket:' <<<"$fds" && [ "$(grep -c ' socket:' <<<"$fds")" -le 2 ] &&
		while read -r f; do
			[ "$(stat -L -c %d "/proc/$HELPER_PID/fd/$f")" != "$(stat -c %d /)" ] || return 1
		done < <(sed -n 's|^\([0-9]*\) /$|\1|p' <<<"$fds")
}
helper_single_threaded() {
	local threads
	helper_found || return 1
	threads=$(awk '/^Threads:/ {print $2}' /proc/"$HELPER_PID"/status)
	echo "threads=$threads"
	[ "$threads" = 1 ]
}
helper_named() {
	local cmdline
	helper_found || return 1
	cmdline=$(tr '\0' ' ' </proc/"$HELPER_PID"/cmdline | sed 's/ $//')
	echo "comm=$(cat /proc/"$HELPER_PID"/comm) cmdline=$cmdline"
	grep -q '^pam_unshare-init .*pamhost pu-alice$' <<<"$cmdline"
}
t_helper_shape() {
	local pid
	pamhost -s pamhost -u pu-alice -- /bin/sleep 2 2>/dev/null &
	pid=$!
	wait_until 2 helper_exists
	HELPER_PID=$(helpers_alive | head -1)
	check "the helper holds no inherited descriptors" helper_no_inherited_fds
	check "the helper is single-threaded" helper_single_threaded
	check "the helper is named $HELPER_COMM and labelled with service and user" helper_named
	wait "$pid"
}

# Five sleeps orphaned at once are reparented to the helper (PPID 1); once
# they end, none may linger as a zombie.
orphans_reaped() {
	local out
	# shellcheck disable=SC2016 # expanded by the session's shell
	out=$(pamhost -s pamhost -u pu-alice -- /bin/sh -c \
		'for i in 1 2 3 4 5; do (sleep 0.3 &); done; sleep 0.1;
		 echo orphans=$(ps -e -o ppid=,comm= | grep -c "^ *1 sleep");
		 sleep 1; ps -e -o stat=,comm=' 2>&1)
	echo "$out"
	grep -q '^orphans=5$' <<<"$out" && ! grep -q '^Z' <<<"$out"
}
t_orphans_reaped() {
	check "five orphaned sleeps are reparented to the helper and reaped: no zombies" orphans_reaped
}

# no_crosstalk SESSIONS SECONDS CMD...: concurrent_crosstalk as a test.
no_crosstalk() {
	local bad
	bad=$(concurrent_crosstalk "$@")
	echo "$bad of $1 sessions saw another or failed"
	[ "$bad" = 0 ]
}
t_concurrent_sessions() {
	check "20 concurrent sessions cannot see each other" \
		no_crosstalk 20 3 "$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -- /bin/sh -c
}

kill_helper_ends_session() {
	local pid helper start
	pamhost -s pamhost -u pu-alice -- /bin/sleep 30 >/dev/null 2>&1 &
	pid=$!
	wait_until 2 helper_exists
	helper=$(helpers_alive | head -1)
	start=$SECONDS
	kill -9 "$helper"
	wait "$pid"
	echo "the session ended $((SECONDS - start)) s after kill -9 of helper $helper"
	[ $((SECONDS - start)) -lt 5 ] || return 1
	wait_until 2 no_other_pidns || { fail "left in another PID namespace: $(pidns_others)"; return 1; }
}
t_kill_helper() {
	check "kill -9 of the helper ends the session at once and leaves nothing" kill_helper_ends_session
}

kill_host_session_lives() {
	local pid alive=no
	pamhost -s pamhost -u pu-alice -- /bin/sleep 2 >/dev/null 2>&1 &
	pid=$!
	# Kill the host only once it has started the leader: a host killed
	# before that rightly takes the namespace with it.
	wait_until 2 leader_started "/bin/sleep 2"
	kill -9 "$pid"
	wait "$pid" 2>/dev/null
	sleep 0.5
	helper_exists && alive=yes
	wait_until 4 no_helpers || { fail "helpers left: $(helpers_alive)"; return 1; }
	wait_until 1 no_other_pidns || { fail "left in another PID namespace: $(pidns_others)"; return 1; }
	[ "$alive" = yes ] || fail "the helper did not outlive the host"
}
t_kill_host() {
	check "kill -9 of the host: the session lives until its leader ends, then nothing is left" kill_host_session_lives
}

# refused_cleanly SERVICE: a pamhost session of pu-alice gets PAM_SYSTEM_ERR
# and leaves no process and the host's /proc intact.
refused_cleanly() {
	local out
	out=$(pamhost -s "$1" -u pu-alice -- /bin/true 2>&1)
	echo "$out"
	grep -q 'open=PAM_SYSTEM_ERR' <<<"$out" || return 1
	no_helpers || { fail "helpers left: $(helpers_alive)"; return 1; }
	no_other_pidns || { fail "left in another PID namespace: $(pidns_others)"; return 1; }
	host_proc_intact || fail "the host's /proc or binfmt_misc changed"
}
t_failed_helper() {
	local mark
	pamd_write ""
	sed -i "s|helper=$HELPER|helper=/bin/false|" "$W"/pam.d/pamhost
	mark=$(syslog_mark)
	check "a helper that fails: PAM_SYSTEM_ERR, no stray process, host untouched" refused_cleanly pamhost
	check "a helper that fails: syslog names the failed step" \
		syslog_has "$mark" 'cannot isolate the session of user pu-alice: .*exited before it was ready'
	pamd_write ""
}

# open_fails SERVICE: a pamhost session of pu-alice gets PAM_SYSTEM_ERR.
open_fails() {
	local out
	out=$(pamhost -s "$1" -u pu-alice -- /bin/true 2>&1)
	echo "$out"
	grep -q 'open=PAM_SYSTEM_ERR' <<<"$out"
}
t_untrusted_helper() {
	local copy=$W/home/pu-alice/pam_unshare-init
	cp "$HELPER" "$copy"
	chown pu-alice "$copy"
	pamd_write "helper=$copy"
	sed -i "s| helper=$HELPER||" "$W"/pam.d/pamhost
	check "a helper owned by a user is refused" open_fails pamhost
	pamd_write ""
}

# --- PAM control semantics: stacks that skip the module or lose its error --
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

# refused SERVICE: pam_open_session of SERVICE fails and runs nothing.
refused() {
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
		refused pu-substack
	check "stack 'session substack F', F has 'sufficient': doctor finds nothing wrong with the stack" \
		doctor_passes pu-substack

	# The fixed form of the first shapes: required, last.
	stack_write pu-required "session optional pam_permit.so" "session required $unshare_bad"
	check "stack 'session required pam_unshare.so' last: its PAM_SYSTEM_ERR refuses the session" \
		refused pu-required
	check "stack 'session required pam_unshare.so' last: doctor finds nothing wrong with the stack" \
		doctor_passes pu-required

	rm -f "$W"/pam.d/pu-*
}

# --- doctor's "systemctl --user" check, where no systemd runs --------------
#
# The test world has no systemd and a /run of its own: doctor must say why
# it cannot check, and how to get a user manager. The check itself, with a
# real manager, runs in the VM.

# manager_line [ARGS...]: doctor's "systemctl --user" line on the test
# world's pam.d.
manager_line() {
	"$BUILD"/pam-unshare doctor --pamd "$W/pam.d" --module "$MODULE" --helper "$HELPER" "$@" 2>&1 |
		grep '^. systemctl --user: '
}

# line_is PREFIX [ARGS...]: manager_line ARGS starts with PREFIX.
line_is() {
	local prefix=$1 out
	shift
	out=$(manager_line "$@")
	echo "$out"
	[ "${out#"$prefix"}" != "$out" ]
}

# run_runtime_dir WANT: "pam-unshare run --user pu-alice" gives the command
# XDG_RUNTIME_DIR=WANT ("" for none).
run_runtime_dir() {
	local out
	# shellcheck disable=SC2016 # expanded by the command's shell
	out=$(XDG_RUNTIME_DIR=/run/user/0 "$BUILD"/pam-unshare run --user pu-alice \
		--options "helper=$HELPER" -- /bin/sh -c 'echo "dir=${XDG_RUNTIME_DIR-}"' 2>&1)
	echo "$out"
	[ "$out" = "dir=$1" ]
}

# run_alice_call SECS [ARGS...]: "pam-unshare run --user pu-alice" with
# module arguments ARGS runs the stand-in client (relay.sh) on the socket
# systemctl --user would use, $XDG_RUNTIME_DIR/systemd/private.
run_alice_call() {
	local secs=$1
	shift
	# shellcheck disable=SC2016 # expanded by the command's shell
	"$BUILD"/pam-unshare run --user pu-alice --options "helper=$HELPER $*" -- \
		/bin/sh -c 'exec "$0" "$1" call "$XDG_RUNTIME_DIR/systemd/private" "$2"' "$PY" "$MANAGER_PY" "$secs" 2>&1
}

run_relays() {
	local out
	out=$(run_alice_call 5)
	echo "$out"
	has_line "$out" '^ok peer-pid=1 reply=gen-run fd=from-gen-run$'
}

run_relay_off() {
	local out
	out=$(run_alice_call 0 user_manager=off)
	echo "$out"
	has_line "$out" '^No data available \(peer pid 0\)$'
}

t_doctor_user_manager() {
	local d
	check "doctor, no user manager: '- systemctl --user', naming loginctl enable-linger" \
		line_is '- systemctl --user: not checked: no systemd user manager runs (no /run/user/UID/systemd/private owned by its user); a user'"'"'s manager runs while they are logged in, or always after "loginctl enable-linger USER"'
	check "doctor --manager-user pu-alice, who has none: '- systemctl --user' names pu-alice" \
		line_is '- systemctl --user: not checked: no systemd user manager runs for pu-alice (no /run/user/4101/systemd/private owned by uid 4101)' \
		--manager-user pu-alice
	check "run --user pu-alice without /run/user/4101: no XDG_RUNTIME_DIR" run_runtime_dir ""

	: >"$W/manager.log"
	runtime_up
	manager_start gen-run
	check "run --user pu-alice with /run/user/4101: XDG_RUNTIME_DIR=/run/user/4101" run_runtime_dir /run/user/4101
	check "run --user pu-alice: the client reaches her manager through the relay" run_relays
	check "run --user pu-alice, user_manager=off: the client fails with 'No data available'" run_relay_off
	# The stand-in is pu-alice's own process, not systemd in her
	# user@4101.service: doctor must not talk to it (planted.sh).
	check "doctor, a stand-in manager: '- systemctl --user' finds no real manager" \
		line_is '- systemctl --user: not checked: found no real systemd user manager (skipped /run/user/4101/systemd/private: its listener, pid '
	runtime_down

	d=$(mktemp -d)
	printf 'session required %s helper=%s user_manager=off\n' "$MODULE" "$HELPER" >"$d"/pu-off
	check "doctor, a service with user_manager=off: '! systemctl --user' says it fails there by choice" \
		line_is '! systemctl --user: systemctl --user fails in the sessions of pu-off by choice: their pam.d lines say user_manager=off' \
		--pamd "$d"
	rm -rf "$d"
}

# enable_refuses SERVICE WHERE: enable leaves SERVICE as it was and names
# WHERE as the line that would skip the module.
enable_refuses() {
	local before out rc=0
	before=$(cat "$W/pam.d/$1")
	out=$("$BUILD"/pam-unshare enable --pamd "$W/pam.d" "$1" 2>&1) || rc=$?
	echo "$out"
	[ "$rc" -ne 0 ] || fail "enable exited 0" || return 1
	[ "$(cat "$W/pam.d/$1")" = "$before" ] || fail "$1 was changed" || return 1
	grep -qF "($2) can return PAM_SUCCESS" <<<"$out"
}

t_enable_refuses_skippable() {
	stack_write pu-sufficient "session required pam_unix.so" "session sufficient pam_permit.so"
	check "enable refuses a stack with 'session sufficient X', naming the line, and changes nothing" \
		enable_refuses pu-sufficient "pu-sufficient line 2"
	stack_write pu-done "session required pam_unix.so" "session [success=done default=ignore] pam_permit.so"
	check "enable refuses a stack with '[success=done default=ignore] X', naming the line, and changes nothing" \
		enable_refuses pu-done "pu-done line 2"
	rm -f "$W"/pam.d/pu-*
}

# --- status cannot be spoofed -------------------------------------------

# status_lists_only_real: pam-unshare status shows one session, pu-alice's
# pamhost session.
status_lists_only_real() {
	local out
	out=$("$BUILD"/pam-unshare status 2>&1)
	echo "$out"
	pgrep -a -x "$HELPER_COMM"
	[ "$(grep -c . <<<"$out")" -eq 2 ] && grep -Eq '^pu-alice +pamhost ' <<<"$out"
}

# A user makes a process that looks like a helper to a careless eye: PID 1
# of its own PID namespace, named pam_unshare, executing a file named
# like the helper (a copy of sleep, run through a link named like the
# helper's process, so that the kernel names the process so).
t_status_spoof() {
	local fake=$W/home/pu-alice/fake pid host
	mkdir -p "$fake"
	cp /bin/sleep "$fake/${HELPER##*/}"
	ln -sf "${HELPER##*/}" "$fake/$HELPER_COMM"
	chown -R pu-alice "$fake"
	setpriv --reuid=pu-alice --regid=pu-students --clear-groups \
		unshare -Urpf --kill-child "$fake/$HELPER_COMM" 30 &
	pid=$!
	"$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -- /bin/sleep 3 >/dev/null 2>&1 &
	host=$!
	wait_until 2 leader_started "/bin/sleep 3"
	if ! wait_until 2 pgrep -x -u pu-alice "$HELPER_COMM" >/dev/null; then
		skip "status: a user's fake helper is not listed" "unprivileged user namespaces are not available"
	else
		check "status lists the real session and not a user's fake helper (unshare -Urpf)" status_lists_only_real
	fi
	kill "$pid" 2>/dev/null # unshare, whose death kills the fake (--kill-child)
	wait "$pid" "$host"
	wait_until 2 sh -c "! pgrep -u pu-alice -x $HELPER_COMM >/dev/null"
	rm -rf "$fake"
}

# --- the helper's polling mode, for kernels without pidfd_open -------------

poll_mode_isolated() {
	local out
	out=$("$BUILD"/pam-unshare run --poll --options "helper=$HELPER" -- /bin/ps -e -o pid=,comm= 2>&1)
	echo "$out"
	sees_only_session "$out" || return 1
	wait_until 3 no_helpers || { fail "helpers left: $(helpers_alive)"; return 1; }
	no_other_pidns || { fail "left in another PID namespace: $(pidns_others)"; return 1; }
}
# The host dies while its leader runs: the helper outlives the host and ends
# within its 1 s poll of the leader's end.
poll_mode_outlives_host() {
	local pid start
	"$BUILD"/pam-unshare run --poll --options "helper=$HELPER" -- /bin/sleep 1.5 >/dev/null 2>&1 &
	pid=$!
	wait_until 2 leader_started "/bin/sleep 1.5"
	kill -9 "$pid"
	wait "$pid" 2>/dev/null
	start=$SECONDS
	helper_exists || { fail "no helper after kill -9 of the host"; return 1; }
	wait_until 4 no_helpers || { fail "helpers left: $(helpers_alive)"; return 1; }
	no_other_pidns || { fail "left in another PID namespace: $(pidns_others)"; return 1; }
	[ $((SECONDS - start)) -ge 1 ] || fail "the session ended before its leader"
}
t_poll_mode() {
	check "polling mode: the session is isolated and ends with its leader" poll_mode_isolated
	check "polling mode: after kill -9 of the host the session lives until its leader ends" poll_mode_outlives_host
}

# --- other proc mounts ------------------------------------------------------
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
	wait_until 5 test -e "$flag"/started || {
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
	if ! { wait_until 2 no_helpers && no_other_pidns; }; then
		echo "left over: $(pidns_others)"
		rc=1
	fi
	wait_until 2 syslog_count_at_least "$mark" 1 'cannot isolate the session of user pu-alice: helper: detach another proc mount'
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
	wait_until 5 test -e "$flag"/started || rc=1
	# The stage is private, so what is mounted in it stays off the running
	# session until the bind below copies it there in one piece.
	mount --bind "$stage" "$stage"
	mount --make-private "$stage"
	mkdir -p "$stage/sub/proc"
	mount -t proc proc "$stage/sub/proc"
	mount -t tmpfs pu-cover "$stage/sub"
	mount --rbind "$stage" "$PROCFS/covered"
	wait_until 3 syslog_says_retrying "$mark" || { echo "no syslog line about the covered procfs"; rc=1; }
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

# The helper of an idle session is never scheduled; an unrelated mount
# wakes it once (it watches the mount table), and then it idles again.
helper_idle() {
	local pid h a b c d
	pamhost -s pamhost -u pu-alice -- /bin/sleep 7 >/dev/null 2>&1 &
	pid=$!
	wait_until 3 helper_exists || { fail "no helper"; return 1; }
	h=$(helpers_alive | head -1)
	sleep 1
	a=$(ctxt_switches "$h")
	sleep 2
	b=$(ctxt_switches "$h")
	mount -t tmpfs pu-idle "$PROCFS/idle"
	sleep 0.5
	c=$(ctxt_switches "$h")
	sleep 2
	d=$(ctxt_switches "$h")
	umount "$PROCFS/idle"
	wait "$pid"
	echo "helper context switches: $a -> $b over 2 s idle; $c -> $d over 2 s after a tmpfs mount"
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

# --- su and sudo ------------------------------------------------------------

# session_sees_only_itself CMD...: CMD lists the processes it sees (ps -e
# -o pid=,comm=) and sees only the helper and the session.
session_sees_only_itself() {
	local out
	out=$("$@" 2>&1)
	echo "$out"
	sees_only_session "$out"
}
# nothing_left: no process of a session is left, and the host's /proc and
# binfmt_misc are intact.
nothing_left() {
	wait_until 3 no_other_pidns || { fail "left in another PID namespace: $(pidns_others)"; return 1; }
	host_proc_intact || fail "the host's /proc or binfmt_misc changed"
}
t_su() {
	check "su -c: ps -e sees only the helper and the session" \
		session_sees_only_itself su pu-alice -c 'ps -e -o pid=,comm='
	check "su - (login shell): ps -e sees only the helper and the session" \
		session_sees_only_itself su - pu-alice -c 'ps -e -o pid=,comm='
	check "after su: nothing left in another PID namespace, host /proc and binfmt_misc intact" nothing_left
}

# shows REGEX CMD...: a line of CMD's output (shown) matches REGEX.
shows() {
	local regex=$1 out
	shift
	out=$("$@" 2>&1)
	echo "$out"
	grep -Eq "$regex" <<<"$out"
}

# sees_host CMD...: CMD lists process arguments and sees the marker sleep of
# the host: it is not isolated.
sees_host() { shows 'sleep 1001' "$@"; }
t_su_root_exempt() {
	check "su to root is exempt and sees the host" sees_host su - root -c 'ps -e -o args='
}

# sleep_gone ARG: no "sleep ARG" runs (within 3 s).
sleep_gone() {
	wait_until 3 sh -c "! pgrep -f '^sleep $1' >/dev/null" || { fail "still running: $(pgrep -a -f "^sleep $1")"; return 1; }
}
t_su_nohup_gone() {
	su pu-alice -c 'nohup sleep 1002 >/dev/null 2>&1 &' 2>/dev/null
	check "a background nohup sleep is gone after logout" sleep_gone 1002
}

t_sudo() {
	check "sudo -u: ps -e sees only the helper and the session" \
		session_sees_only_itself sudo -u pu-alice ps -e -o pid=,comm=
}

# isolated CMD...: CMD's ps -e -o pid=,comm= shows the helper as PID 1.
isolated() { shows "^ *1 $HELPER_COMM\$" "$@"; }
t_groups() {
	pamd_write "only_groups=pu-staff"
	check "only_groups: a user outside the groups is not isolated" sees_host su pu-alice -c 'ps -e -o args='
	check "only_groups: a member is isolated" isolated su pu-carol -c 'ps -e -o pid=,comm='
	pamd_write "exempt_groups=pu-students"
	check "exempt_groups: a member is not isolated" sees_host su pu-bob -c 'ps -e -o args='
	pamd_write ""
}

# command_refused CMD...: CMD (which would create $W/marker) does not run.
command_refused() {
	rm -f "$W"/marker
	"$@" 2>&1
	[ ! -e "$W"/marker ] || fail "the command ran"
}
t_bad_option() {
	local mark
	pamd_write "grace=1 bogus_option"
	mark=$(syslog_mark)
	check "bad module argument: su refuses the session and the command does not run" \
		command_refused su pu-alice -c "touch $W/marker"
	check "bad module argument: sudo refuses too (the command does not run)" \
		command_refused sudo -u pu-alice touch "$W"/marker
	check "bad module argument: pam_open_session returns PAM_SYSTEM_ERR" open_fails pamhost
	check "bad module argument: syslog names it" \
		syslog_has "$mark" 'pam_unshare(su:session): bad module argument "bogus_option": unknown option'
	check "bad module argument: no process left, host /proc intact" no_session_left
	pamd_write ""
}

# no_session_left: no helper, nothing in another PID namespace, host /proc
# intact, right now.
no_session_left() {
	no_helpers || { fail "helpers left: $(helpers_alive)"; return 1; }
	no_other_pidns || { fail "left in another PID namespace: $(pidns_others)"; return 1; }
	host_proc_intact || fail "the host's /proc or binfmt_misc changed"
}

# syslog_open_close MARK: since MARK, su logged one line at open and one at
# close, and no debug lines.
syslog_open_close() {
	syslog_has "$1" 'pam_unshare(su:session): session closed for user pu-alice' || return 1
	syslog_has "$1" 'pam_unshare(su:session): session opened for user pu-alice: helper pid [0-9]*' || return 1
	! syslog_since "$1" | grep 'pam_unshare.*debug\|entering' || { fail "debug lines without debug"; return 1; }
}
t_syslog_lines() {
	local mark
	mark=$(syslog_mark)
	su pu-alice -c true >/dev/null 2>&1
	check "syslog: one line at open, one at close, no debug lines without debug" syslog_open_close "$mark"
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
	wait_until 3 stopped_child "$pid" >/dev/null
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

# --- sshd -------------------------------------------------------------------

# sshd_leader: the host PID of a live sshd post-auth child of a session:
# an sshd that is PID 2 of a nested PID namespace (NSpid: HOST_PID ... 2).
sshd_leader() {
	local p
	for p in $(pgrep -x "$SSHD_COMM"); do
		if awk '/^NSpid:/ && NF >= 3 && $NF == 2 { n = 1 } /^State:/ && $2 != "Z" { a = 1 } END { exit !(n && a) }' \
			/proc/"$p"/status 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# session_helper PID: the helper that is PID 1 of PID's namespace (another
# session's helper may still be on its way out).
session_helper() {
	local h ns
	ns=$(readlink /proc/"$1"/ns/pid) || return 1
	for h in $(helpers_alive); do
		if [ "$(readlink /proc/"$h"/ns/pid)" = "$ns" ]; then
			echo "$h"
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
	[ -n "$own" ] && ss -x -a | awk -v i="$own" '$6 == i && $8 != 0 { print $8; f = 1 } END { exit !f }'
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
	helper=$(session_helper "$child")
	if [ -z "$child" ] || [ -z "$helper" ]; then
		wait "$pid"
		echo "no session found (post-auth child '$child', helper '$helper')"
		return 1
	fi
	wait_until 5 control_socket_peer "$helper" >/dev/null
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

# PID 2 is sshd's post-auth child, which runs the user's commands.
ssh_sees_only_itself() {
	local out
	out=$(timeout 20 "${SSH[@]}" 'ps -e -o pid=,comm=' 2>&1)
	echo "$out"
	sees_only_session "$out" && grep -Eq "^ *2 $SSHD_COMM\$" <<<"$out"
}
ssh_tty_sees_only_itself() {
	local out
	out=$(timeout 20 "${SSH[@]}" -tt 'ps -e -o pid=,comm=' 2>&1 | tr -d '\r')
	echo "$out"
	sees_only_session "$out"
}
ssh_nothing_left() {
	nothing_left && return 0
	ps -eo pid,ppid,stat,wchan:20,args
	return 1
}
t_sshd() {
	if ! world_sshd; then
		skip "sshd: ps -e sees only the helper and the session" "openssh-server is not installed"
		return
	fi
	check "sshd: ps -e sees only the helper and the session" ssh_sees_only_itself
	check "sshd: after logout nothing is left in another PID namespace" ssh_nothing_left
	timeout 20 "${SSH[@]}" 'nohup sleep 1003 >/dev/null 2>&1 &' 2>/dev/null
	check "sshd: a background nohup sleep is gone after logout" sleep_gone 1003
	check "sshd: the post-auth child (PID 2) holds no descriptor of the module" ssh_leader_fds
	check "sshd with a pty (ssh -tt): ps -e sees only the helper and the session" ssh_tty_sees_only_itself
	check "sshd: 10 concurrent sessions cannot see each other" no_crosstalk 10 2 timeout 30 "${SSH[@]}"
	check "sshd: nothing left after 10 concurrent sessions" wait_until 3 no_other_pidns
}

# --- the whole run ----------------------------------------------------------

all_helpers_gone() { wait_until 3 no_helpers || fail "helpers left: $(helpers_alive)"; }

ALL_TESTS=(pamhost_ps pamhost_50_in_one_process first_command_sees_new_proc
	host_keeps_cwd nofork_host systemd_services pam_end_without_close
	root_exempt helper_shape orphans_reaped concurrent_sessions kill_helper
	kill_host failed_helper untrusted_helper front_no_session
	front_untrusted_go front_fork_child front_go_threads_signals stack_shapes enable_refuses_skippable
	doctor_user_manager doctor_planted_manager status_spoof poll_mode procfs_mounts su su_root_exempt
	su_nohup_gone sudo groups names_missing names_nss_down names_doctor
	run_user_terminal bad_option syslog_lines leader_fds
	symlinked_helper helper_ids teardown_sighup sshd
	user_linger_refused user_two_sessions user_no_linger user_linger user_stop
	user_fake_helper user_kill_host user_concurrent_logins user_many_users
	user_race_teardown user_join_while_ending user_procfs_mounts user_sshd
	user_nested_host user_nested_helper_refused user_upgrade user_join_fallback
	relay_session relay_late_socket relay_refuses relay_scope_user
	limits_relay_cap limits_relay_nproc limits_relay_emfile limits_user_emfile
	limits_helper_nofile relay_inotify_charged relay_fuse_mount)

[ $# -gt 0 ] && shift # BUILD_DIR
tests=("${@:-${ALL_TESTS[@]}}")
for t in "${tests[@]}"; do
	declare -F "t_${t#t_}" >/dev/null || fatal "no such test: $t (tests: ${ALL_TESTS[*]})"
done

W=$(mktemp -d /tmp/pam_unshare-test.XXXXXX)
world_setup "$W"
trap world_teardown EXIT
# pam_unshare.so loads the Go library from its installed path: put this
# build's there, in this mount namespace only.
GO_MODULE=$(stage_go_module "$BUILD" "$W"/stage) || fatal "cannot stage the Go library"
export GO_MODULE

# A host process that no session may see.
sleep 1001 &
MARKER=$!

for t in "${tests[@]}"; do
	echo "# test: t_${t#t_}"
	"t_${t#t_}"
done

kill "$MARKER"
check "no helper is left after the whole run" all_helpers_gone
check "the host's /proc and binfmt_misc are intact after the whole run" host_proc_intact
plan
summary

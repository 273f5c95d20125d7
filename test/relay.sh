# shellcheck shell=bash
# relay.sh - tests of the user manager's relay (user_manager=relay, the
# default; nsinit/init/relay.c), sourced by run-tests.sh inside its private
# world (lib.sh, tap.sh). The world has no systemd, so
# test/manager.py stands in for both ends: a "manager" listening as
# pu-alice on /run/user/4101/systemd/private, and a client that checks its
# peer as systemctl --user does (a peer PID of 0 is "No data available")
# and passes a descriptor each way. The VM scenario user_manager runs the
# real systemctl against a real user manager.
# Each t_relay_* test starts with no helper running and leaves none.

ALICE_RUNTIME=/run/user/4101
MANAGER_SOCK=$ALICE_RUNTIME/systemd/private
MANAGER_PY=$TEST_DIR/manager.py
MANAGER_PID=
AS_ALICE=(/usr/bin/setpriv --reuid=4101 --regid=4101 --init-groups)

# runtime_up: what logind does at alice's first login: a tmpfs of hers at
# /run/user/4101. The manager then makes systemd/ in it.
runtime_up() {
	mkdir -p "$ALICE_RUNTIME"
	mount -t tmpfs -o uid=4101,gid=4101,mode=700,size=1m pu-runtime "$ALICE_RUNTIME"
	as_alice mkdir -p "$ALICE_RUNTIME/systemd"
}

runtime_down() {
	manager_stop
	umount -l "$ALICE_RUNTIME" 2>/dev/null
	rmdir "$ALICE_RUNTIME" 2>/dev/null
	return 0
}

# manager_start NAME: alice's stand-in manager, answering with NAME; its
# log (one line per connection) is $W/manager.log.
manager_start() {
	as_alice "$PY" "$MANAGER_PY" serve "$MANAGER_SOCK" "$1" >>"$W/manager.log" 2>&1 &
	MANAGER_PID=$!
	wait_until 30 test -S "$MANAGER_SOCK" || fatal "the stand-in manager did not start"
}

manager_stop() {
	[ -n "$MANAGER_PID" ] || return 0
	kill "$MANAGER_PID" 2>/dev/null
	wait "$MANAGER_PID" 2>/dev/null
	MANAGER_PID=
AS_ALICE=(/usr/bin/setpriv --reuid=4101 --regid=4101 --init-groups)
}

# manager_saw REGEX: a line of the manager's log matches.
manager_saw() { has_line "$(cat "$W/manager.log")" "$1"; }

relay_gone() { ! pgrep -x pam_unshare-bus >/dev/null; }

# alice_call: the client in an isolated session of pu-alice, run as her
# (pamhost itself stays root).
alice_call() { user_session pu-alice "${AS_ALICE[@]}" "$PY" "$MANAGER_PY" call "$MANAGER_SOCK"; }

# --- the relay in a session -------------------------------------------------

relay_reaches_manager() {
	local out
	out=$(alice_call)
	echo "$out"
	# The peer the client sees is the helper, PID 1 of its namespace;
	# each side got the other's descriptor.
	has_line "$out" '^ok peer-pid=1 reply=gen1 fd=from-gen1$' &&
		manager_saw '^conn uid=4101 pid=[0-9]+ msg=hello fd=from-client$'
}

relay_as_user() {
	local pid
	# The connection the manager accepted came from a process of alice's
	# with every id hers, in the session's PID namespace (a child of the
	# helper, named pam_unshare-bus).
	pid=$(sed -n 's/^conn uid=4101 pid=\([0-9]*\) .*/\1/p' "$W/manager.log" | tail -n 1)
	[ -n "$pid" ] || { echo "no connection logged"; return 1; }
	grep -q "^conn uid=4101 pid=$pid " "$W/manager.log"
}

# The host (the world) still sees the manager's own socket, and no mount
# at it; nothing of the relay is left after the session.
relay_host_untouched() {
	[ "$(stat -c %i "$MANAGER_SOCK")" = "$1" ] || { echo "the socket's inode changed"; return 1; }
	! findmnt -n "$MANAGER_SOCK" || { echo "a mount at $MANAGER_SOCK on the host"; return 1; }
	wait_until 10 no_helpers || { echo "helpers left: $(helpers_alive)"; return 1; }
	relay_gone || { pgrep -a -x pam_unshare-bus; return 1; }
}

relay_off_fails() {
	local out
	pamd_write "user_manager=off"
	out=$(alice_call)
	pamd_write ""
	echo "$out"
	has_line "$out" '^No data available \(peer pid 0\)$'
}

t_relay_session() {
	local ino
	: >"$W/manager.log"
	runtime_up
	manager_start gen1
	ino=$(stat -c %i "$MANAGER_SOCK")
	check "relay: a session's client reaches the user's manager, descriptors pass both ways" relay_reaches_manager
	check "relay: the manager's peer is a process of the user's, not root" relay_as_user
	check "relay: the host keeps the manager's socket, no mount and no relay process is left" relay_host_untouched "$ino"
	check "relay: with user_manager=off the client fails with 'No data available'" relay_off_fails
	runtime_down
}

# --- the socket appears after the session opened, and is replaced ------------

# A session that calls the manager, waits for $W/restarted, and calls again.
relay_session_two_calls() {
	user_session pu-alice "${AS_ALICE[@]}" /bin/sh -c "$PY $MANAGER_PY call $MANAGER_SOCK 20; \
while [ ! -e $W/restarted ]; do sleep 0.1; done; $PY $MANAGER_PY call $MANAGER_SOCK 20"
}

t_relay_late_socket() {
	local out=$W/late.out pid
	: >"$W/manager.log"
	rm -f "$W/restarted"
	# No runtime directory yet: the user has not logged in anywhere.
	relay_session_two_calls >"$out" 2>&1 &
	pid=$!
	check "relay: the session runs before the user's runtime directory exists" wait_until 30 helper_exists
	runtime_up
	manager_start gen2
	check "relay: a manager that starts after login is reached" \
		wait_until 20 grep -q '^ok peer-pid=1 reply=gen2 fd=from-gen2$' "$out"
	# A restart: the old socket is unlinked, a new one bound.
	manager_stop
	manager_start gen3
	touch "$W/restarted"
	wait "$pid"
	check "relay: after the manager restarts, the same session reaches the new one" \
		has_line "$(cat "$out")" '^ok peer-pid=1 reply=gen3 fd=from-gen3$'
	check "relay: nothing is left" wait_until 10 no_helpers
	runtime_down
}

# --- what the user can make the helper spend -----------------------------------

# hold_inotify: as alice, make inotify instances until the kernel refuses
# one (her fs.inotify.max_user_instances), print how many, and keep them
# until killed (exec: killing the background job ends the holder).
hold_inotify() {
	exec "${AS_ALICE[@]}" "$PY" -c '
import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)
n = 0
while libc.inotify_init1(os.O_CLOEXEC) >= 0:
    n += 1
err = ctypes.get_errno()
print("%d, then %s" % (n, os.strerror(err)), flush=True)
signal.pause()
'
}

# While waiting for the manager's socket the helper watches alice's runtime
# directory with inotify. The instance must be charged to her, not to root:
# root's 128 are shared by every root daemon, and alice chooses when the
# helper waits (she moves her manager's socket away) and how many sessions
# she opens. With all of her own instances in use, the helper's must fail.
t_relay_inotify_charged() {
	local mark holder session
	runtime_up # systemd/ but no socket: the helper waits in it, watching
	rm -f "$W/inotify.held" "$W/release"
	hold_inotify >"$W/inotify.held" &
	holder=$!
	wait_until 30 test -s "$W/inotify.held" || fatal "alice's inotify instances were not taken"
	mark=$(syslog_mark)
	user_session pu-alice /bin/sh -c "while [ ! -e $W/release ]; do sleep 0.1; done" >/dev/null &
	session=$!
	check "relay: with alice's inotify instances used up ($(cat "$W/inotify.held")), the helper's watch fails: it is charged to her, not root" \
		wait_until 10 syslog_has "$mark" "cannot watch for the user manager's socket"
	touch "$W/release"
	wait "$session"
	kill "$holder" 2>/dev/null
	wait "$holder" 2>/dev/null
	check "relay: nothing is left" wait_until 10 no_helpers
	runtime_down
}

# fuse_silent DIR: a FUSE file system at DIR whose daemon never answers, as
# alice's own daemon can once fusermount3 (setuid) has mounted it for her on
# a directory of hers, with allow_other (which /etc/fuse.conf allows users
# with user_allow_other; without it root's requests fail at once). Mounted in
# the session's mount namespace, where fusermount3 would mount it; the mount
# lasts as long as the daemon.
fuse_silent() {
	[ -e /dev/fuse ] || mknod -m 0600 /dev/fuse c 10 229
	in_session_ns "$PY" -c '
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open("/dev/fuse", os.O_RDWR)
opts = "fd=%d,rootmode=40000,user_id=4101,group_id=4101,allow_other" % fd
if libc.mount(b"pu-fuse", sys.argv[1].encode(), b"fuse", 0, opts.encode()) != 0:
    sys.exit("mount: " + os.strerror(ctypes.get_errno()))
print("mounted", flush=True)
time.sleep(600)
' "$1"
}

helper_watches() {
	local f
	for f in /proc/"$(helpers_alive | head -n 1)"/fd/*; do
		[ "$(readlink "$f")" = anon_inode:inotify ] && return 0
	done
	return 1
}

helper_not_stuck() {
	local h state
	h=$(helpers_alive | head -n 1)
	state=$(sed -n 's/^State:\t//p' "/proc/$h/status")
	[[ $state != D* ]] || { echo "helper $h: $state, in $(cat "/proc/$h/wchan")"; return 1; }
}

# A FUSE mount of alice's at /run/user/UID/systemd wakes the helper (a
# mount change) and the relay looks there again. It must not ask that file
# system anything: a daemon that never answers would keep PID 1 in
# uninterruptible sleep, and the session would end only when its host
# kills the helper.
t_relay_fuse_mount() {
	local session fusep out=$W/fuse.session
	if ! grep -qw fuse /proc/filesystems; then
		skip "relay: no FUSE in this kernel"
		return
	fi
	: >"$W/manager.log"
	runtime_up
	manager_start gen1
	rm -f "$W/release" "$W/fuse.out"
	user_session pu-alice /bin/sh -c "while [ ! -e $W/release ]; do sleep 0.1; done" >"$out" &
	session=$!
	wait_until 30 session_covered || fatal "the relay did not cover the manager's socket"
	fuse_silent "$ALICE_RUNTIME/systemd" >"$W/fuse.out" 2>&1 &
	fusep=$!
	wait_until 30 grep -q mounted "$W/fuse.out" || fatal "FUSE mount: $(cat "$W/fuse.out")"
	# The daemon never answered INIT, so the kernel's cached owner of the
	# mount's root is root: the relay refuses it as not alice's and waits
	# in the runtime directory (an inotify watch: the sign that it looked).
	check "relay: the helper looked at the user's FUSE mount without asking it, and waits" \
		wait_until 10 helper_watches
	check "relay: the helper is not stuck in the user's FUSE file system" helper_not_stuck
	touch "$W/release"
	wait "$session"
	check "relay: the session still closes cleanly" has_line "$(cat "$out")" "close=PAM_SUCCESS"
	kill "$fusep" 2>/dev/null
	wait "$fusep" 2>/dev/null
	check "relay: nothing is left" wait_until 10 no_helpers
	runtime_down
}

# --- what the relay refuses ---------------------------------------------------

# in_session_ns ARGS...: run ARGS in the mount and PID namespaces of the
# (only) running session, as root.
in_session_ns() { nsenter -t "$(helpers_alive | head -n 1)" -m -p "$@"; }

session_covered() { in_session_ns findmnt -n "$MANAGER_SOCK" >/dev/null; }

# stash_is_bare: the mount namespace the helper keeps its socket in (a
# descriptor other than its own namespace) holds nothing but a tmpfs with
# that socket: no copy of the host's mounts, which it would keep busy.
stash_is_bare() {
	local h f own link out=
	h=$(helpers_alive | head -n 1)
	own=$(readlink "/proc/$h/ns/mnt")
	for f in /proc/"$h"/fd/*; do
		link=$(readlink "$f")
		[[ $link == mnt:* && $link != "$own" ]] || continue
		out+=$("$PY" -c '
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(sys.argv[1], os.O_RDONLY)
if libc.setns(fd, 0x00020000) != 0:
    sys.exit("setns: " + os.strerror(ctypes.get_errno()))
os.chdir("/")
print(sorted(os.listdir("/")))' "$f" 2>&1)
	done
	echo "the stash's root lists: ${out:-(no stash)}"
	[ "$out" = "['manager']" ]
}

relay_refuses_root() {
	local out
	out=$(in_session_ns "$PY" "$MANAGER_PY" call "$MANAGER_SOCK")
	echo "$out"
	has_line "$out" '^closed by peer' && ! grep -q '^conn uid=0' "$W/manager.log"
}

relay_refuses_bob() {
	local out
	out=$(in_session_ns setpriv --reuid=4102 --regid=4101 --clear-groups "$PY" "$MANAGER_PY" call "$MANAGER_SOCK")
	echo "$out"
	has_line "$out" '^connect: Permission denied$'
}

# planted_not_covered: a symlink alice planted where the socket goes is
# not followed: nothing in the session is mounted over its target.
planted_not_covered() {
	local out
	out=$(in_session_ns findmnt -n -o TARGET /etc/hostname "$MANAGER_SOCK" 2>&1)
	[ -z "$out" ] && return 0
	echo "mounted in the session: $out"
	return 1
}

t_relay_refuses() {
	local pid
	: >"$W/manager.log"
	runtime_up
	# Alice plants a symlink to a file of root's instead of a socket.
	as_alice ln -s /etc/hostname "$MANAGER_SOCK"
	rm -f "$W/done"
	user_session pu-alice /bin/sh -c "while [ ! -e $W/done ]; do sleep 0.1; done" >/dev/null &
	pid=$!
	check "relay: a session runs" wait_until 30 helper_exists
	check "relay: a symlink planted as the socket is not covered, nor its target" planted_not_covered
	as_alice rm "$MANAGER_SOCK"
	manager_start gen4
	check "relay: the socket made in place of the symlink is covered" wait_until 30 session_covered
	check "relay: the helper's stash namespace holds only its socket, no copy of the host's mounts" stash_is_bare
	check "relay: root's connection through the relay is closed before it reaches the manager" relay_refuses_root
	check "relay: another user cannot reach the relay" relay_refuses_bob
	touch "$W/done"
	wait "$pid"
	check "relay: nothing is left" wait_until 10 no_helpers
	runtime_down
}

# --- per-user namespaces ---------------------------------------------------------

t_relay_scope_user() {
	local pid out
	: >"$W/manager.log"
	rm -f "$W/done"
	runtime_up
	manager_start gen5
	pamd_write "scope=user"
	user_session pu-alice /bin/sh -c "while [ ! -e $W/done ]; do sleep 0.1; done" >/dev/null &
	pid=$!
	check "relay, scope=user: the first session runs" wait_until 30 helper_exists
	out=$(user_session pu-alice "${AS_ALICE[@]}" /bin/sh -c "$PY $MANAGER_PY call $MANAGER_SOCK; ps -e -o args")
	check "relay, scope=user: a second session joins and reaches the manager" \
		has_line "$out" '^ok peer-pid=1 reply=gen5 fd=from-gen5$'
	check "relay, scope=user: the second session is in the first one's namespace" \
		has_line "$out" '^/bin/sh -c while \[ ! -e '
	touch "$W/done"
	wait "$pid"
	pamd_write ""
	check "relay, scope=user: nothing is left" wait_until 10 no_helpers
	runtime_down
}

# shellcheck shell=bash
# lib.sh - the private test world of run-tests.sh, what its tests observe
# in it, and what more than one test file uses: sessions, processes,
# assertions and a lock to hold sessions on. TAP output comes from tap.sh,
# which this file sources.
#
# Everything that changes mounts happens inside the private mount namespace
# that run-tests.sh creates with unshare -m: /etc/pam.d, /etc/passwd,
# /etc/group, /etc/shadow, /etc/sudoers and /dev are replaced only there,
# so the machine's own files and its /proc are never touched.

# shellcheck source=test/tap.sh
. "$TEST_DIR"/tap.sh

# --- the private world ---------------------------------------------------

# world_setup DIR: build the test world under DIR and mount it in place.
world_setup() {
	W=$1
	mkdir -p "$W"/etc "$W"/home "$W"/dev

	world_users
	world_dev
	world_pamd
	# A private /run: per-user namespaces keep their rendezvous in
	# /run/pam_unshare, which must not be the machine's.
	mount -t tmpfs -o mode=755 testrun /run

	# Make / shared, as systemd does, so that a module that forgets to
	# make its namespace a slave would unmount /proc here too; and give
	# /proc a submount where systemd keeps binfmt_misc.
	mount --make-rshared /
	if ! findmnt -n /proc/sys/fs/binfmt_misc >/dev/null; then
		mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null ||
			mount -t tmpfs binfmt_stand_in /proc/sys/fs/binfmt_misc
	fi
}

# Test users: pu-alice and pu-bob (group pu-students), pu-carol (group
# pu-staff), and pu-u01 to pu-u20 (UIDs 4201-4220, group pu-many) for
# many users at once.
world_users() {
	local f i
	for f in passwd group shadow; do
		cp -p /etc/$f "$W"/etc/$f
	done
	for i in $(seq -w 1 20); do
		echo "pu-u$i:x:$((4200 + 10#$i)):4200::/:/bin/sh" >>"$W"/etc/passwd
		echo "pu-u$i:*:19000:0:99999:7:::" >>"$W"/etc/shadow
	done
	echo "pu-many:x:4200:" >>"$W"/etc/group
	cat >>"$W"/etc/passwd <<-EOF
		pu-alice:x:4101:4101::$W/home/pu-alice:/bin/sh
		pu-bob:x:4102:4101::$W/home/pu-bob:/bin/sh
		pu-carol:x:4103:4103::$W/home/pu-carol:/bin/sh
	EOF
	cat >>"$W"/etc/group <<-EOF
		pu-students:x:4101:pu-alice,pu-bob
		pu-staff:x:4103:pu-carol
	EOF
	cat >>"$W"/etc/shadow <<-EOF
		pu-alice:*:19000:0:99999:7:::
		pu-bob:*:19000:0:99999:7:::
		pu-carol:*:19000:0:99999:7:::
	EOF
	for f in pu-alice pu-bob pu-carol; do
		mkdir -p "$W/home/$f"
		chown "$(grep "^$f:" "$W"/etc/passwd | cut -d: -f3,4)" "$W/home/$f"
	done
	chmod 755 "$W" "$W"/home
	for f in passwd group shadow; do
		mount --bind "$W"/etc/$f /etc/$f
	done
}

# A private /dev whose /dev/log is a socket the tests read, so each test can
# assert the syslog lines the module writes.
world_dev() {
	local node
	mkdir -p "$W"/olddev
	mount --rbind /dev "$W"/olddev
	mount -t tmpfs -o mode=755 testdev /dev
	for node in null zero full random urandom tty ptmx; do
		[ -e "$W/olddev/$node" ] && cp -a "$W/olddev/$node" /dev/
	done
	mkdir -p /dev/pts /dev/shm
	mount --rbind "$W"/olddev/pts /dev/pts
	mount --rbind "$W"/olddev/shm /dev/shm
	ln -s /proc/self/fd /dev/fd
	ln -s /proc/self/fd/0 /dev/stdin
	ln -s /proc/self/fd/1 /dev/stdout
	ln -s /proc/self/fd/2 /dev/stderr
	SYSLOG=$W/syslog
	: >"$SYSLOG"
	python3 "$TEST_DIR"/syslog-catcher.py /dev/log "$SYSLOG" &
	SYSLOG_PID=$!
	wait_until 30 test -S /dev/log || fatal "the syslog catcher did not create /dev/log"
}

# The PAM services the tests use. $MODULE_ARGS is appended to every
# pam_unshare line; pamd_write rewrites them with other arguments.
world_pamd() {
	mkdir -p "$W"/pam.d
	cp -a /etc/pam.d/. "$W"/pam.d/
	pamd_write ""
	mount --bind "$W"/pam.d /etc/pam.d
	printf 'root ALL=(ALL:ALL) NOPASSWD: ALL\nDefaults !lecture\n' >"$W"/sudoers
	chmod 0440 "$W"/sudoers
	mount --bind "$W"/sudoers /etc/sudoers
	if [ -d /etc/sudoers.d ]; then
		mkdir -p "$W"/sudoers.d
		mount --bind "$W"/sudoers.d /etc/sudoers.d
	fi
}

# pamd_write EXTRA_ARGS: (re)write su, su-l, sudo and the pamhost service,
# each ending with the pam_unshare line.
pamd_write() {
	local line="session required $MODULE helper=$HELPER $1"
	local svc
	printf 'account required pam_permit.so\nsession required pam_unix.so\n%s\n' "$line" >"$W/pam.d/sshd"
	for svc in su su-l sudo; do
		cat >"$W/pam.d/$svc" <<-EOF
			auth sufficient pam_rootok.so
			auth required pam_deny.so
			account required pam_permit.so
			session required pam_unix.so
			$line
		EOF
	done
	# pam_permit first: with exempt users pam_unshare returns PAM_IGNORE,
	# and a stack of nothing but ignores fails.
	printf 'session optional pam_permit.so\n%s\n' "$line" >"$W/pam.d/pamhost"
}

# world_sshd: an sshd on 127.0.0.1:2222 that uses /etc/pam.d/sshd, with key
# login for pu-alice. Sets SSH to the client command. Returns 1 if sshd is
# not installed.
world_sshd() {
	[ -x /usr/sbin/sshd ] || return 1
	mkdir -p "$W"/ssh /run/sshd "$W"/home/pu-alice/.ssh
	ssh-keygen -q -t ed25519 -N '' -f "$W"/ssh/hostkey
	ssh-keygen -q -t ed25519 -N '' -f "$W"/ssh/userkey
	cp "$W"/ssh/userkey.pub "$W"/home/pu-alice/.ssh/authorized_keys
	chown -R pu-alice "$W"/home/pu-alice/.ssh
	# StrictModes is off because the test homes live below /tmp.
	cat >"$W"/ssh/sshd_config <<-EOF
		Port 2222
		ListenAddress 127.0.0.1
		HostKey $W/ssh/hostkey
		UsePAM yes
		StrictModes no
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		PidFile $W/ssh/sshd.pid
	EOF
	/usr/sbin/sshd -f "$W"/ssh/sshd_config -E "$W"/ssh/log || return 1
	# shellcheck disable=SC2034 # used by sshd.sh and scope-user.sh
	SSH=(ssh -i "$W"/ssh/userkey -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
		-o LogLevel=ERROR -o BatchMode=yes -p 2222 pu-alice@127.0.0.1)
	wait_until 30 test -s "$W"/ssh/sshd.pid
}

world_teardown() {
	[ -s "$W"/ssh/sshd.pid ] && kill "$(cat "$W"/ssh/sshd.pid)" 2>/dev/null
	[ -n "${SYSLOG_PID:-}" ] && kill "$SYSLOG_PID" 2>/dev/null
	wait 2>/dev/null
	umount -l "$W"/olddev 2>/dev/null
	rm -rf "$W"
}

# --- observations ------------------------------------------------------

# pidns_others: processes of this machine that live in another PID
# namespace than ours, one "PID COMM" per line.
pidns_others() {
	local own p ns
	own=$(readlink /proc/self/ns/pid)
	for p in /proc/[0-9]*; do
		ns=$(readlink "$p"/ns/pid 2>/dev/null) || continue
		[ "$ns" = "$own" ] && continue
		echo "${p#/proc/} $(cat "$p"/comm 2>/dev/null)"
	done
}

# helpers_alive: host PIDs of running pam_unshare helpers.
helpers_alive() {
	pgrep -x "$HELPER_COMM" || true
}

no_helpers() { [ -z "$(helpers_alive)" ]; }
helper_exists() { [ -n "$(helpers_alive)" ]; }

# leader_started ARGS: a process with exactly this command line runs (the
# tests give each session leader a unique one).
leader_started() { pgrep -x -f "$1" >/dev/null; }
no_other_pidns() { [ -z "$(pidns_others)" ]; }

# host_proc_intact: /proc here is still the host's proc, with binfmt_misc.
host_proc_intact() {
	[ "$(stat -f -c %T /proc)" = proc ] &&
		readlink /proc/self >/dev/null &&
		findmnt -n /proc/sys/fs/binfmt_misc >/dev/null
}

# syslog_mark: the current end of the test syslog, for syslog_since.
syslog_mark() { stat -c %s "$SYSLOG"; }
# syslog_since MARK: the syslog lines written after MARK (a byte count).
syslog_since() { tail -c +"$(($1 + 1))" "$SYSLOG"; }

# syslog_count MARK PATTERN: how many syslog lines since MARK match PATTERN
# (a basic regular expression, as grep takes it).
syslog_count() { syslog_since "$1" | grep -c -- "$2"; }

# syslog_has MARK PATTERN: a test. A syslog line since MARK matches PATTERN.
# The catcher writes each line a moment after the module sent it, so this
# waits up to 2 s for it; on failure it prints the syslog since MARK.
syslog_has() { syslog_has_n "$1" 1+ "$2"; }

# syslog_has_n MARK COUNT PATTERN: a test. Exactly COUNT lines since MARK
# match PATTERN (at least N for COUNT "N+"). Waits as syslog_has does.
syslog_has_n() {
	local mark=$1 count=${2%+} pattern=$3 got
	wait_until 30 syslog_count_at_least "$mark" "$count" "$pattern"
	got=$(syslog_count "$mark" "$pattern")
	if [ "$got" -eq "$count" ] || { [ "$2" = "$count+" ] && [ "$got" -gt "$count" ]; }; then
		return 0
	fi
	echo "want $2 syslog lines matching: $pattern (got $got)"
	echo "syslog since the mark:"
	syslog_since "$mark"
	return 1
}
syslog_count_at_least() { [ "$(syslog_count "$1" "$3")" -ge "$2" ]; }

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
# as CMD "sleep SECONDS.I >/dev/null 2>&1 & sleep 1; ps -e -o args=" (the
# session's end kills the sleep; its output is closed so that ssh does not
# wait for it). Prints how many sessions saw another session's sleep, or
# not their own (a failed session sees nothing).
concurrent_crosstalk() {
	local n=$1 secs=$2 d i bad=0 pids=()
	shift 2
	d=$(mktemp -d)
	for i in $(seq "$n"); do
		"$@" "sleep $secs.$i >/dev/null 2>&1 & sleep 1; ps -e -o args=" >"$d/$i" 2>&1 &
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

# hold_lock DIR: make DIR/lock, which the test users can open, and hold it
# exclusively on descriptor HOLD_FD until release_lock: a session that runs
# `flock -s DIR/lock true` waits until then, with no polling and no fixed
# time. Sessions are started with {HOLD_FD}<&- so that they do not hold the
# lock's descriptor too.
HOLD_FD=
hold_lock() {
	chmod 755 "$1"
	: >"$1/lock"
	chmod 644 "$1/lock"
	exec {HOLD_FD}<"$1/lock"
	flock -x "$HOLD_FD"
}
release_lock() {
	flock -u "$HOLD_FD"
	exec {HOLD_FD}<&-
}

# --- what tests share: sessions, processes, assertions ---------------------
#
# Each assertion prints what it saw.

# shellcheck disable=SC2034 # for the test files
PU=("$BUILD"/pam-unshare)
# shellcheck disable=SC2034
PY=/usr/bin/python3

# user_session USER ARGS...: a pamhost session of USER running ARGS (an
# absolute command); pamhost's report and the command's output on stdout.
user_session() {
	local u=$1
	shift
	"$PAMHOST" -c /etc/pam.d -s pamhost -u "$u" -- "$@" 2>&1
}

# as_alice ARGS...: run ARGS as pu-alice without a PAM session.
as_alice() { setpriv --reuid=4101 --regid=4101 --init-groups "$@"; }

helper_count() { helpers_alive | grep -c .; }
runs() { pgrep -f "^$1\$" >/dev/null; }
gone() { ! runs "$1"; }

# has_line TEXT REGEX: a line of TEXT matches REGEX (extended).
has_line() {
	grep -Eq -- "$2" <<<"$1" && return 0
	echo "no line matches: $2"
	echo "$1"
	return 1
}

# helpers_are N: exactly N helpers run.
helpers_are() {
	[ "$(helper_count)" -eq "$1" ] && return 0
	echo "want $1 helpers; running:"
	pgrep -a -x pam_unshare
	return 1
}

# all_gone: no helper is left within 10 s (and so no per-user namespace).
all_gone() {
	wait_until 10 no_helpers && return 0
	echo "helpers left:"
	ps -eo pid,ppid,args
	return 1
}

# still_runs ARGS / ends ARGS: a process with exactly this command line
# runs / is gone within 30 s.
still_runs() {
	runs "$1" && return 0
	echo "not running: $1"
	ps -eo pid,ppid,args
	return 1
}
ends() {
	wait_until 30 gone "$1" && return 0
	echo "still running: $1"
	ps -eo pid,ppid,args
	return 1
}

# opened OUT [N]: pamhost's report shows N (default 1) sessions that opened
# and closed with PAM_SUCCESS and whose command exited 0.
opened() {
	echo "$1"
	[ "$(grep -c 'open=PAM_SUCCESS close=PAM_SUCCESS child=0' <<<"$1")" -eq "${2:-1}" ]
}

# refused OUT: pamhost's report shows a refused open.
refused() {
	echo "$1"
	grep -q 'open=PAM_SYSTEM_ERR' <<<"$1"
}

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
	wait_until 10 no_other_pidns || { fail "left in another PID namespace: $(pidns_others)"; return 1; }
	host_proc_intact || fail "the host's /proc or binfmt_misc changed"
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

# sleep_gone ARG: no "sleep ARG" runs (within 30 s).
sleep_gone() {
	wait_until 30 sh -c "! pgrep -f '^sleep $1' >/dev/null" || { fail "still running: $(pgrep -a -f "^sleep $1")"; return 1; }
}

# isolated CMD...: CMD's ps -e -o pid=,comm= shows the helper as PID 1.
isolated() { shows "^ *1 $HELPER_COMM\$" "$@"; }

# no_session_left: no helper, nothing in another PID namespace, host /proc
# intact, right now.
no_session_left() {
	no_helpers || { fail "helpers left: $(helpers_alive)"; return 1; }
	no_other_pidns || { fail "left in another PID namespace: $(pidns_others)"; return 1; }
	host_proc_intact || fail "the host's /proc or binfmt_misc changed"
}

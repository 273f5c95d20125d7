# shellcheck shell=bash
# The host-wide scenarios, sourced by scenarios.sh: user code that runs
# without any PAM session (a system service with User=, a root master with
# per-user workers, a transient unit root starts for a user, routes that
# skip PAM), doctor's live check (pam-unshare doctor --host-wide) and the
# unit guard (pam-unshare enable --unit). bob and alice hold markers in
# isolated ssh sessions; a door is a process that finds another user's
# marker in its /proc. Each check is made with the door open (the check
# must see it) and closed.
# tmp, T, CLI and the TAP and wait helpers come from scenarios.sh.
# shellcheck disable=SC2154,SC2153

HW_MARK=pu$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')hw
HW_DIR=/tmp/pu-hw
HW_UNITS="pu-hw-alice.service pu-hw-workers.service pu-hw-open.service"
mkdir -p "$HW_DIR"
chmod 1777 "$HW_DIR"

# ---- markers ------------------------------------------------------------------

hw_marker_running() { pgrep -u "$1" -f "^$HW_MARK-$1" >/dev/null; }

# hw_markers_up: alice and bob each hold "$HW_MARK-USER" in the command
# line of an isolated ssh session (once per run).
hw_markers_up() {
	local u
	for u in alice bob; do
		hw_marker_running "$u" && continue
		# shellcheck disable=SC2029 # the marker is expanded here on purpose
		ssh "$u@127.0.0.1" "exec -a $HW_MARK-$u sleep 2000" </dev/null >/dev/null 2>&1 &
		wait_until 60 hw_marker_running "$u" || { fail "$u's marker did not start"; return 1; }
		wait_until 30 has_helper_for sshd "$u" || { fail "$u's ssh session has no helper"; return 1; }
	done
}

# hw_doctor: doctor --host-wide, output in $tmp/hw-doctor, exit status in
# HW_RC; the output is shown.
hw_doctor() {
	HW_RC=0
	"$CLI" doctor --host-wide >"$tmp/hw-doctor" 2>&1 || HW_RC=$?
	echo "--- doctor --host-wide (exit $HW_RC):"
	cat "$tmp/hw-doctor"
}

# hw_save NAME [FILE]: keep FILE (default: doctor's last output) as
# out/hostwide-NAME.txt, for the record of a run.
hw_save() { cp "${2:-$tmp/hw-doctor}" "$VM_OUT/hostwide-$1.txt" 2>/dev/null || true; }

# hw_doctor_names LINE: doctor's last output has a ✗ line starting with LINE.
hw_doctor_names() { grep -q "^✗ $1" "$tmp/hw-doctor"; }

# hw_sees FILE USER: FILE (a ps -eo args listing) has USER's marker.
hw_sees() { grep -q "^$HW_MARK-$2" "$1"; }

# ---- a system service with User=alice ------------------------------------------------

# It writes what ps shows it once at start, then stays, so doctor finds it.
hw_alice_unit() {
	cat >/etc/systemd/system/pu-hw-alice.service <<EOF
[Service]
User=alice
ExecStart=/bin/sh -c 'ps -eo args >$HW_DIR/alice.tmp; mv $HW_DIR/alice.tmp $HW_DIR/alice.ps; exec sleep infinity'
EOF
	systemctl daemon-reload
}

# hw_restart_listing UNIT FILE: (re)start UNIT and wait for its new FILE.
hw_restart_listing() {
	rm -f "$2"
	systemctl restart "$1" || { fail "systemctl restart $1 failed"; return 1; }
	wait_until 60 test -s "$2" || { fail "$1 wrote no $2"; systemctl status --no-pager "$1"; return 1; }
}

hw_service_open() {
	hw_alice_unit
	hw_restart_listing pu-hw-alice.service "$HW_DIR/alice.ps" || return 1
	hw_sees "$HW_DIR/alice.ps" bob || { fail "the service does not see bob's marker with the door open"; cat "$HW_DIR/alice.ps"; return 1; }
	hw_doctor
	[ "$HW_RC" = 1 ] || { fail "doctor exited $HW_RC"; return 1; }
	hw_doctor_names "live unit pu-hw-alice.service: 1 process(es) of alice" || { fail "doctor does not name the unit"; return 1; }
	grep -q "fix: pam-unshare enable --unit pu-hw-alice.service" "$tmp/hw-doctor" || { fail "doctor gives no fix"; return 1; }
	hw_save service-before
	hw_save service-ps-before "$HW_DIR/alice.ps"
}

hw_service_closed() {
	"$CLI" enable --unit pu-hw-alice.service || { fail "enable --unit failed"; return 1; }
	[ "$(systemctl show -p ProtectProc --value pu-hw-alice.service)" = invisible ] || { fail "ProtectProc not loaded"; return 1; }
	# Not restarted by enable: doctor says so until the unit restarts.
	hw_doctor
	grep -q "systemctl restart pu-hw-alice.service" "$tmp/hw-doctor" || { fail "doctor does not ask for the restart"; return 1; }
	hw_restart_listing pu-hw-alice.service "$HW_DIR/alice.ps" || return 1
	echo "--- what the service sees now:"
	cat "$HW_DIR/alice.ps"
	! hw_sees "$HW_DIR/alice.ps" bob || { fail "the guarded service still sees bob's marker"; return 1; }
	grep -q "^ps -eo args" "$HW_DIR/alice.ps" || { fail "the service does not see its own ps"; return 1; }
	hw_save service-ps-after "$HW_DIR/alice.ps"
	hw_doctor
	hw_save service-after
	! grep -q "pu-hw-alice.service" "$tmp/hw-doctor" || { fail "doctor still names the unit"; return 1; }
}

sc_hostwide_service() {
	check "hostwide: alice and bob hold markers in isolated ssh sessions" hw_markers_up
	check "hostwide service User=alice: sees bob's marker, doctor names the unit and exits 1" hw_service_open
	check "hostwide service User=alice: after enable --unit and a restart, bob's marker is hidden and doctor no longer names it" hw_service_closed
	systemctl stop pu-hw-alice.service
}

# ---- a root master that forks per-user workers (PHP-FPM's shape) -------------------

# The master stays root; each worker setuid()s to its user without exec, as
# a PHP-FPM pool does, writes what it sees and what its own ps sees, then
# serves (sleeps). The master writes what it sees too.
hw_workers_unit() {
	cat >"$HW_DIR/master.pl" <<'EOF'
use strict;
use POSIX ();
my $dir = shift;
for my $user (@ARGV) {
	my ($uid, $gid) = (getpwnam($user))[2, 3];
	defined(my $pid = fork()) or die "fork: $!";
	next if $pid;
	$0 = "pu-hw-worker $user";
	POSIX::setgid($gid) or die "setgid: $!";
	$) = "$gid $gid";
	POSIX::setuid($uid) or die "setuid: $!";
	$< == $uid && $> == $uid or die "still uid $<";
	system("ps -eo args >$dir/worker-$user.tmp && mv $dir/worker-$user.tmp $dir/worker-$user.ps");
	sleep;
	exit 0;
}
$0 = "pu-hw-master";
system("ps -eo args >$dir/master.tmp && mv $dir/master.tmp $dir/master.ps");
1 while wait() > 0;
EOF
	# hw_guard_cost restarts it ten times in a row.
	cat >/etc/systemd/system/pu-hw-workers.service <<EOF
[Unit]
StartLimitIntervalSec=0
[Service]
ExecStart=/usr/bin/perl $HW_DIR/master.pl $HW_DIR alice carol
EOF
	systemctl daemon-reload
}

hw_workers_listed() { [ -s "$HW_DIR/worker-alice.ps" ] && [ -s "$HW_DIR/worker-carol.ps" ] && [ -s "$HW_DIR/master.ps" ]; }

hw_workers_restart() {
	rm -f "$HW_DIR"/worker-*.ps "$HW_DIR/master.ps"
	systemctl restart pu-hw-workers.service || { fail "restart failed"; return 1; }
	wait_until 60 hw_workers_listed || { fail "the workers wrote nothing"; systemctl status --no-pager pu-hw-workers.service; return 1; }
}

hw_workers_open() {
	hw_workers_unit
	hw_workers_restart || return 1
	hw_sees "$HW_DIR/worker-alice.ps" bob || { fail "alice's worker does not see bob's marker with the door open"; return 1; }
	grep -q "^pu-hw-worker carol" "$HW_DIR/worker-alice.ps" || { fail "alice's worker does not see carol's"; return 1; }
	hw_doctor
	[ "$HW_RC" = 1 ] || { fail "doctor exited $HW_RC"; return 1; }
	hw_doctor_names "live unit pu-hw-workers.service: 2 process(es) of alice, carol" || { fail "doctor does not name the unit"; return 1; }
	hw_save workers-before
	hw_save workers-alice-ps-before "$HW_DIR/worker-alice.ps"
}

hw_workers_closed() {
	rm -f "$HW_DIR"/worker-*.ps "$HW_DIR/master.ps"
	"$CLI" enable --unit --restart pu-hw-workers.service || { fail "enable --unit --restart failed"; return 1; }
	wait_until 60 hw_workers_listed || { fail "the workers wrote nothing after the restart"; return 1; }
	local u other
	for u in alice carol; do
		other=carol
		[ "$u" = carol ] && other=alice
		echo "--- what $u's worker sees:"
		cat "$HW_DIR/worker-$u.ps"
		! hw_sees "$HW_DIR/worker-$u.ps" bob || { fail "$u's worker still sees bob's marker"; return 1; }
		! grep -q "^pu-hw-worker $other" "$HW_DIR/worker-$u.ps" || { fail "$u's worker sees $other's worker"; return 1; }
		grep -q "^ps -eo args" "$HW_DIR/worker-$u.ps" || { fail "$u's worker does not see its own ps"; return 1; }
		echo "$u's worker sees itself: $(grep -c "^pu-hw-worker $u" "$HW_DIR/worker-$u.ps") line(s) (a setuid() without exec makes it non-dumpable)"
	done
	# The root master still sees everything.
	hw_sees "$HW_DIR/master.ps" bob || { fail "the root master no longer sees bob's marker"; return 1; }
	grep -q "^pu-hw-worker alice" "$HW_DIR/master.ps" || { fail "the master does not see its workers"; return 1; }
	hw_save workers-alice-ps-after "$HW_DIR/worker-alice.ps"
	hw_save workers-master-ps-after "$HW_DIR/master.ps"
	hw_doctor
	hw_save workers-after
	! grep -q "pu-hw-workers.service" "$tmp/hw-doctor" || { fail "doctor still names the unit"; return 1; }
}

# hw_guard_cost: how long a restart of the stand-in takes with and without
# the guard (five each, milliseconds until the workers have written).
hw_guard_cost() {
	local _ t0 on="" off=""
	for _ in 1 2 3 4 5; do
		t0=$(date +%s%N)
		hw_workers_restart >/dev/null || return 1
		on="$on $((($(date +%s%N) - t0) / 1000000))"
	done
	"$CLI" disable --unit pu-hw-workers.service >/dev/null 2>&1
	for _ in 1 2 3 4 5; do
		t0=$(date +%s%N)
		hw_workers_restart >/dev/null || return 1
		off="$off $((($(date +%s%N) - t0) / 1000000))"
	done
	echo "master + 2 workers, restart until the workers have listed /proc, ms: guard on:$on; guard off:$off"
}

sc_hostwide_workers() {
	check "hostwide: alice and bob hold markers in isolated ssh sessions" hw_markers_up
	check "hostwide root master, workers as alice and carol: they see bob and each other, doctor names the unit" hw_workers_open
	check "hostwide root master with workers: after enable --unit --restart each worker sees only its own user, the master everything" hw_workers_closed
	hw_guard_cost >"$tmp/hw-cost" 2>&1
	diag "$(cat "$tmp/hw-cost")"
	cat "$tmp/hw-cost" >>"$VM_OUT/metrics.txt" 2>/dev/null
	systemctl stop pu-hw-workers.service
}

# ---- a transient unit root starts for bob ------------------------------------------

# hw_alice_lists_job: what any user sees of it (alice, outside any session).
hw_alice_lists_job() {
	runuser -u alice -- systemctl list-units --no-pager --full 'pu-hw-job.service'
	runuser -u alice -- systemctl show -p ExecStart pu-hw-job.service
}

hw_transient() {
	systemd-run --quiet --unit=pu-hw-job --uid=bob /bin/sh -c "sleep 600; : $HW_MARK-transient" ||
		{ fail "systemd-run failed"; return 1; }
	hw_alice_lists_job >"$tmp/hw-job" 2>&1
	echo "--- alice sees:"
	cat "$tmp/hw-job"
	grep -q "$HW_MARK-transient" "$tmp/hw-job" || { fail "alice does not see the command line (measurement changed?)"; return 1; }
	hw_doctor
	hw_doctor_names "transient pu-hw-job.service: runs as bob" || { fail "doctor does not list the transient unit"; return 1; }
	grep -q "ExecStart=.*$HW_MARK-transient" "$tmp/hw-doctor" || { fail "doctor does not show what is exposed"; return 1; }
	hw_save transient
	hw_save transient-alice-sees "$tmp/hw-job"
	systemctl stop pu-hw-job.service
	hw_doctor
	! grep -q "pu-hw-job" "$tmp/hw-doctor" || { fail "doctor still lists it after stop"; return 1; }
}

sc_hostwide_transient() {
	check "hostwide transient unit for bob: every user reads its command line, doctor lists it, and not after stop" hw_transient
}

# ---- routes that skip PAM ---------------------------------------------------------

hw_sudo_route() {
	printf 'Defaults>bob !pam_session\n' >/etc/sudoers.d/pu-hw
	chmod 440 /etc/sudoers.d/pu-hw
	visudo -c >/dev/null || { fail "visudo -c rejects the rule"; rm -f /etc/sudoers.d/pu-hw; return 1; }
	# The route in use: root runs a command as bob, no session, host /proc.
	# shellcheck disable=SC2024 # root writes the file, on purpose
	sudo -u bob bash -c "exec -a $HW_MARK-sudo sleep 600" </dev/null >"$tmp/hw-sudo" 2>&1 &
	wait_until 30 pgrep -f "^$HW_MARK-sudo" >/dev/null || { fail "sudo -u bob did not run the command"; cat "$tmp/hw-sudo"; rm -f /etc/sudoers.d/pu-hw; return 1; }
	hw_doctor
	hw_save sudo
	pkill -f "^$HW_MARK-sudo"
	rm -f /etc/sudoers.d/pu-hw
	hw_doctor_names "route sudo: /etc/sudoers.d/pu-hw line 1: Defaults>bob !pam_session" || { fail "doctor does not name the rule"; return 1; }
	grep -A2 "^✗ live .*of bob" "$tmp/hw-doctor" | grep -q "$HW_MARK-sudo" || { fail "the live check does not find bob's sudo command"; return 1; }
	grep -A2 "^✗ live .*of bob" "$tmp/hw-doctor" | grep -q "fix: sudo started these without a PAM session" ||
		{ fail "the live check does not blame sudo"; return 1; }
	hw_doctor
	! grep -q "pu-hw" "$tmp/hw-doctor" || { fail "doctor still names it after removal"; return 1; }
}

hw_sshd_route() {
	# Debian's sshd_config includes sshd_config.d first, and sshd takes the
	# first value it reads.
	printf 'UsePAM no\n' >/etc/ssh/sshd_config.d/pu-hw.conf
	hw_doctor
	hw_save sshd
	rm -f /etc/ssh/sshd_config.d/pu-hw.conf
	hw_doctor_names "route sshd: UsePAM no" || { fail "doctor does not name UsePAM no"; return 1; }
	hw_doctor
	grep -q "^✓ route sshd: UsePAM yes" "$tmp/hw-doctor" || { fail "doctor does not see UsePAM yes again"; return 1; }
}

sc_hostwide_routes() {
	check "hostwide: alice and bob hold markers in isolated ssh sessions" hw_markers_up
	check "hostwide route: a sudoers !pam_session rule, and the command it lets run, are named" hw_sudo_route
	check "hostwide route: UsePAM no in sshd_config is named" hw_sshd_route
}

# ---- every door closed --------------------------------------------------------------

# hw_lookers: PID UID GID of every process in the host's PID namespace
# whose real, effective and saved UIDs are not root. Capabilities are not
# asked: the check runs each view without any (dbus-daemon keeps
# CAP_AUDIT_WRITE as messagebus, and is checked).
hw_lookers() {
	local d pid
	for d in /proc/[0-9]*; do
		pid=${d#/proc/}
		[ "$(readlink "$d/ns/pid" 2>/dev/null)" = "$host_pidns" ] || continue
		awk -v pid="$pid" '
			/^Uid:/ { if ($2 == 0 || $3 == 0 || $4 == 0) bad = 1; uid = $3 }
			/^Gid:/ { gid = $3 }
			END { if (!bad && uid != "") print pid, uid, gid }' "$d/status" 2>/dev/null
	done
}

# hw_oracle: for every such process, list the markers its own view of /proc
# shows it (its mount namespace and root, its uid and gid, no
# capabilities): a marker of another user is a violation. This asks the
# kernel, not doctor.
#
# The one exception, stated and checked here as doctor states it: a user
# manager's "(sd-pam)", which systemd forks before ProtectProc= applies. It
# runs systemd's code, and it is not dumpable (/proc/PID/environ is root's), so its
# user cannot make it list anything.
hw_oracle() {
	local pid uid gid name seen m bad=0 n=0
	while read -r pid uid gid; do
		[ "$pid" = "$BASHPID" ] && continue
		if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "(sd-pam)" ] && [ "$(stat -c %u "/proc/$pid/environ")" = 0 ] &&
			grep -q '/user@[0-9]*\.service/' "/proc/$pid/cgroup" &&
			case $(readlink "/proc/$pid/exe") in /usr/lib/systemd/systemd | /lib/systemd/systemd) true ;; *) false ;; esac then
			echo "pid $pid: (sd-pam) of $(id -nu "$uid"), not dumpable: exempt"
			continue
		fi
		name=$(id -nu "$uid" 2>/dev/null || echo "$uid")
		seen=$(nsenter -t "$pid" -m -r -S "$uid" -G "$gid" -- /bin/sh -c \
			"cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' '\n' | grep -o '^$HW_MARK-[a-z]*'" 2>/dev/null | sort -u)
		n=$((n + 1))
		for m in $seen; do
			[ "$m" = "$HW_MARK-$name" ] && continue
			echo "pid $pid ($name): $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) sees $m ($(awk -F: '{print $3}' "/proc/$pid/cgroup" 2>/dev/null))"
			bad=1
		done
	done < <(hw_lookers)
	echo "checked $n non-root processes"
	return "$bad"
}

hw_open_unit() {
	cat >/etc/systemd/system/pu-hw-open.service <<EOF
[Service]
User=alice
ExecStart=/bin/sleep infinity
EOF
	systemctl daemon-reload
	systemctl restart pu-hw-open.service
}

# hw_guard_units: the units doctor --json says to guard.
hw_guard_units() {
	"$CLI" doctor --host-wide --json | sed -n 's/^ *"guard_unit": "\(.*\)",*$/\1/p' | sort -u
}

hw_all_closed() {
	local units
	# bob's daemon of the door scenarios is an open door of its own.
	! declare -F markers_down >/dev/null || markers_down
	hw_open_unit
	hw_oracle >"$tmp/hw-oracle" && { fail "the whole-host check finds no door with one open"; cat "$tmp/hw-oracle"; return 1; }
	echo "--- one door open, the whole-host check finds:"
	cat "$tmp/hw-oracle"
	grep -q "sees $HW_MARK-bob (/system.slice/pu-hw-open.service)" "$tmp/hw-oracle" || { fail "not the open unit"; return 1; }
	hw_doctor
	hw_save closed-before
	hw_save oracle-before "$tmp/hw-oracle"
	[ "$HW_RC" = 1 ] || { fail "doctor exited $HW_RC with a door open"; return 1; }
	units=$(hw_guard_units)
	echo "--- doctor names the units: $units"
	# shellcheck disable=SC2086 # a list of unit names
	"$CLI" enable --unit --restart $units || { fail "enable --unit --restart failed"; return 1; }
	echo "$units" >"$tmp/hw-guarded"
	hw_doctor
	hw_save closed-after
	[ "$HW_RC" = 0 ] || { fail "doctor --host-wide exited $HW_RC with every door closed"; return 1; }
	! grep -qE '^(✗|!) ' "$tmp/hw-doctor" || { fail "doctor still reports something"; return 1; }
	hw_oracle >"$tmp/hw-oracle" || { fail "the whole-host check finds a door"; cat "$tmp/hw-oracle"; return 1; }
	hw_save oracle-after "$tmp/hw-oracle"
	cat "$tmp/hw-oracle"
	# What still works with the guards on: a login (logind over D-Bus).
	ssh alice@127.0.0.1 true </dev/null || { fail "ssh alice fails with the guards on"; return 1; }
	busctl --no-pager list >/dev/null || { fail "the system bus does not answer"; return 1; }
}

# hw_cleanup: remove the test units and the guards this file installed.
hw_cleanup() {
	local units
	units=$(cat "$tmp/hw-guarded" 2>/dev/null)
	# shellcheck disable=SC2086
	systemctl stop $HW_UNITS pu-hw-job.service 2>/dev/null
	# shellcheck disable=SC2086
	[ -z "$units" ] || "$CLI" disable --unit --restart $units
	"$CLI" disable --unit pu-hw-alice.service pu-hw-workers.service pu-hw-open.service >/dev/null
	for u in $HW_UNITS; do rm -f "/etc/systemd/system/$u"; done
	systemctl daemon-reload
	pkill -f "^$HW_MARK-"
	return 0
}

# hw_sdpam_closed: from her own user manager (guarded), alice cannot use
# her manager's (sd-pam), which keeps the host's /proc, to list processes:
# it is not dumpable, so /proc/PID/root is closed to her.
hw_sdpam_closed() {
	local uid pid out
	uid=$(id -u alice)
	pid=$(pgrep -u alice -x '\(sd-pam\)' | head -n 1)
	[ -n "$pid" ] || { fail "alice has no (sd-pam)"; return 1; }
	echo "(sd-pam) pid $pid: comm $(cat "/proc/$pid/comm"), exe $(readlink "/proc/$pid/exe"), /proc/PID owner $(stat -c %U "/proc/$pid"), environ owner $(stat -c %U "/proc/$pid/environ")"
	out=$(timeout "$T" runuser -u alice -- env -u DBUS_SESSION_BUS_ADDRESS XDG_RUNTIME_DIR="/run/user/$uid" \
		systemd-run --user --quiet --pipe /bin/sh -c \
		"ls -d /proc/$pid; cat /proc/$pid/root/proc/[0-9]*/cmdline | tr '\\0' '\\n' | grep -c '^$HW_MARK-bob'" 2>&1)
	echo "from alice's user manager: $out"
	case $out in *"$HW_MARK"* | *$'\n'[1-9]*) fail "alice reaches bob's marker through (sd-pam)"; return 1 ;; esac
	echo "$out" >"$tmp/hw-sdpam"
	hw_save sdpam "$tmp/hw-sdpam"
}

sc_hostwide_closed() {
	check "hostwide: alice and bob hold markers in isolated ssh sessions" hw_markers_up
	check "hostwide: alice cannot list processes through her user manager's (sd-pam)" hw_sdpam_closed
	check "hostwide: with a door open the whole-host check finds it; after enable --unit for the units doctor names, doctor --host-wide exits 0 and no non-root process sees another user's marker" hw_all_closed
	check "hostwide: test units and guards removed" hw_cleanup
}

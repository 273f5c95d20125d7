# shellcheck shell=bash
# The door scenarios, sourced by scenarios.sh: every route by which a user
# could see another user's processes (pam_unshare(8), "What is hidden and
# what is not"). Each scenario runs its routes as alice, from an isolated
# ssh session (or the service the route goes through), while bob holds a
# unique marker in a command line twice: in his own isolated ssh session
# and in a host daemon (a system service running as bob). Each route is
# checked twice: with the door closed the marker must be absent, and with
# the door opened on purpose (module disabled for the service, or the guard
# removed) the same check must see the marker, which shows that the check
# can fail.
# tmp, T, USER_A, CLI and the TAP and wait helpers come from scenarios.sh.
# shellcheck disable=SC2154,SC2153

USER_B=bob
USER_C=carol
# The marker: unique per run, never part of a command alice runs.
MARK=pu$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')mark
DAEMON_UNIT=pu-door-daemon.service
UM_DROPIN=/etc/systemd/system/user@.service.d/pam-unshare.conf
DBUS_POLICY=/etc/dbus-1/system.d/pam-unshare.conf
ROUTES=/tmp/pu-routes
mkdir -p "$ROUTES"
chmod 755 "$ROUTES"

# ---- the markers ------------------------------------------------------------

# markers_seen_by_root: root's ps shows both of bob's markers.
markers_seen_by_root() {
	local ps
	ps=$(ps axww -o args)
	echo "$ps" | grep -q "^$MARK-session 1000" || { fail "bob's session marker is not running"; return 1; }
	echo "$ps" | grep -q "^$MARK-daemon 1000" || { fail "bob's daemon marker is not running"; return 1; }
}

# markers_up starts bob's two markers once per run: an isolated ssh session
# and a system service running as bob.
markers_up() {
	markers_seen_by_root >/dev/null 2>&1 && return 0
	# shellcheck disable=SC2029 # the marker is expanded here on purpose
	ssh "$USER_B@127.0.0.1" "exec -a $MARK-session sleep 1000" </dev/null >/dev/null 2>&1 &
	MARK_SSH=$!
	systemctl reset-failed "$DAEMON_UNIT" 2>/dev/null
	# The description is public (systemctl list-units); systemd-run's
	# default is the command line, marker included.
	systemd-run --quiet --unit="$DAEMON_UNIT" --uid="$USER_B" --description="bob's daemon" \
		/bin/bash -c "exec -a $MARK-daemon sleep 1000" || { fail "systemd-run for bob's daemon failed"; return 1; }
	wait_until 60 markers_seen_by_root || { markers_seen_by_root; return 1; }
	wait_until 30 has_helper_for sshd "$USER_B" || { fail "bob's ssh session has no helper"; return 1; }
}

# markers_down ends bob's two markers (before uninstall, which checks that
# no session is left).
markers_down() {
	[ -n "${MARK_SSH:-}" ] && kill "$MARK_SSH" 2>/dev/null && wait "$MARK_SSH" 2>/dev/null
	systemctl stop "$DAEMON_UNIT" 2>/dev/null
	wait_until 30 sh -c "! ps axww -o args | grep -q '^$MARK-'"
	return 0
}

# ---- one route ------------------------------------------------------------------

# route NAME SCRIPT: write SCRIPT (shell code alice runs) to a file alice
# can read.
route() {
	printf '%s\n' "$2" >"$ROUTES/$1.sh"
	chmod 644 "$ROUTES/$1.sh"
}

# as_alice_ssh NAME: run route NAME in an isolated ssh session of alice.
# A route that hangs is cut off after 60 s and shows what alice's
# processes are waiting for.
as_alice_ssh() {
	local rc=0
	timeout 60 ssh "$USER_A@127.0.0.1" "sh $ROUTES/$1.sh" </dev/null 2>&1 || rc=$?
	[ "$rc" = 124 ] && alice_waits
	return "$rc"
}

# alice_waits: alice's processes and what they wait for, and the recent
# journal of her user manager.
alice_waits() {
	echo "--- alice's processes after 60 s:"
	ps -u "$USER_A" -o pid,ppid,stat,wchan:24,args
	echo "--- journal of alice's user manager:"
	journalctl -b --no-pager -n 25 _UID="$(uid_of "$USER_A")"
	journalctl -b --no-pager -n 15 -u "user@$(uid_of "$USER_A").service"
}

# route_check EXPECT DESC ALIVE CMD...: run CMD (a route), keep its output,
# and assert: ALIVE (an extended regex) matches, so the route worked; and
# the marker is absent (EXPECT=hidden) or present (EXPECT=leaks, the door
# opened on purpose: the check can fail).
route_check() {
	local expect=$1 desc=$2 alive=$3 rc=0
	shift 3
	"$@" >"$tmp/route" 2>&1 || rc=$?
	tr -d '\r' <"$tmp/route" >"$tmp/route.clean"
	{
		grep -qE "$alive" "$tmp/route.clean" ||
			echo "the route did not work (exit $rc; no match for /$alive/)"
		if [ "$expect" = hidden ]; then
			grep -F "$MARK" "$tmp/route.clean" | sed 's/^/marker visible: /'
		else
			grep -qF "$MARK" "$tmp/route.clean" || echo "marker not seen with the door open"
		fi
	} >"$tmp/route.verdict"
	if [ "$expect" = hidden ]; then
		desc="$desc: bob's markers are hidden"
	else
		desc="$desc, door opened on purpose: the check sees bob's marker"
	fi
	if [ ! -s "$tmp/route.verdict" ]; then
		ok "$desc"
	else
		not_ok "$desc"
		diag "$(
			cat "$tmp/route.verdict"
			echo "--- output (first 60 lines):"
			head -n 60 "$tmp/route.clean"
		)"
	fi
}

# door_check DOOR SERVICE DESC ALIVE CMD...: bob's markers are running;
# route_check CMD finds them hidden; with the module disabled for SERVICE
# (the door opened on purpose) it finds them; then SERVICE is enabled again.
door_check() {
	local door=$1 service=$2 desc=$3 alive=$4
	shift 4
	check "door $door: bob's markers are running (root sees both)" markers_up
	route_check hidden "door $door: $desc" "$alive" "$@"
	"$CLI" disable "$service" >/dev/null 2>&1
	route_check leaks "door $door: $desc" "$alive" "$@"
	"$CLI" enable "$service" >/dev/null 2>&1
}

# ---- doors: processes in a session ------------------------------------------------

route ps 'ps axww -o pid,user,args'

sc_door_ps() {
	# Open: sshd without the module.
	door_check ps sshd "ps axww in alice's ssh session" '^ +1 ' as_alice_ssh ps
	check "door ps: sshd isolated again" last_session_line /etc/pam.d/sshd
}

# ---- doors: systemd's process lists over D-Bus ------------------------------------

route status "systemctl status --no-pager --full --lines=0 $DAEMON_UNIT; systemctl status --no-pager --full --lines=0"
route user_status "loginctl user-status --no-pager --full --lines=0 $USER_B"
route busctl "busctl call org.freedesktop.systemd1 /org/freedesktop/systemd1 org.freedesktop.systemd1.Manager GetUnitProcesses s $DAEMON_UNIT
busctl call org.freedesktop.systemd1 /org/freedesktop/systemd1/unit/pu_2ddoor_2ddaemon_2eservice org.freedesktop.systemd1.Service GetProcesses
busctl call org.freedesktop.systemd1 /org/freedesktop/systemd1/unit/user_2eslice org.freedesktop.systemd1.Slice GetProcesses"

# dbus_reload: make the system bus read its policy files again.
dbus_reload() {
	busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig
}

# root_sees_markers_over_dbus: root's systemctl status and GetUnitProcesses
# still list processes.
root_sees_markers_over_dbus() {
	systemctl status --no-pager --full --lines=0 "$DAEMON_UNIT" | grep -F "$MARK-daemon" ||
		{ fail "root's systemctl status does not list bob's daemon"; return 1; }
	busctl call org.freedesktop.systemd1 /org/freedesktop/systemd1 org.freedesktop.systemd1.Manager \
		GetUnitProcesses s "$DAEMON_UNIT" | grep -F "$MARK-daemon" ||
		{ fail "root's GetUnitProcesses does not list bob's daemon"; return 1; }
	loginctl user-status --no-pager --full --lines=0 "$USER_B" | grep -F "$MARK-session" ||
		{ fail "root's loginctl user-status bob does not list bob's session"; return 1; }
}

sc_door_dbus() {
	check "door dbus: bob's markers are running (root sees both)" markers_up
	check "door dbus: the bus policy is installed" test -f "$DBUS_POLICY"
	route_check hidden "door dbus: systemctl status" "$DAEMON_UNIT" as_alice_ssh status
	route_check hidden "door dbus: loginctl user-status bob" "State: active" as_alice_ssh user_status
	route_check hidden "door dbus: busctl GetUnitProcesses and GetProcesses" "Access denied" as_alice_ssh busctl
	check "door dbus: root's systemctl status, loginctl user-status and GetUnitProcesses still list processes" \
		root_sees_markers_over_dbus
	mv "$DBUS_POLICY" "$tmp/dbus-policy"
	dbus_reload >/dev/null
	route_check leaks "door dbus: systemctl status" "$DAEMON_UNIT" as_alice_ssh status
	route_check leaks "door dbus: loginctl user-status bob" "State: active" as_alice_ssh user_status
	route_check leaks "door dbus: busctl GetUnitProcesses" "$DAEMON_UNIT" as_alice_ssh busctl
	mv "$tmp/dbus-policy" "$DBUS_POLICY"
	dbus_reload >/dev/null
}

# ---- doors: the user's own systemd instance ---------------------------------------

# From an isolated session, the user manager is reached through the user
# bus: systemctl --user and systemd-run --user try the manager's private
# socket first, whose peer (outside the session's PID namespace) shows as
# PID 0, and sd-bus refuses that.
NOXDG='env -u XDG_RUNTIME_DIR'
route um_run "$NOXDG systemd-run --user --quiet --pipe ps axww -o pid,user,args"
route um_unit "mkdir -p ~/.config/systemd/user
printf '[Service]\nType=oneshot\nExecStart=/bin/sh -c \"ps axww -o pid,user,args >%%h/unit.out\"\n' >~/.config/systemd/user/pu-ps.service
rm -f ~/unit.out
$NOXDG systemctl --user daemon-reload
$NOXDG systemctl --user start pu-ps.service
cat ~/unit.out"
# A timer's default AccuracySec= is one minute: without a tighter one,
# --on-active=1 may fire up to a minute late, past the route's wait.
route um_timer "rm -f ~/timer.out
$NOXDG systemd-run --user --quiet --on-active=1 --timer-property=AccuracySec=100ms --unit=pu-timer /bin/sh -c 'ps axww -o pid,user,args >~/timer.out.tmp; mv ~/timer.out.tmp ~/timer.out'
i=0; while [ ! -s ~/timer.out ] && [ \$i -lt 300 ]; do sleep 0.2; i=\$((i+1)); done
cat ~/timer.out"
route um_direct "systemctl --user show-environment >/dev/null"
route um_bus "$NOXDG busctl --user call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ListNames"

# restart_user_managers: stop the user managers of alice and carol, so
# that the next one starts with the current user@.service.
restart_user_managers() {
	systemctl stop "user@$(uid_of "$USER_A").service" "user@$(uid_of "$USER_C").service" 2>/dev/null
	return 0
}

# as_lingering_carol: systemd-run --user in carol's lingering user manager
# (no session of carol's at all), run by root through runuser.
as_lingering_carol() {
	local uid
	uid=$(uid_of "$USER_C")
	# Lingering starts carol's manager at boot; restart_user_managers
	# stopped it.
	systemctl start "user@$uid.service" || { fail "carol's lingering user manager does not start"; return 1; }
	timeout "$T" runuser -u "$USER_C" -- env -u DBUS_SESSION_BUS_ADDRESS XDG_RUNTIME_DIR="/run/user/$uid" \
		systemd-run --user --quiet --pipe ps axww -o pid,user,args 2>&1
}

# um_start_ms: how long systemctl start user@UID.service takes for carol,
# in milliseconds (the manager is Type=notify: start returns when ready).
um_start_ms() {
	local uid t0 t1
	uid=$(uid_of "$USER_C")
	systemctl stop "user@$uid.service"
	t0=$(date +%s%N)
	systemctl start "user@$uid.service" || return 1
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000000))
}

# measure_um_start LABEL: five starts of carol's user manager.
measure_um_start() {
	local _ all=""
	for _ in 1 2 3 4 5; do
		all="$all $(um_start_ms)"
	done
	echo "user-manager start ($1), ms:$all"
}

# door_user_manager_routes EXPECT: every user-manager route.
door_user_manager_routes() {
	local e=$1
	restart_user_managers
	route_check "$e" "door user manager: systemd-run --user --pipe ps from alice's ssh session" ' ps axww' as_alice_ssh um_run
	route_check "$e" "door user manager: a unit started with systemctl --user" ' ps axww' as_alice_ssh um_unit
	route_check "$e" "door user manager: a timer started with systemd-run --user --on-active" ' ps axww' as_alice_ssh um_timer
	route_check "$e" "door user manager: systemd-run --user in carol's lingering manager" ' ps axww' as_lingering_carol
}

# systemctl_user_works: plain systemctl --user works in a session (through
# the session's relay, user_manager=relay).
systemctl_user_works() {
	local out rc=0
	out=$(as_alice_ssh um_direct) || rc=$?
	echo "plain systemctl --user: exit $rc: $out"
	[ "$rc" = 0 ] && [ -z "$out" ]
}

# systemctl_user_off_fails: with user_manager=off, as documented, plain
# systemctl --user fails in a session (the private socket's peer shows as
# PID 0) and works through the user bus (the routes above).
systemctl_user_off_fails() {
	local out
	um_pam_args "user_manager=off"
	out=$(as_alice_ssh um_direct)
	um_pam_args ""
	echo "plain systemctl --user: $out"
	case $out in *"No data available"*) ;; *) fail "expected 'No data available'"; return 1 ;; esac
}

sc_door_user_manager() {
	check "door user manager: bob's markers are running (root sees both)" markers_up
	check "door user manager: the user@.service drop-in is installed and loaded" \
		sh -c "test -f $UM_DROPIN && systemctl show -p ProtectProc --value user@0.service | grep -x invisible"
	loginctl enable-linger "$USER_C"
	door_user_manager_routes hidden
	route_check hidden "door user manager: the session bus (busctl --user)" 'org\.freedesktop\.DBus' as_alice_ssh um_bus
	check "door user manager: in a session, plain systemctl --user works" systemctl_user_works
	check "door user manager: with user_manager=off, plain systemctl --user fails with 'No data available' as documented" \
		systemctl_user_off_fails
	measure_um_start "guard on" >"$tmp/um-on"
	mv "$UM_DROPIN" "$tmp/um-dropin"
	systemctl daemon-reload
	measure_um_start "guard off" >"$tmp/um-off"
	door_user_manager_routes leaks
	mv "$tmp/um-dropin" "$UM_DROPIN"
	systemctl daemon-reload
	restart_user_managers
	loginctl disable-linger "$USER_C"
	diag "$(cat "$tmp/um-on" "$tmp/um-off")"
	cat "$tmp/um-on" "$tmp/um-off" >>"$VM_OUT/metrics.txt" 2>/dev/null
}

# ---- doors: jobs started by cron and atd --------------------------------------------

# cron_job_ran: the job alice's crontab runs every minute wrote its output.
cron_job_ran() { [ -s "/home/$USER_A/cron.out" ]; }

# as_alice_cron: install a crontab for alice that lists processes, wait
# for cron to run it (cron wakes once a minute), remove it.
as_alice_cron() {
	rm -f "/home/$USER_A/cron.out"
	# shellcheck disable=SC2016 # expanded by the job's shell
	echo '* * * * * ps axww -o pid,user,args >$HOME/cron.out.tmp; mv $HOME/cron.out.tmp $HOME/cron.out' |
		crontab -u "$USER_A" -
	wait_until 150 cron_job_ran || echo "the cron job did not run within 150 s"
	crontab -u "$USER_A" -r
	cat "/home/$USER_A/cron.out"
}

sc_door_cron() {
	door_check cron cron "a cron job of alice's" ' ps axww' as_alice_cron
}

at_job_ran() { [ -s "/home/$USER_A/at.out" ]; }

# as_alice_at: alice queues an at job. Debian's at cannot wake a root atd
# itself; jobs run at atd's next wakeup, which root's SIGHUP brings forward.
as_alice_at() {
	rm -f "/home/$USER_A/at.out"
	# shellcheck disable=SC2016 # expanded by the job's shell
	echo 'ps axww -o pid,user,args >$HOME/at.out.tmp; mv $HOME/at.out.tmp $HOME/at.out' |
		su "$USER_A" -c 'at now' 2>&1
	systemctl kill -s HUP atd.service
	wait_until 60 at_job_ran || echo "the at job did not run within 60 s"
	cat "/home/$USER_A/at.out"
}

sc_door_at() {
	door_check at atd "an at job of alice's" ' ps axww' as_alice_at
}

# ---- doors: sudo -i -----------------------------------------------------------------

as_alice_sudo_i() {
	timeout "$T" sudo -i -u "$USER_A" ps axww -o pid,user,args </dev/null 2>&1
}

sc_door_sudo_i() {
	door_check "sudo -i" sudo-i "sudo -i -u alice" ' ps axww' as_alice_sudo_i
}

# ---- what stays visible -------------------------------------------------------------

route visible "echo '--- who'; who; echo '--- loginctl list-sessions'; loginctl list-sessions --no-pager
echo '--- /proc/net/tcp (what ss reads)'; head -n 5 /proc/net/tcp
echo '--- /proc/self/cgroup'; cat /proc/self/cgroup
echo '--- cgroup.procs of bob'\''s user slice'; cat /sys/fs/cgroup/user.slice/user-$(id -u $USER_B).slice/*/cgroup.procs 2>&1 | head -n 20"

# sc_door_visible records what stays visible from inside a session (for
# the documentation); it asserts only that bob's markers are not in it.
sc_door_visible() {
	check "door visible: bob's markers are running (root sees both)" markers_up
	route_check hidden "door visible: who, loginctl list-sessions, /proc/net/tcp, cgroup files" 'loginctl|SESSION' as_alice_ssh visible
	diag "$(cat "$tmp/route.clean")"
}

# ---- doctor ---------------------------------------------------------------------

# doctor_flags_procfs: with a second procfs mounted on the host, doctor
# lists it as an open door and exits 1; after the umount it is clean again.
doctor_flags_procfs() {
	local rc=0 dir=/tmp/pu-proc2
	mkdir -p "$dir"
	mount -t proc proc "$dir" || { fail "mount -t proc failed"; return 1; }
	"$CLI" doctor >"$tmp/doctor-proc" 2>&1 || rc=$?
	umount "$dir"
	grep -F 'foreign procfs mounts' "$tmp/doctor-proc"
	[ "$rc" = 1 ] || { fail "doctor exited $rc with a second procfs mounted"; return 1; }
	{ grep -q "^✗ foreign procfs mounts: " "$tmp/doctor-proc" && grep -qF "    $dir (procfs" "$tmp/doctor-proc"; } ||
		{ fail "doctor does not name $dir as an open door"; cat "$tmp/doctor-proc"; return 1; }
	! grep -q "no problems found" "$tmp/doctor-proc" || { fail "doctor says no problems found"; return 1; }
	rc=0
	"$CLI" doctor >"$tmp/doctor-proc" 2>&1 || rc=$?
	[ "$rc" = 0 ] || { fail "doctor exited $rc after the umount"; cat "$tmp/doctor-proc"; return 1; }
}

sc_door_doctor() {
	# bob's daemon is itself an open door (a user's process on the host's
	# /proc, a transient unit with its command line): doctor's host-wide
	# check names it.
	markers_down
	check "door doctor: a second procfs on the host is an open door (doctor exits 1), gone after umount" doctor_flags_procfs
}

# ---- after disable ------------------------------------------------------------------

# guards_gone: after disable, neither guard file is left, systemd has
# dropped ProtectProc=, and the bus answers GetUnitProcesses to non-root.
guards_gone() {
	[ ! -e "$UM_DROPIN" ] || { fail "still there: $UM_DROPIN"; return 1; }
	[ ! -e "$DBUS_POLICY" ] || { fail "still there: $DBUS_POLICY"; return 1; }
	! systemctl show -p ProtectProc --value user@0.service | grep -qx invisible ||
		{ fail "systemd still has ProtectProc=invisible for user@.service"; return 1; }
	runuser -u "$USER_A" -- busctl call org.freedesktop.systemd1 /org/freedesktop/systemd1 \
		org.freedesktop.systemd1.Manager GetUnitProcesses s init.scope ||
		{ fail "GetUnitProcesses still refused to alice"; return 1; }
}

# sc_door_debug (not in the default list): what alice's user manager looks
# like from an isolated session, for diagnosing the user-manager routes.
route um_debug "id; env | sort | grep -E 'XDG|DBUS'; ls -la /run/user/\$(id -u)
echo '--- busctl --user list'; timeout 15 env -u XDG_RUNTIME_DIR busctl --user --no-pager list 2>&1 | head -n 12; echo rc=\$?
echo '--- systemctl --user is-system-running'; timeout 15 env -u XDG_RUNTIME_DIR systemctl --user is-system-running 2>&1; echo rc=\$?
echo '--- systemd-run --user true'; timeout 15 env -u XDG_RUNTIME_DIR systemd-run --user --quiet --wait true 2>&1; echo rc=\$?
echo '--- systemd-run --user --pipe echo hi'; timeout 15 env -u XDG_RUNTIME_DIR systemd-run --user --quiet --pipe echo hi 2>&1; echo rc=\$?"
sc_door_debug() { # manual
	local uid
	uid=$(uid_of "$USER_A")
	for state in on off; do
		echo "# guard $state"
		timeout "$T" ssh "$USER_A@127.0.0.1" "sh $ROUTES/um_debug.sh" </dev/null 2>&1 | sed 's/^/# /'
		echo "# --- journal of user@$uid"
		journalctl -b --no-pager -u "user@$uid.service" _UID="$uid" 2>&1 | tail -n 30 | sed 's/^/# /'
		journalctl -b --no-pager --user-unit dbus.service 2>&1 | tail -n 10 | sed 's/^/# /'
		systemctl status --no-pager "user@$uid.service" 2>&1 | head -n 20 | sed 's/^/# /'
		mv "$UM_DROPIN" "$tmp/um-dropin"
		systemctl daemon-reload
		systemctl stop "user@$uid.service"
	done
	mv "$tmp/um-dropin" "$UM_DROPIN"
	# ProcSubset=pid on top: what breaks, and what it costs.
	printf '[Service]\nProcSubset=pid\n' >/etc/systemd/system/user@.service.d/zz-procsubset.conf
	systemctl daemon-reload
	loginctl enable-linger "$USER_C"
	echo "# with ProcSubset=pid:"
	as_lingering_carol_cmd sh -c 'free; uptime; ls /proc | head -n 3; ps axww -o pid,user,args | head -n 5' | sed 's/^/#   /'
	measure_um_start "guard + ProcSubset=pid" | sed 's/^/# /'
	rm /etc/systemd/system/user@.service.d/zz-procsubset.conf
	systemctl daemon-reload
	measure_um_start "guard only" | sed 's/^/# /'
	loginctl disable-linger "$USER_C"
	ok "door debug"
}

# as_lingering_carol_cmd CMD...: CMD in carol's lingering user manager.
as_lingering_carol_cmd() {
	local uid
	uid=$(uid_of "$USER_C")
	systemctl start "user@$uid.service"
	timeout "$T" runuser -u "$USER_C" -- env -u DBUS_SESSION_BUS_ADDRESS XDG_RUNTIME_DIR="/run/user/$uid" \
		systemd-run --user --quiet --pipe "$@" 2>&1
}

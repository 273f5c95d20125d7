# shellcheck shell=bash
# The lifecycle scenarios, sourced by scenarios.sh: what an administrator
# does to a host while users are logged in.
#
#   restarts  ssh, dbus, systemd and logind restarted under live sessions
#   upgrade   the older release (run.sh stages it in olddeb/ of the payload)
#             installed and enabled, sessions opened in both scopes, then
#             dpkg -i of this tree's package; then disable, remove, purge,
#             and this tree's package installed and enabled again
#
# tmp, T, USER_A, CLI, PKG, HELPER and the TAP and wait helpers come from
# scenarios.sh; USER_B, USER_C, markers_down, route_check, as_alice_ssh and
# restart_user_managers from doors.sh.
# shellcheck disable=SC2154,SC2153

# The payload disk the runner mounted (VM_OUT is its out/ directory).
PAYLOAD=${VM_OUT%/out}

# sleeper_pid USER N: the PID of USER's "sleep N"; fails if there is none.
sleeper_pid() { pgrep -u "$1" -x -f "sleep $2" | head -n 1 | grep .; }

# ns_sees_only_session PID: ps run inside PID's namespaces (nsenter: the
# session's PID namespace and its mount namespace, whose /proc is the
# session's) sees the helper as PID 1 and only the session's processes.
ns_sees_only_session() {
	local pid=$1
	[ "$(readlink "/proc/$pid/ns/pid")" != "$host_pidns" ] || { fail "PID $pid is in the host's PID namespace"; return 1; }
	nsenter -t "$pid" -p -m -- "${PS_ARGV[@]}" >"$tmp/nsps" 2>&1 || { cat "$tmp/nsps"; fail "nsenter into PID $pid failed"; return 1; }
	cat "$tmp/nsps"
	sees_only_session "$tmp/nsps"
}

# all_alive PID...: every PID still runs.
all_alive() {
	local p rc=0
	for p in "$@"; do
		kill -0 "$p" 2>/dev/null || { echo "PID $p is gone"; rc=1; }
	done
	return "$rc"
}

# ---- restarts under live sessions ------------------------------------------

# restart_keeps CMD...: run CMD (a restart), wait until ssh logins work
# again, and check that the two live sessions' processes and their helpers
# are the ones from before, each still isolated.
restart_keeps() {
	local rc=0 p
	"$@" || rc=$?
	[ "$rc" = 0 ] || { fail "$* exited $rc"; return 1; }
	wait_until 60 ssh "$USER_A@127.0.0.1" true </dev/null || { fail "ssh logins do not work after $*"; return 1; }
	all_alive "${RS_PIDS[@]}" || { fail "a live session or its helper did not survive $*"; return 1; }
	for p in "${RS_SLEEPS[@]}"; do
		ns_sees_only_session "$p" || return 1
	done
}
sc_restarts() {
	local a b p
	markers_down
	mark_leftovers
	# A session of each kind: alice over ssh, bob through su.
	ssh "$USER_A@127.0.0.1" 'sleep 3001' </dev/null >/dev/null 2>&1 &
	a=$!
	su "$USER_B" -c 'sleep 3002' </dev/null >/dev/null 2>&1 &
	b=$!
	wait_until 60 sleeper_pid "$USER_A" 3001 >/dev/null
	wait_until 60 sleeper_pid "$USER_B" 3002 >/dev/null
	RS_SLEEPS=("$(sleeper_pid "$USER_A" 3001)" "$(sleeper_pid "$USER_B" 3002)")
	read -ra RS_PIDS <<<"${RS_SLEEPS[*]} $(helper_pids | xargs)"
	echo "# live sessions: sleeps ${RS_SLEEPS[*]}; sleeps and helpers: ${RS_PIDS[*]}"
	check "restarts: an ssh and a su session are live and isolated" restart_keeps true
	check "restarts: systemctl restart ssh keeps the live sessions" restart_keeps systemctl restart ssh
	check "restarts: systemctl reload dbus keeps the live sessions" restart_keeps systemctl reload dbus
	check "restarts: systemctl daemon-reexec keeps the live sessions" restart_keeps systemctl daemon-reexec
	check "restarts: systemctl restart systemd-logind keeps the live sessions" restart_keeps systemctl restart systemd-logind
	session_check "ssh alice after the restarts" ssh "$USER_A@127.0.0.1" "$PS_CMD"
	session_check "su alice after the restarts" su "$USER_A" -c "$PS_CMD"
	session_check "sudo -u alice after the restarts" sudo -u "$USER_A" "${PS_ARGV[@]}"
	# The guards still bite: the bus refuses systemd's process lists to
	# alice, and her user manager (reloaded by daemon-reexec) sees only her
	# own processes. The door scenarios show that these checks can fail.
	check "restarts: bob's markers are running (root sees both)" markers_up
	route_check hidden "restarts: busctl GetUnitProcesses from alice's ssh session is refused" "Access denied" as_alice_ssh busctl
	route_check hidden "restarts: systemd-run --user --pipe ps from alice's ssh session" ' ps axww' as_alice_ssh um_run
	markers_down
	for p in $a $b; do kill "$p" 2>/dev/null; done
	wait "$a" "$b" 2>/dev/null
	check "after the restarts: nothing left in another PID namespace" host_clean
}

# ---- upgrade from the older release -----------------------------------------

# set_service_args SERVICE ARGS: the module line of SERVICE gets ARGS.
set_service_args() {
	sed -i "s|^session required pam_unshare.so.*\$|session required pam_unshare.so${2:+ $2}|" "/etc/pam.d/$1"
}

# install_old: this tree's package off the guest (disable, purge), the
# older release on (dpkg -i, pam-unshare enable), with per-service scopes:
# sshd scope=user linger, su scope=user, sudo the default scope=session.
install_old() {
	local old
	old=$(find "$PAYLOAD/olddeb" -name '*.deb' 2>/dev/null | head -n 1)
	[ -n "$old" ] || { cat "$PAYLOAD/bin/old-install.log"; fail "run.sh staged no older release (VM_OLD_RC=${VM_OLD_RC:-?})"; return 1; }
	if ! "$CLI" disable >/dev/null || ! dpkg -P "$PKG" >/dev/null; then
		fail "could not take this tree's package off"
		return 1
	fi
	dpkg -i "$old" || { fail "dpkg -i $old failed"; return 1; }
	"$CLI" enable || { fail "the older release's pam-unshare enable failed"; return 1; }
	set_service_args sshd "scope=user linger"
	set_service_args su "scope=user"
	dpkg-query -W -f '${Version}\n' "$PKG" >"$tmp/old-version"
	dpkg -L "$PKG" >"$tmp/old-files"
	echo "older release: $(cat "$tmp/old-version"); backups it left in /etc/pam.d:" /etc/pam.d/*.pam-unshare.bak
	UP_OLD=1
}

# sessions_before: alice (ssh, scope=user linger) holds a live ssh session
# and a nohup sleep left at logout; bob (su, scope=user) and carol (sudo,
# scope=session) hold a live session each.
sessions_before() {
	ssh "$USER_A@127.0.0.1" 'sleep 2004' </dev/null >/dev/null 2>&1 &
	UP_A=$!
	timeout "$T" ssh "$USER_A@127.0.0.1" 'nohup sleep 2003 >/dev/null 2>&1 &' </dev/null
	su "$USER_B" -c 'sleep 2002' </dev/null >/dev/null 2>&1 &
	UP_B=$!
	sudo -u "$USER_C" sleep 2001 </dev/null >/dev/null 2>&1 &
	UP_C=$!
	local u n
	for u in "$USER_A 2004" "$USER_A 2003" "$USER_B 2002" "$USER_C 2001"; do
		read -r u n <<<"$u"
		wait_until 60 sleeper_pid "$u" "$n" >/dev/null || { fail "$u's sleep $n did not come up"; return 1; }
	done
	UP_SLEEPS=("$(sleeper_pid "$USER_A" 2004)" "$(sleeper_pid "$USER_A" 2003)" "$(sleeper_pid "$USER_B" 2002)" "$(sleeper_pid "$USER_C" 2001)")
	read -ra UP_HELPERS <<<"$(helper_pids | xargs)"
	echo "sleeps: ${UP_SLEEPS[*]}; helpers: ${UP_HELPERS[*]}"
	[ "${#UP_HELPERS[@]}" = 3 ] || { fail "want 3 helpers (alice, bob, carol)"; return 1; }
	"$CLI" status
}

# upgrade_keeps: dpkg -i of this tree's package succeeds and stops no
# helper: every session process and helper from before still runs, each
# session still sees only itself.
upgrade_keeps() {
	local rc=0 p
	dpkg -i "$PAYLOAD"/deb/*.deb || rc=$?
	[ "$rc" = 0 ] || { fail "dpkg -i exited $rc"; return 1; }
	all_alive "${UP_SLEEPS[@]}" "${UP_HELPERS[@]}" || { fail "the upgrade ended a session"; return 1; }
	for p in "${UP_SLEEPS[@]}"; do
		ns_sees_only_session "$p" || return 1
	done
	for p in "${UP_HELPERS[@]}"; do
		echo "helper $p: $(readlink "/proc/$p/exe")"
	done
}

# upgraded_package: the package is this tree's, pam-unshare --version says
# the same version, and the backups the older release left in /etc/pam.d
# were moved to /var/backups/pam-unshare (mode 0700).
upgraded_package() {
	local ver out left
	ver=$(dpkg-query -W -f '${Version}' "$PKG")
	out=$("$CLI" --version)
	echo "dpkg: $ver; $out; older release: $(cat "$tmp/old-version")"
	dpkg --compare-versions "$ver" gt "$(cat "$tmp/old-version")" || { fail "not upgraded"; return 1; }
	[ "$out" = "pam-unshare $ver" ] || { fail "pam-unshare --version does not say $ver"; return 1; }
	left=$(find /etc/pam.d -name '*.pam-unshare.bak')
	[ -z "$left" ] || { fail "backups left in /etc/pam.d: $left"; return 1; }
	ls -la /var/backups/pam-unshare
	[ "$(stat -c %a:%U /var/backups/pam-unshare)" = 700:root ] || { fail "/var/backups/pam-unshare is not 0700 root"; return 1; }
	[ -s /var/backups/pam-unshare/sshd.bak ] || { fail "no backup of sshd in /var/backups/pam-unshare"; return 1; }
}

# lingering_seen: alice's next ssh login joins her namespace from before
# the upgrade and sees both her live and her lingering sleep.
lingering_seen() {
	local out
	out=$(user_ps "$USER_A")
	echo "$out"
	grep -qx 'sleep 2003' <<<"$out" || { fail "the lingering sleep 2003 is not visible"; return 1; }
	grep -qx 'sleep 2004' <<<"$out" || { fail "the live session's sleep 2004 is not visible"; return 1; }
}

# su_bob_joins: bob's next su session joins his namespace from before the
# upgrade (scope=user): it sees his live sleep and nothing of the host.
su_bob_joins() {
	local out rc=0
	out=$(timeout "$T" su "$USER_B" -c 'ps -e -o args=' </dev/null 2>&1) || rc=$?
	echo "$out"
	[ "$rc" = 0 ] || { fail "su bob exited $rc"; return 1; }
	grep -qx 'sleep 2002' <<<"$out" || { fail "bob's live sleep 2002 is not visible"; return 1; }
	! grep -Eq 'systemd|sleep 200[134]' <<<"$out" || { fail "host or other users' processes visible"; return 1; }
}

# status_lists: pam-unshare status lists each helper from before the
# upgrade with its user and scope.
status_lists() {
	local out
	out=$("$CLI" status 2>&1)
	echo "$out"
	grep -Eq "^$USER_A +user +[0-9]+ +yes " <<<"$out" || { fail "no lingering per-user namespace of $USER_A"; return 1; }
	grep -Eq "^$USER_B +user +[0-9]+ " <<<"$out" || { fail "no per-user namespace of $USER_B"; return 1; }
	grep -Eq "^$USER_C +sudo +[0-9]+ " <<<"$out" || { fail "no sudo session of $USER_C"; return 1; }
}

# stop_user_ends USER N...: pam-unshare stop USER ends USER's namespace:
# the sleeps N... are gone.
stop_user_ends() {
	local u=$1 n rc=0
	shift
	"$CLI" stop "$u" || { fail "pam-unshare stop $u exited $?"; return 1; }
	for n in "$@"; do
		wait_until 10 sh -c "! pgrep -u $u -x -f 'sleep $n' >/dev/null" || { echo "sleep $n survived"; rc=1; }
	done
	return "$rc"
}

# disable_says_live: pam-unshare disable with carol's sudo session live
# leaves it running and says that it is.
disable_says_live() {
	local out rc=0
	out=$("$CLI" disable 2>&1) || rc=$?
	echo "$out"
	[ "$rc" = 0 ] || { fail "disable exited $rc"; return 1; }
	grep -Eq '^pam-unshare: [0-9]+ isolated sessions? or per-user namespaces? (is|are) still live' <<<"$out" ||
		{ fail "disable does not say that sessions still live"; return 1; }
	kill -0 "$(sleeper_pid "$USER_C" 2001)" 2>/dev/null || { fail "disable ended carol's session"; return 1; }
	ns_sees_only_session "$(sleeper_pid "$USER_C" 2001)"
}

# purge_leaves_nothing: after dpkg -r and dpkg -P nothing of the module is
# on the guest: no file of the older release's package, no pam_unshare
# line and no backup in /etc/pam.d, no guard, no /run/pam_unshare, no
# /var/backups/pam-unshare, no dpkg record.
purge_leaves_nothing() {
	local f left=""
	dpkg -r "$PKG" >/dev/null || { fail "dpkg -r exited $?"; return 1; }
	dpkg -P "$PKG" || { fail "dpkg -P exited $?"; return 1; }
	while read -r f; do
		# Directories the package shares with others (/usr/sbin) stay.
		case $f in */pam_unshare | */pam-unshare) ;; *) [ -d "$f" ] && continue ;; esac
		[ -e "$f" ] && left="$left $f"
	done <"$tmp/old-files"
	left="$left $(grep -rlE 'pam_unshare\.so' /etc/pam.d 2>/dev/null | tr '\n' ' ')"
	for f in /etc/pam.d/*.pam-unshare.bak "$UM_DROPIN" "$DBUS_POLICY" /run/pam_unshare /var/backups/pam-unshare; do
		[ -e "$f" ] && left="$left $f"
	done
	dpkg-query -W "$PKG" >/dev/null 2>&1 && left="$left dpkg:$(dpkg-query -W -f '${Status}' "$PKG")"
	left=$(echo "$left" | xargs)
	[ -z "$left" ] || { fail "left on the guest: $left"; return 1; }
}

# logins_plain: su, ssh and sudo work, without any namespace.
logins_plain() {
	su_sees_host || return 1
	timeout "$T" ssh "$USER_A@127.0.0.1" true </dev/null || { fail "ssh alice failed"; return 1; }
	timeout "$T" sudo -u "$USER_A" true </dev/null || { fail "sudo -u alice failed"; return 1; }
}

# reinstall: this tree's package and the runner's configuration back, for
# the scenarios after this one.
reinstall() {
	dpkg -i "$PAYLOAD"/deb/*.deb >/dev/null || { fail "dpkg -i failed"; return 1; }
	"$CLI" enable ${VM_PAM_ARGS:+--options "$VM_PAM_ARGS"} >/dev/null || { fail "enable failed"; return 1; }
	"$CLI" enable ${VM_PAM_ARGS:+--options "$VM_PAM_ARGS"} pamtester-unshare >/dev/null || { fail "enable pamtester-unshare failed"; return 1; }
	restart_user_managers
}

sc_upgrade() {
	local p
	if [ "$VM_INSTALL" != deb ]; then
		skip "upgrade: from the older release's package" "VM_INSTALL=$VM_INSTALL"
		return
	fi
	# A checkout without the older release's commit (a shallow clone)
	# cannot build it: that is a limit of the checkout, said as a skip.
	if [ "${VM_OLD_RC:-0}" = 2 ]; then
		skip "upgrade: from the older release's package" "$(head -n 1 "$PAYLOAD/bin/old-install.log")"
		return
	fi
	markers_down
	mark_leftovers
	UP_OLD=0
	check "upgrade: the older release installs and enables" install_old
	[ "$UP_OLD" = 1 ] || return
	check "upgrade: before: sessions of alice (ssh, scope=user linger), bob (su, scope=user), carol (sudo, scope=session)" sessions_before
	check "upgrade: dpkg -i of this tree's package ends no session and no helper; each still sees only itself" upgrade_keeps
	check "upgrade: pam-unshare --version is the package's; the old backups moved to /var/backups/pam-unshare" upgraded_package
	check "upgrade: alice's next ssh login sees her lingering and her live sleep" lingering_seen
	check "upgrade: bob's next su session joins his namespace from before" su_bob_joins
	session_check "upgrade: ssh carol (new per-user namespace)" ssh "$USER_C@127.0.0.1" "$PS_CMD"
	session_check "upgrade: sudo -u alice (new session)" sudo -u "$USER_A" "${PS_ARGV[@]}"
	check "upgrade: pam-unshare status lists the namespaces from before the upgrade" status_lists
	check "upgrade: pam-unshare stop alice ends her lingering namespace" stop_user_ends "$USER_A" 2003 2004
	check "upgrade: pam-unshare stop bob ends his namespace" stop_user_ends "$USER_B" 2002
	# Whatever the stop checks found, end what is left, so that the
	# removal checks below test the removal.
	pkill -u "$USER_A" -x sleep
	pkill -u "$USER_B" -x sleep
	check "upgrade: disable with carol's session live leaves it running and says so" disable_says_live
	for p in $UP_A $UP_B $UP_C; do kill "$p" 2>/dev/null; done
	wait "$UP_A" "$UP_B" "$UP_C" 2>/dev/null
	pkill -u "$USER_C" -x sleep
	wait_until 20 sh -c "[ -z \"\$(pgrep -x '$HELPER_COMM')\" ]"
	check "upgrade: dpkg -r and dpkg -P leave nothing of the module on the guest" purge_leaves_nothing
	check "upgrade: after the purge su, ssh and sudo work, not isolated" logins_plain
	check "upgrade: this tree's package installed and enabled again" reinstall
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

# ssh_session_with_helper: start an ssh session of alice's running sleep 30
# in the background, its client's pid in the caller's ssh_pid, and wait for
# its helper.

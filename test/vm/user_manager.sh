# shellcheck shell=bash
# The user-manager scenarios, sourced by scenarios.sh after doors.sh:
# systemctl --user and the other everyday tools that talk to systemd or
# logind, from isolated sessions (pam_unshare(8), user_manager=).
# tmp, T, USER_A, USER_B, USER_C, ROUTES, route, uid_of, the TAP and wait
# helpers come from scenarios.sh and doors.sh.
# shellcheck disable=SC2154,SC2153

# ---- the survey: each tool's exit status and first line of output -----------

# The tools, one per line: a label, a tab, the shell command. The unit
# started is a oneshot that stays active and writes what it sees with ps.
UM_TOOLS="systemctl --user daemon-reload	systemctl --user daemon-reload
systemctl --user status	systemctl --user status --no-pager
systemctl --user start (unit file)	systemctl --user start pu-survey.service
systemctl --user status (that unit)	o=\$(systemctl --user status --no-pager pu-survey.service 2>&1); rc=\$?; echo \"\$o\" | grep -m1 -E 'Active:' || echo \"\$o\"; exit \$rc
systemd-run --user true	systemd-run --user true
systemd-run --user --scope true	systemd-run --user --scope true
systemd-run --user --pipe echo	systemd-run --user --quiet --pipe echo piped
journalctl --user -n1	journalctl --user -n1 --no-pager --quiet
loginctl	loginctl --no-pager
busctl --user list	busctl --user list --no-pager
timedatectl status	timedatectl status
hostnamectl status	hostnamectl status"

# The survey route: for each tool a line "survey<TAB>LABEL<TAB>RC<TAB>FIRST
# LINE" (the first non-empty line of stdout and stderr, cut to 70
# characters); rc 124 is a timeout.
# shellcheck disable=SC2016 # the route expands its variables when it runs
um_survey_route() {
	local label cmd
	printf '%s\n' 'mkdir -p ~/.config/systemd/user
printf "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c \"ps axww -o pid,user,args >%%h/survey.out\"\n" >~/.config/systemd/user/pu-survey.service
rm -f ~/survey.out
t() {
	out=$(timeout 15 sh -c "$2" 2>&1 </dev/null); rc=$?
	first=$(printf "%s\n" "$out" | grep -v -e "^ *$" -e "^Hint: " | head -n 1 | cut -c1-70)
	printf "survey\t%s\t%s\t%s\n" "$1" "$rc" "$first"
}'
	while IFS=$'\t' read -r label cmd; do
		printf 't %q %q\n' "$label" "$cmd"
	done <<<"$UM_TOOLS"
	printf '%s\n' 'systemctl --user stop pu-survey.service >/dev/null 2>&1
if [ -f ~/survey.out ]; then echo "unit output: $(wc -l <~/survey.out) lines"; else echo "unit output: none"; fi'
}

# um_bus_off USER: mask USER's user bus (dbus.socket and dbus.service, as
# `systemctl --user mask` would) and end USER's manager and runtime
# directory, so that the next login starts without a bus. um_bus_on undoes
# it.
um_bus_off() {
	local d=/home/$1/.config/systemd/user
	mkdir -p "$d"
	ln -sf /dev/null "$d/dbus.socket"
	ln -sf /dev/null "$d/dbus.service"
	chown -R "$1:" "/home/$1/.config"
	um_user_gone "$1"
}
um_bus_on() {
	rm -f "/home/$1/.config/systemd/user/dbus.socket" "/home/$1/.config/systemd/user/dbus.service"
	um_user_gone "$1"
}
runtime_dir_gone() { ! findmnt -n "/run/user/$(uid_of "$1")" >/dev/null; }
um_user_gone() {
	loginctl disable-linger "$1" 2>/dev/null
	loginctl terminate-user "$1" 2>/dev/null
	systemctl stop "user@$(uid_of "$1").service" 2>/dev/null
	wait_until 30 runtime_dir_gone "$1"
}

# um_manager_up USER: USER's manager runs outside any session (lingering),
# for the runs outside a session: without a session of USER's, logind would
# stop it 10 s after the last logout, maybe in the middle of a run.
um_manager_up() {
	loginctl enable-linger "$1"
	wait_until 30 manager_socket_up "$1"
}
um_manager_down() { loginctl disable-linger "$1"; }
# um_unisolated USER ROUTE: ROUTE as USER outside any session (runuser is
# not enabled for the module), with the environment pam_systemd would set.
um_unisolated() {
	local uid bus
	uid=$(uid_of "$1")
	bus=
	[ -S "/run/user/$uid/bus" ] && bus="DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/$uid/bus"
	# shellcheck disable=SC2086 # bus is one word or none
	timeout "$T" runuser -u "$1" -- env -i PATH=/usr/bin:/bin HOME="/home/$1" USER="$1" \
		XDG_RUNTIME_DIR="/run/user/$uid" $bus sh "$ROUTES/$2.sh" </dev/null 2>&1
}

# um_ssh USER ROUTE: ROUTE in an isolated ssh session of USER.
um_ssh() {
	timeout "$T" ssh "$1@127.0.0.1" "sh $ROUTES/$2.sh" </dev/null 2>&1
}

# um_masked USER ROUTE: the rejected alternative. USER's isolated ssh
# session starts and waits; root enters its mount namespace and binds
# /dev/null over the manager's private socket there; then the session runs
# ROUTE.
um_masked() {
	local user=$1 uid pid h flags=/tmp/pu-um-flags
	uid=$(uid_of "$user")
	rm -rf "$flags"
	mkdir -p "$flags"
	chmod 1777 "$flags"
	timeout "$T" ssh "$user@127.0.0.1" "touch $flags/started
		while [ ! -e $flags/masked ]; do sleep 0.1; done
		sh $ROUTES/$2.sh" </dev/null >"$tmp/um-masked" 2>&1 &
	pid=$!
	wait_until 60 test -e "$flags/started" || { kill "$pid"; fail "the session did not start"; return 1; }
	h=$(helper_for sshd "$user")
	wait_until 30 test -S "/run/user/$uid/systemd/private" || echo "no private socket yet"
	nsenter -t "$h" -m mount --bind /dev/null "/run/user/$uid/systemd/private" ||
		echo "the bind mount failed"
	touch "$flags/masked"
	wait "$pid"
	cat "$tmp/um-masked"
}

# um_survey LABEL CMD...: run CMD (the survey route in some context), keep
# its survey lines in $tmp/survey/LABEL.
um_survey() {
	local label=$1
	shift
	mkdir -p "$tmp/survey"
	"$@" survey >"$tmp/survey/$label.raw" 2>&1
	tr -d '\r' <"$tmp/survey/$label.raw" | grep -E '^(survey|unit output)' >"$tmp/survey/$label"
}

# um_survey_table LABEL...: one line per tool, one column per context:
# "rc: first line".
um_survey_table() {
	local label tool
	printf 'tool'
	printf ' | %s' "$@"
	echo
	while IFS=$'\t' read -r tool _; do
		printf '%s' "$tool"
		for label in "$@"; do
			awk -F '\t' -v t="$tool" '$1 == "survey" && $2 == t { printf " | %s: %s", $3, $4; f = 1 }
				END { if (!f) printf " | (no result)" }' "$tmp/survey/$label"
		done
		echo
	done <<<"$UM_TOOLS"
}

# um_survey_contexts LABEL...: run the survey in each context and print the
# table as diagnostics (and into the run's survey.txt): isolated (an ssh
# session of alice's), isolated-nobus (of carol's, her user bus masked),
# unisolated and unisolated-nobus (the same users outside any session) and
# masked and masked-nobus (an ssh session in which root bound /dev/null
# over the manager's private socket: the rejected alternative). It asserts
# only that each survey ran.
um_survey_contexts() {
	local labels="" l
	route survey "$(um_survey_route)"
	um_user_gone "$USER_C"
	for l in "$@"; do
		case $l in
		*-nobus) um_bus_off "$USER_C" ;;
		esac
		case $l in
		isolated) um_survey "$l" um_ssh "$USER_A" ;;
		masked) um_survey "$l" um_masked "$USER_A" ;;
		unisolated) um_manager_up "$USER_A" && um_survey "$l" um_unisolated "$USER_A" && um_manager_down "$USER_A" ;;
		isolated-nobus) um_survey "$l" um_ssh "$USER_C" ;;
		masked-nobus) um_survey "$l" um_masked "$USER_C" ;;
		unisolated-nobus) um_manager_up "$USER_C" && um_survey "$l" um_unisolated "$USER_C" ;;
		esac
		case $l in
		*-nobus) um_bus_on "$USER_C" ;;
		esac
		if [ -s "$tmp/survey/$l" ]; then
			ok "user manager survey: $l ran"
			labels="$labels $l"
		else
			not_ok "user manager survey: $l ran"
			diag "$(head -n 30 "$tmp/survey/$l.raw")"
		fi
	done
	# shellcheck disable=SC2086 # a list of labels
	diag "$(um_survey_table $labels)"
	# shellcheck disable=SC2086
	um_survey_table $labels >>"$VM_OUT/survey.txt" 2>/dev/null
	for l in $labels; do
		diag "$l: $(grep '^unit output' "$tmp/survey/$l")"
	done
}

# sc_user_manager_survey: the survey in isolated sessions, with and without
# a user bus. sc_user_manager_survey_all (not run by default): in all six
# contexts.
sc_user_manager_survey() { um_survey_contexts isolated isolated-nobus; }
sc_user_manager_survey_all() { # manual
	um_survey_contexts isolated isolated-nobus unisolated unisolated-nobus masked masked-nobus
}

# ---- systemctl --user through the session's relay (user_manager=relay) -------

# Flags the sessions and root wait for; every user may create them.
UM_FLAGS=/tmp/pu-um-flags
RELAY_COMM=pam_unshare-bus
# The helper's argv[0] (what ps -o args shows as PID 1 of a session).
HELPER_NAME=$(basename "$HELPER")

um_flags_reset() {
	rm -rf "$UM_FLAGS"
	mkdir -p "$UM_FLAGS"
	chmod 1777 "$UM_FLAGS"
}

# um_relay: what an everyday user does. Reload the manager, start a unit
# (a oneshot that writes what it sees with ps) and read its status; the
# output names the session's PID 1 and whether a user bus exists.
route um_relay "$(
	cat <<'EOF'
echo "pid 1: $(ps -o args= -p 1)"
if [ -S "$XDG_RUNTIME_DIR/bus" ]; then echo "user bus: yes"; else echo "user bus: none"; fi
mkdir -p ~/.config/systemd/user
printf '[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c "ps axww -o pid,user,args >%%h/relay.out"\n' >~/.config/systemd/user/pu-relay.service
rm -f ~/relay.out
systemctl --user daemon-reload && echo "daemon-reload: ok"
systemctl --user start pu-relay.service && echo "start: ok"
systemctl --user status --no-pager pu-relay.service | grep 'Active:'
systemctl --user stop pu-relay.service
echo "--- what the unit saw"
cat ~/relay.out
EOF
)"

# um_relay_ok FILE [none]: FILE is um_relay's output: daemon-reload and
# start worked, the unit was active and ran ps, and bob's markers are not
# in it; with "none", the session had no user bus.
um_relay_ok() {
	local f=$1
	tr -d '\r' <"$f" >"$f.clean"
	cat "$f.clean"
	grep -qx 'daemon-reload: ok' "$f.clean" || { fail "systemctl --user daemon-reload failed"; return 1; }
	grep -qx 'start: ok' "$f.clean" || { fail "systemctl --user start failed"; return 1; }
	grep -q 'Active: active (exited)' "$f.clean" || { fail "systemctl --user status does not show the unit active"; return 1; }
	sed -n '/^--- what the unit saw/,$p' "$f.clean" | grep -q ' ps axww' ||
		{ fail "the unit did not run ps"; return 1; }
	! grep -F "$MARK" "$f.clean" || { fail "bob's marker is visible"; return 1; }
	if [ "${2:-}" = none ]; then
		grep -qx 'user bus: none' "$f.clean" || { fail "the session has a user bus"; return 1; }
	fi
}

# um_isolated_works USER [none]: um_relay in an isolated ssh session of USER.
um_isolated_works() {
	um_ssh "$1" um_relay >"$tmp/um-relay"
	um_relay_ok "$tmp/um-relay" "${2:-}" || return 1
	grep -q "^pid 1: $HELPER_NAME " "$tmp/um-relay.clean" || { fail "not an isolated session"; return 1; }
}

# um_unisolated_works USER: um_relay as USER outside any session.
um_unisolated_works() {
	um_manager_up "$1"
	um_unisolated "$1" um_relay >"$tmp/um-relay"
	um_manager_down "$1"
	um_relay_ok "$tmp/um-relay" || return 1
	grep -q "^pid 1: /sbin/init" "$tmp/um-relay.clean" || grep -q "^pid 1: /lib/systemd/systemd" "$tmp/um-relay.clean" ||
		{ fail "PID 1 is not the host's init"; return 1; }
}

# um_late: the session reloads the manager, waits until root has restarted
# it, then reloads again, retrying for up to 30 s: the new manager's
# socket appears after the session opened.
route um_late "$(
	cat <<EOF
systemctl --user daemon-reload && echo "before the restart: ok"
touch $UM_FLAGS/started
while [ ! -e $UM_FLAGS/restarted ]; do sleep 0.1; done
n=0
end=\$((\$(date +%s) + 30))
until systemctl --user daemon-reload 2>/dev/null; do
	n=\$((n + 1))
	[ \$(date +%s) -lt \$end ] || break
	sleep 0.1
done
systemctl --user daemon-reload && echo "after the restart: ok (\$n failed tries first)"
EOF
)"

# um_late_socket: alice's user manager restarts while her isolated ssh
# session stays open; the same session reaches the new manager.
um_late_socket() {
	local uid pid
	uid=$(uid_of "$USER_A")
	um_flags_reset
	timeout "$T" ssh "$USER_A@127.0.0.1" "sh $ROUTES/um_late.sh" </dev/null >"$tmp/um-late" 2>&1 &
	pid=$!
	wait_until 60 test -e "$UM_FLAGS/started" || { kill "$pid"; fail "the session did not start"; cat "$tmp/um-late"; return 1; }
	# Type=notify: restart returns once the new manager is ready.
	systemctl restart "user@$uid.service" || echo "systemctl restart user@$uid.service failed"
	wait_until 30 systemctl is-active -q "user@$uid.service" || echo "user@$uid.service is not active"
	wait_until 30 manager_socket_up "$USER_A" || echo "no manager socket after the restart"
	touch "$UM_FLAGS/restarted"
	wait "$pid"
	tr -d '\r' <"$tmp/um-late"
	grep -qx 'before the restart: ok' "$tmp/um-late" || { fail "systemctl --user failed before the restart"; return 1; }
	grep -q '^after the restart: ok' "$tmp/um-late" || { fail "systemctl --user failed after the restart"; return 1; }
}

# um_first: the first of two scope=user sessions; it reloads once before
# and once after the second login.
route um_first "$(
	cat <<EOF
systemctl --user daemon-reload && echo "first session: ok"
touch $UM_FLAGS/first
while [ ! -e $UM_FLAGS/second ]; do sleep 0.1; done
systemctl --user daemon-reload && echo "first session, after the second login: ok"
EOF
)"

alice_user_helpers() {
	local h
	for h in $(helper_pids); do
		case $(tr '\0' ' ' <"/proc/$h/cmdline") in *" -U "*" $USER_A ") echo "$h" ;; esac
	done
}

# um_per_user: with scope=user, a second login of alice joins the first's
# namespace, and systemctl --user works in both.
um_per_user() {
	local pid helpers rc=0
	um_flags_reset
	timeout "$T" ssh "$USER_A@127.0.0.1" "sh $ROUTES/um_first.sh" </dev/null >"$tmp/um-first" 2>&1 &
	pid=$!
	wait_until 60 test -e "$UM_FLAGS/first" || { kill "$pid"; fail "the first session did not start"; cat "$tmp/um-first"; return 1; }
	um_ssh "$USER_A" um_relay >"$tmp/um-relay"
	helpers=$(alice_user_helpers | wc -l)
	touch "$UM_FLAGS/second"
	wait "$pid"
	echo "--- the second session:"
	um_relay_ok "$tmp/um-relay" || rc=1
	grep -q "^pid 1: $HELPER_NAME .* -U " "$tmp/um-relay.clean" || { echo "PID 1 is not a per-user helper"; rc=1; }
	echo "--- the first session:"
	tr -d '\r' <"$tmp/um-first"
	grep -qx 'first session: ok' "$tmp/um-first" || { echo "systemctl --user failed in the first session"; rc=1; }
	grep -q '^first session, after the second login: ok' "$tmp/um-first" ||
		{ echo "systemctl --user failed in the first session after the second login"; rc=1; }
	[ "$helpers" = 1 ] || { echo "alice had $helpers per-user helpers while both sessions ran"; rc=1; }
	return "$rc"
}

# ---- what an attacker in the session can do ---------------------------------

# um_attack: alice tries bob's manager socket directly, then signals her
# session's PID 1 (the helper, which runs the relay), then uses the relay.
route um_attack "$(
	cat <<EOF
echo "bob's manager: \$(env -u DBUS_SESSION_BUS_ADDRESS XDG_RUNTIME_DIR=/run/user/$(uid_of "$USER_B") systemctl --user show -p Version 2>&1)"
for s in TERM INT HUP USR1 STOP KILL; do
	echo "kill -\$s 1: \$(kill -s \$s 1 2>&1 && echo delivered)"
done
echo "pid 1 state: \$(ps -o stat=,args= -p 1)"
systemctl --user daemon-reload && echo "after the signals: ok"
EOF
)"

# um_attacker: bob's manager answers alice with "Permission denied" as
# before (systemd 252: the kernel refuses the connect), or systemctl itself
# refuses another user's runtime directory with "Operation not permitted"
# (systemd 257); no signal reaches her session's helper, whose relay still
# works.
um_attacker() {
	um_ssh "$USER_A" um_attack >"$tmp/um-attack"
	tr -d '\r' <"$tmp/um-attack" | tee "$tmp/um-attack.clean"
	grep -Eq "^bob's manager: .*(Permission denied|Operation not permitted)" "$tmp/um-attack.clean" ||
		{ fail "alice's session reaches bob's manager"; return 1; }
	! grep -q '^kill .*delivered' "$tmp/um-attack.clean" || { fail "a signal reached the helper"; return 1; }
	grep -q "^pid 1 state: [SR][^T]* $HELPER_NAME " "$tmp/um-attack.clean" || { fail "the helper is stopped or gone"; return 1; }
	grep -qx 'after the signals: ok' "$tmp/um-attack.clean" || { fail "systemctl --user failed after the signals"; return 1; }
}

# um_bob_reaches_his_manager: the same query as bob, outside any session,
# works (so the check above can fail).
um_bob_reaches_his_manager() {
	local uid
	uid=$(uid_of "$USER_B")
	timeout "$T" runuser -u "$USER_B" -- env -u DBUS_SESSION_BUS_ADDRESS XDG_RUNTIME_DIR="/run/user/$uid" \
		systemctl --user show -p Version </dev/null 2>&1 | tee "$tmp/um-bob"
	grep -q '^Version=' "$tmp/um-bob"
}

# um_hold: a oneshot unit that runs until root releases it, so that
# `systemctl --user start` keeps its connection open. The session reports
# the relay processes it sees before, during and after that connection.
route um_hold "$(
	cat <<EOF
relays() { ps -e -o user=,comm= | grep -w $RELAY_COMM; }
no_relay() {
	n=0
	while relays >/dev/null && [ \$n -lt 100 ]; do sleep 0.1; n=\$((n + 1)); done
	relays || echo none
}
mkdir -p ~/.config/systemd/user
printf '[Service]\nType=oneshot\nExecStart=/bin/sh -c "while [ ! -e $UM_FLAGS/release ]; do sleep 0.1; done"\n' >~/.config/systemd/user/pu-hold.service
systemctl --user daemon-reload
echo "relay before: \$(no_relay)"
systemctl --user start pu-hold.service && echo "held start: ok" &
n=0
until relays >/dev/null || [ \$n -ge 300 ]; do sleep 0.1; n=\$((n + 1)); done
echo "relay during: \$(relays || echo none)"
touch $UM_FLAGS/holding
wait
echo "relay after: \$(no_relay)"
EOF
)"

# um_relay_lifetime: the relay process exists in alice's session only while
# a connection is open; it runs as alice without capabilities; the host
# never sees the session's mount over the manager's socket; after logout no
# relay, helper or mount is left.
um_relay_lifetime() {
	local pid r rc=0 uid
	uid=$(uid_of "$USER_A")
	mark_leftovers
	um_flags_reset
	timeout "$T" ssh "$USER_A@127.0.0.1" "sh $ROUTES/um_hold.sh" </dev/null >"$tmp/um-hold" 2>&1 &
	pid=$!
	wait_until 60 test -e "$UM_FLAGS/holding" || echo "the session never saw its relay"
	r=$(pgrep -u "$USER_A" -x "$RELAY_COMM")
	echo "host: relay processes of alice: ${r:-none}" | tee "$tmp/um-relay-host"
	for r in $r; do
		{
			proc_line "$r"
			grep -E '^(Uid|Gid|Groups|CapEff|NoNewPrivs):' "/proc/$r/status"
			find "/proc/$r/fd" -mindepth 1 -printf '  fd %f -> %l\n'
			echo "dumpable (alice can read its fds): $(runuser -u "$USER_A" -- ls "/proc/$r/fd" >/dev/null 2>&1 && echo yes || echo no)"
		} | tee -a "$tmp/um-relay-host"
		awk '/^Uid:/ { exit !($2 == u && $3 == u && $4 == u && $5 == u) }' u="$uid" "/proc/$r/status" ||
			{ echo "the relay does not run as alice"; rc=1; }
		grep -q '^CapEff:[[:space:]]*0*$' "/proc/$r/status" || { echo "the relay has capabilities"; rc=1; }
	done
	if findmnt -rn -o TARGET | grep -F '/systemd/private'; then
		echo "the host sees a mount over a manager socket"
		rc=1
	fi
	touch "$UM_FLAGS/release"
	wait "$pid"
	tr -d '\r' <"$tmp/um-hold" | tee "$tmp/um-hold.clean"
	grep -qx 'relay before: none' "$tmp/um-hold.clean" || { echo "a relay ran before the connection"; rc=1; }
	grep -q "^relay during: $USER_A \+$RELAY_COMM" "$tmp/um-hold.clean" || { echo "no relay of alice's during the connection"; rc=1; }
	grep -qx 'held start: ok' "$tmp/um-hold.clean" || { echo "the held systemctl --user start failed"; rc=1; }
	grep -qx 'relay after: none' "$tmp/um-hold.clean" || { echo "the relay outlived the connection"; rc=1; }
	host_clean || rc=1
	if pgrep -a -x "$RELAY_COMM"; then
		echo "relay processes left on the host"
		rc=1
	fi
	if findmnt -rn -o TARGET | grep -F '/systemd/private'; then
		echo "a mount over a manager socket is left on the host"
		rc=1
	fi
	return "$rc"
}

# ---- a flood of connections to the relay ------------------------------------

# The relay's cap on connections, from its one definition (run.sh copies
# init.h next to this file).
RELAY_MAX=$(sed -n 's/^#define RELAY_MAX_CONNS \([0-9]*\)$/\1/p' "$here/init.h" "$here/../../nsinit/init/init.h" 2>/dev/null)
# Connections the flood opens.
FLOOD_N=300

# um_flood: alice, under `ulimit -u 40`, opens FLOOD_N connections to her
# manager's socket (the relay, in her session), sends nothing, and waits
# until the helper has closed every one over the cap; she holds the rest
# until root releases them, then waits for her relay processes to end and
# runs a fresh systemctl --user. The guest has perl (perl-base), not python;
# the route runs in bash, for ulimit -u.
route um_flood "$(
	cat <<EOF
ulimit -u 40 || echo "ulimit -u 40 failed"
echo "process limit: \$(ulimit -u)"
perl -e '
use strict;
use Socket;
use IO::Select;
my (\$path, \$n, \$cap, \$flags) = @ARGV;
my (@socks, \$failed);
for (1 .. \$n) {
	socket(my \$s, AF_UNIX, SOCK_STREAM, 0) or die "socket: \$!";
	if (connect(\$s, pack_sockaddr_un(\$path))) { push @socks, \$s } else { \$failed++; close \$s }
}
my \$sel = IO::Select->new(@socks);
my \$closed = 0;
my \$end = time + 120;
# Closed: end-of-file or a reset, as a client sees it.
while (\$closed < @socks - \$cap && time < \$end) {
	for my \$s (\$sel->can_read(0.5)) {
		my \$got = sysread(\$s, my \$buf, 1);
		if (!\$got) { \$closed++; \$sel->remove(\$s) }
	}
}
printf "flood: connected=%d failed=%d closed=%d open=%d\n", scalar @socks, \$failed // 0, \$closed, @socks - \$closed;
open(my \$f, ">", "\$flags/holding") or die;
close \$f;
sleep 1 until -e "\$flags/release";
close \$_ for @socks;
' "\$XDG_RUNTIME_DIR/systemd/private" $FLOOD_N $RELAY_MAX $UM_FLAGS
n=0
while ps -e -o comm= | grep -qx $RELAY_COMM && [ \$n -lt 300 ]; do sleep 0.1; n=\$((n + 1)); done
echo "relay processes after the release: \$(ps -e -o comm= | grep -cx $RELAY_COMM)"
systemctl --user daemon-reload && echo "after the flood: ok"
EOF
)"

# um_count: how many relay connections one `systemctl --user start` and
# one `systemd-run --user --wait` hold open while they wait for their unit:
# the unit runs until the session releases it, and the session counts its
# relay processes meanwhile (the unit itself cannot: a relay process is not
# dumpable, so its /proc entry is root's and ProtectProc= hides it).
route um_count "$(
	cat <<EOF
mkdir -p ~/.config/systemd/user
printf '[Service]\nType=oneshot\nExecStart=/bin/sh -c "touch %%h/count.started; while [ ! -e %%h/count.release ]; do sleep 0.1; done"\n' >~/.config/systemd/user/pu-count.service
systemctl --user daemon-reload
count() {
	rm -f ~/count.started ~/count.release
	"\$@" &
	n=0
	until [ -e ~/count.started ] || [ \$n -ge 300 ]; do sleep 0.1; n=\$((n + 1)); done
	echo "\$1 \$2 \$3: \$(ps -e -o comm= | grep -cx $RELAY_COMM) relay connections"
	touch ~/count.release
	wait
}
count systemctl --user start pu-count.service
count systemd-run --user --quiet --wait sh -c "touch \$HOME/count.started; while [ ! -e \$HOME/count.release ]; do sleep 0.1; done"
EOF
)"

# alice_relays: how many relay processes of alice's run on the machine.
alice_relays() { pgrep -u "$USER_A" -x "$RELAY_COMM" | grep -c . || true; }

# um_flood_bounded: while alice holds the flood, her relay processes stay
# at the cap (sampled five times); every connection over it was closed;
# the helper logged it once.
um_flood_bounded() {
	local pid i n rc=0 since
	since=$(date +%s)
	mark_leftovers
	um_flags_reset
	timeout 600 ssh "$USER_A@127.0.0.1" "bash $ROUTES/um_flood.sh" </dev/null >"$tmp/um-flood" 2>&1 &
	pid=$!
	wait_until 300 test -e "$UM_FLAGS/holding" || { echo "the flood never settled"; rc=1; }
	for i in 1 2 3 4 5; do
		n=$(alice_relays)
		echo "sample $i: $n relay processes of alice's"
		[ "$n" -le "$RELAY_MAX" ] || rc=1
		[ "$i" = 5 ] || sleep 0.5
	done
	[ "$n" -eq "$RELAY_MAX" ] || { echo "want $RELAY_MAX, the cap"; rc=1; }
	touch "$UM_FLAGS/release"
	wait "$pid"
	tr -d '\r' <"$tmp/um-flood" | tee "$tmp/um-flood.clean"
	grep -qx 'process limit: 40' "$tmp/um-flood.clean" || { echo "the session's limit was not 40"; rc=1; }
	grep -qx "flood: connected=$FLOOD_N failed=0 closed=$((FLOOD_N - RELAY_MAX)) open=$RELAY_MAX" "$tmp/um-flood.clean" ||
		{ echo "want $FLOOD_N connected, all but $RELAY_MAX closed"; rc=1; }
	journal_since "$since" | grep -F "relay serves $RELAY_MAX connections" >"$tmp/um-flood.log"
	cat "$tmp/um-flood.log"
	[ "$(grep -c . "$tmp/um-flood.log")" -eq 1 ] || { echo "want one log line"; rc=1; }
	return "$rc"
}

um_flood_after() {
	grep -qx 'relay processes after the release: 0' "$tmp/um-flood.clean" || { fail "relay processes outlived the flood"; return 1; }
	grep -qx 'after the flood: ok' "$tmp/um-flood.clean" || { fail "systemctl --user failed after the flood"; return 1; }
	host_clean || return 1
	if pgrep -a -x "$RELAY_COMM"; then
		echo "relay processes left on the host"
		return 1
	fi
}

# ---- doctor ---------------------------------------------------------------------

# um_pam_args ARGS: the module line of every service file that has one,
# with the words of ARGS added (none: as runner.sh wrote it).
um_pam_args() {
	local f a line=$PAM_LINE
	for a in $1; do
		case " $line " in
		*" $a "*) ;; # already there (VM_PAM_ARGS): twice is a bad argument
		*) line="$line $a" ;;
		esac
	done
	grep -ls '^session required pam_unshare.so' /etc/pam.d/* | while read -r f; do
		sed -i "s|^session required pam_unshare.so.*\$|$line|" "$f"
	done
}

# um_doctor EXPECT: with alice logged in (an ssh session waiting for a
# flag), pam-unshare doctor reports systemctl --user as working (EXPECT=ok)
# or does not (EXPECT=not).
um_doctor() {
	local pid rc=0
	um_flags_reset
	timeout "$T" ssh "$USER_A@127.0.0.1" "touch $UM_FLAGS/in; while [ ! -e $UM_FLAGS/out ]; do sleep 0.1; done" \
		</dev/null >/dev/null 2>&1 &
	pid=$!
	wait_until 60 test -e "$UM_FLAGS/in" || echo "alice's session did not start"
	"$CLI" doctor >"$tmp/um-doctor" 2>&1
	touch "$UM_FLAGS/out"
	wait "$pid"
	cat "$tmp/um-doctor"
	if [ "$1" = ok ]; then
		grep -q '^✓ systemctl --user: ' "$tmp/um-doctor" || rc=1
	else
		! grep -q '^✓ systemctl --user' "$tmp/um-doctor" || rc=1
		grep -q 'systemctl --user' "$tmp/um-doctor" || { echo "doctor does not mention systemctl --user"; rc=1; }
	fi
	return "$rc"
}

sc_user_manager() {
	check "user manager: bob's markers are running (root sees both)" markers_up
	um_user_gone "$USER_C"
	check "user manager: alice's isolated ssh session: systemctl --user daemon-reload, start of a unit, its status; the unit sees none of bob's markers" \
		um_isolated_works "$USER_A"
	um_bus_off "$USER_C"
	check "user manager: the same in carol's isolated ssh session without a user bus (dbus.socket masked)" \
		um_isolated_works "$USER_C" none
	um_bus_on "$USER_C"
	check "user manager: systemctl --user from a process of alice's outside any session still works" \
		um_unisolated_works "$USER_A"
	check "user manager: alice's manager restarts while her isolated session stays open; the session reaches the new one" \
		um_late_socket
	diag "$(grep -a '^after the restart' "$tmp/um-late" 2>/dev/null | tr -d '\r')"
	um_pam_args "scope=user"
	check "user manager: scope=user: a second login of alice joins, systemctl --user works in both" um_per_user
	um_pam_args ""
	check "user manager: from alice's session bob's manager socket is refused (Permission denied), no signal reaches her helper" \
		um_attacker
	check "user manager: bob himself reaches his manager the same way (the check above can fail)" \
		um_bob_reaches_his_manager
	check "user manager: the relay runs as alice only while a connection is open; the host never sees the mount; nothing is left after logout" \
		um_relay_lifetime
	diag "$(cat "$tmp/um-relay-host" 2>/dev/null)"
	check "user manager: pam-unshare doctor reports ✓ systemctl --user with alice logged in" um_doctor ok
	um_pam_args "user_manager=off"
	check "user manager: with user_manager=off configured, doctor does not claim ✓ systemctl --user" um_doctor not
	um_pam_args ""
	markers_down
	check "after the user-manager scenario: nothing left in another PID namespace" host_clean
}

# sc_relay_flood: alice floods her session's relay; root's helper must not
# fork for her without bound.
sc_relay_flood() {
	um_ssh "$USER_A" um_count >"$tmp/um-count"
	diag "relay connections open while one command runs: $(tr -d '\r' <"$tmp/um-count" | tr '\n' ';')"
	check "relay flood: alice (ulimit -u 40) holds $FLOOD_N connections; her relay processes stay at the cap ($RELAY_MAX), the rest are closed, one log line" \
		um_flood_bounded
	check "relay flood: after she releases them no relay process is left and a fresh systemctl --user works; nothing is left after logout" \
		um_flood_after
}

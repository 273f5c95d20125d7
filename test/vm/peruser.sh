# shellcheck shell=bash
# peruser.sh - scope=user: one namespace per user, with and without linger,
# over ssh and su, and nested sudo from one user's session to another's.
# Sourced by scenarios.sh.
# tmp, T, USER_A, CLI and the TAP and wait helpers come from scenarios.sh,
# the guest's observers from guest.sh.
# shellcheck disable=SC2154,SC2153

# user_ps USER: what ps -e shows in a new ssh session of USER.
user_ps() { timeout "$T" ssh "$1@127.0.0.1" 'ps -e -o args=' </dev/null 2>&1; }
two_ssh_share() {
	local a b out rc=0
	mark_leftovers
	ssh "$USER_A@127.0.0.1" 'sleep 31' </dev/null >/dev/null 2>&1 &
	a=$!
	su bob -c 'sleep 32' </dev/null >/dev/null 2>&1 &
	b=$!
	wait_until 60 pgrep -u "$USER_A" -x -f 'sleep 31' >/dev/null
	wait_until 60 pgrep -u bob -x -f 'sleep 32' >/dev/null
	out=$(user_ps "$USER_A")
	echo "$out"
	grep -qx 'sleep 31' <<<"$out" || { echo "alice's other ssh session is not visible"; rc=1; }
	! grep -qx 'sleep 32' <<<"$out" || { echo "bob's session is visible to alice"; rc=1; }
	grep -q '^pam_unshare-init .* -U ' <<<"$out" || { echo "PID 1 is not a per-user helper"; rc=1; }
	kill "$a" "$b" 2>/dev/null
	wait "$a" "$b" 2>/dev/null
	return "$rc"
}
linger_survives() {
	local out
	mark_leftovers
	timeout "$T" ssh "$USER_A@127.0.0.1" 'nohup sleep 1001 >/dev/null 2>&1 &' </dev/null ||
		{ fail "ssh exited $?"; return 1; }
	sleep 2
	pgrep -u "$USER_A" -x -f 'sleep 1001' || { fail "the nohup sleep did not survive logout"; return 1; }
	out=$(user_ps "$USER_A")
	echo "$out"
	grep -qx 'sleep 1001' <<<"$out" || { fail "the next login does not see it"; return 1; }
	out=$($CLI status)
	echo "$out"
	grep -Eq "^$USER_A +user +[0-9]+ +yes " <<<"$out" || { fail "status does not show the lingering namespace"; return 1; }
	timeout "$T" ssh "$USER_A@127.0.0.1" 'pkill -x sleep' </dev/null
	wait_until 10 sh -c "! pgrep -u $USER_A -x sleep" || { fail "the next login could not kill it"; return 1; }
	host_clean
}
stop_ends() {
	local out
	mark_leftovers
	timeout "$T" ssh "$USER_A@127.0.0.1" 'nohup sleep 1002 >/dev/null 2>&1 &' </dev/null
	wait_until 10 pgrep -u "$USER_A" -x -f 'sleep 1002' >/dev/null || { fail "no lingering sleep"; return 1; }
	out=$(timeout "$T" su bob -c "$CLI stop $USER_A" </dev/null 2>&1)
	echo "bob: $out"
	pgrep -u "$USER_A" -x -f 'sleep 1002' >/dev/null || { fail "bob stopped alice's namespace"; return 1; }
	$CLI stop "$USER_A" || { fail "pam-unshare stop failed"; return 1; }
	! pgrep -u "$USER_A" -x -f 'sleep 1002' || { fail "the sleep survived stop"; return 1; }
	host_clean
}
sc_peruser() {
	set_pam_args "scope=user linger"
	check "scope=user: two ssh sessions of alice see each other and nothing of bob" two_ssh_share
	check "scope=user linger: a nohup sleep survives logout, the next login sees and kills it" linger_survives
	check "pam-unshare stop: bob cannot stop alice's namespace, root can" stop_ends
	set_pam_args "scope=user"
	check "scope=user without linger: nohup sleep over ssh is gone after logout" ssh_nohup
	set_pam_args ""
	check "after the per-user scenario: nothing left in another PID namespace" host_clean
}

# 12b: a host that runs inside a session must not make the per-user
# namespace of another user there. alice may run one command as bob
# (sudoers); from her ssh session she runs it while bob has no namespace.
# sudo's PAM session then runs in alice's PID namespace: bob's namespace
# must not be created below hers and published for his next login.
NESTED_GO=/run/vmtest-nested-go
nested_sudo() {
	local a b p found rc=0 sock out
	mark_leftovers
	sock=/run/pam_unshare/$(id -u bob).sock
	rm -f "$NESTED_GO"
	echo 'alice ALL=(bob) NOPASSWD: /bin/sleep' >/etc/sudoers.d/vmtest-nested
	chmod 0440 /etc/sudoers.d/vmtest-nested
	# A namespace of bob from an earlier scenario may still be ending;
	# once it has, its socket file is stale (the next creator replaces
	# it), and removing it lets the check below see a new one.
	wait_until 30 sh -c "! $CLI status | grep -Eq '^bob +user '" ||
		{ fail "bob still has a namespace: $($CLI status)"; return 1; }
	rm -f "$sock"
	timeout "$T" ssh "$USER_A@127.0.0.1" "sudo -n -u bob /bin/sleep 1021 >/dev/null 2>&1 &
		while [ ! -e $NESTED_GO ]; do sleep 0.2; done; ps -e -o args=" </dev/null >"$tmp/nested.alice" 2>&1 &
	a=$!
	wait_until 60 pgrep -u bob -x -f '/bin/sleep 1021' >/dev/null || { fail "alice's sudo -u bob did not start"; rc=1; }
	if [ -e "$sock" ]; then
		echo "alice's sudo published bob's rendezvous $sock"
		rc=1
	fi
	# bob logs in, with a marker in his command line.
	timeout "$T" ssh bob@127.0.0.1 'sleep 1022' </dev/null >/dev/null 2>&1 &
	b=$!
	wait_until 60 pgrep -u bob -x -f 'sleep 1022' >/dev/null || { fail "bob's ssh session did not start"; rc=1; }
	# His own helper, made by sshd, hangs right below the host's PID
	# namespace (NSpid: its host PID and 1).
	found=0
	for p in $(pgrep -x "$HELPER_COMM"); do
		tr '\0' ' ' <"/proc/$p/cmdline" | grep -q ' sshd bob $' || continue
		found=1
		awk '/^NSpid:/ { if (NF != 3) exit 1 }' "/proc/$p/status" ||
			{ echo "bob's helper is not in a child of the host's PID namespace: $(proc_line "$p")"; rc=1; }
	done
	[ "$found" = 1 ] || { echo "bob's ssh login made no namespace of its own (it joined one)"; rc=1; }
	touch "$NESTED_GO"
	wait "$a"
	out=$(cat "$tmp/nested.alice")
	echo "alice's ps:"
	echo "$out"
	! grep -qx 'sleep 1022' <<<"$out" || { echo "alice sees bob's login"; rc=1; }
	# alice's logout ends her session with everything in it, her sudo too.
	wait_until 60 sh -c "! pgrep -u bob -x -f '/bin/sleep 1021'" >/dev/null ||
		{ echo "alice's sudo sleep outlived her session"; rc=1; }
	pgrep -u bob -x -f 'sleep 1022' >/dev/null || { echo "alice's logout ended bob's login"; rc=1; }
	kill "$b" 2>/dev/null
	wait "$b" 2>/dev/null
	rm -f /etc/sudoers.d/vmtest-nested "$NESTED_GO"
	[ "$rc" = 0 ] && host_clean
}
sc_nested_peruser() {
	set_pam_args "scope=user"
	check "scope=user: alice's sudo -u bob from her session neither publishes bob's namespace nor lets her see or end his login" \
		nested_sudo
	set_pam_args ""
	check "after the nested per-user scenario: nothing left in another PID namespace" host_clean
}

# shellcheck shell=bash
# The admin-trust scenarios, sourced by scenarios.sh after user_manager.sh:
# option names that do not resolve refuse sessions, "pam-unshare run
# --user" never shares root's terminal, and doctor's systemctl --user check
# talks only to a user's real manager (pam_unshare(8), pam-unshare(8)).
# T, USER_A, CLI, set_pam_args, refused, journal_since, host_clean,
# um_manager_up, um_user_gone, uid_of, the TAP and wait helpers come from
# scenarios.sh, doors.sh and user_manager.sh.
# shellcheck disable=SC2154,SC2153

# ---- only_groups names a group that does not exist ---------------------------

names_logged() {
	local since=$1
	wait_until 5 sh -c "journalctl -q --since=@$since -o cat | grep -q 'only_groups=vmtest-nosuch: no such group; refusing the session'" || {
		journal_since "$since" | grep -E 'pam_unshare' | tail -n 10
		fail "no journal line names only_groups=vmtest-nosuch"
		return 1
	}
	journal_since "$since" | grep 'only_groups=vmtest-nosuch' | head -n 3
}
sc_names_refused() {
	local since
	since=$(date +%s)
	mark_leftovers
	set_pam_args "only_groups=vmtest-nosuch"
	check "only_groups=vmtest-nosuch: ssh login is refused, the command does not run" \
		refused ssh ssh "$USER_A@127.0.0.1" 'touch /var/tmp/vmtest-marker'
	check "only_groups=vmtest-nosuch: su is refused" \
		refused su su "$USER_A" -c 'touch /var/tmp/vmtest-marker'
	check "only_groups=vmtest-nosuch: sudo is refused and does not run the command" \
		refused sudo sudo -u "$USER_A" touch /var/tmp/vmtest-marker
	check "only_groups=vmtest-nosuch: the journal names the option and the value" names_logged "$since"
	check "only_groups=vmtest-nosuch: doctor names it" \
		sh -c "$CLI doctor 2>&1 | grep -F 'only_groups=vmtest-nosuch: no such group (service '"
	set_pam_args ""
	check "only_groups=vmtest-nosuch: host untouched, nothing left in another PID namespace" host_clean
}

# ---- run --user under root's terminal ----------------------------------------

# The caller: a root shell on a terminal of its own (script(1)). alice's
# command pushes a line with TIOCSTI (0x5412) into its stdin and its
# /dev/tty; afterwards the caller reads, without waiting, what is queued on
# its terminal. Debian 12's kernel (6.1) allows TIOCSTI on one's
# controlling terminal.
# shellcheck disable=SC2016 # perl's variables
RUN_PTY_PROBE='my ($s) = (split / /, (do { local (@ARGV, $/) = "/proc/self/stat"; <> } =~ s/.*\) //r))[3];
my ($t) = (split / /, (do { local (@ARGV, $/) = "/proc/self/stat"; <> } =~ s/.*\) //r))[4];
print "probe: pid=$$ sid=$s tty_nr=$t\n";
for my $c (split //, "echo vmtest-injected\n") { ioctl(STDIN, 0x5412, $c) }
if (open(my $tty, "+<", "/dev/tty")) { for my $c (split //, "echo vmtest-injected\n") { ioctl($tty, 0x5412, $c) } }
exit 7;'
run_pty_caller() {
	cat <<-EOF
		read -r _ _ _ _ _ sid tty_nr _ </proc/\$\$/stat
		echo "caller: sid=\$sid tty_nr=\$tty_nr"
		$CLI run --user $USER_A -- perl -e '$RUN_PTY_PROBE'
		echo "run-rc=\$?"
		stty -icanon min 0 time 0
		echo "queued: [\$(head -c 200 | tr -dc 'a-z-')]"
	EOF
}
run_user_pty() {
	local out probe caller
	run_pty_caller >"$tmp/caller.sh"
	out=$(timeout "$T" script -qec "bash $tmp/caller.sh" /dev/null </dev/null | tr -d '\r')
	echo "$out"
	# script(1) passes its stdin's end on as a NUL, which the command's
	# terminal echoes as "^@": the probe line may follow it.
	probe=$(grep -o 'probe: .*' <<<"$out") || { fail "the command's output did not reach the caller"; return 1; }
	caller=$(grep '^caller: ' <<<"$out")
	[ "$(grep -o 'tty_nr=[0-9]*' <<<"$probe")" != "$(grep -o 'tty_nr=[0-9]*' <<<"$caller")" ] ||
		{ fail "alice's command is on root's terminal"; return 1; }
	grep -q 'probe: pid=2 sid=2 ' <<<"$probe" || { fail "alice's command does not lead a session of its own"; return 1; }
	! grep -q 'queued: .*vmtest-injected' <<<"$out" || { fail "alice's TIOCSTI reached root's terminal"; return 1; }
	grep -qx 'run-rc=7' <<<"$out" || fail "the exit status 7 did not pass through"
}
sc_run_user_pty() {
	mark_leftovers
	check "run --user alice under root's terminal: own terminal and session, TIOCSTI does not reach root, status passes" run_user_pty
	check "run --user: nothing left in another PID namespace" host_clean
}

# ---- doctor and a fake manager planted by alice --------------------------------

# doctor_manager_line: doctor --manager-user alice's systemctl --user line;
# fails on any control character in doctor's whole output, or a hang.
doctor_manager_line() {
	local out rc=0
	out=$(timeout "$T" "$CLI" doctor --manager-user "$USER_A" 2>&1) || rc=$?
	grep -E '^(✓|!|✗|-) systemctl --user: ' <<<"$out"
	[ "$rc" -ne 124 ] || { fail "doctor did not finish"; return 1; }
	if LC_ALL=C grep -q '[[:cntrl:]]' <<<"$out"; then
		fail "doctor printed control characters: $(LC_ALL=C grep '[[:cntrl:]]' <<<"$out" | cat -v)"
		return 1
	fi
}
doctor_real_manager() {
	local out
	out=$(doctor_manager_line) || { echo "$out"; return 1; }
	echo "$out"
	grep -q "^✓ systemctl --user: a test session as $USER_A " <<<"$out"
}
# doctor_planted MODE: alice replaces her manager's socket with her own
# listener: "silent" never accepts, "noisy" answers with escape sequences.
doctor_planted() {
	local sock out t0 rc=0
	sock=/run/user/$(uid_of "$USER_A")/systemd/private
	setpriv --reuid="$USER_A" --regid="$USER_A" --init-groups mv "$sock" "$sock.real" || return 1
	if [ "$1" = silent ]; then
		setpriv --reuid="$USER_A" --regid="$USER_A" --init-groups \
			systemd-socket-activate -l "$sock" sleep 600 >/dev/null 2>&1 &
	else
		setpriv --reuid="$USER_A" --regid="$USER_A" --init-groups \
			systemd-socket-activate -l "$sock" --accept printf '\033]0;pwned\007\033[2J\033[31mEVIL\n' >/dev/null 2>&1 &
	fi
	wait_until 10 test -S "$sock"
	t0=$SECONDS
	out=$(doctor_manager_line) || rc=1
	echo "$out"
	echo "doctor took $((SECONDS - t0)) s"
	pkill -u "$USER_A" -f "systemd-socket-activate -l $sock" 2>/dev/null
	pkill -u "$USER_A" -x sleep 2>/dev/null
	rm -f "$sock"
	setpriv --reuid="$USER_A" --regid="$USER_A" --init-groups mv "$sock.real" "$sock"
	[ "$rc" = 0 ] || return 1
	grep -q "^- systemctl --user: not checked: $sock is not the systemd user manager of $USER_A: its listener, pid [0-9]*, runs " <<<"$out"
}
sc_doctor_planted() {
	um_manager_up "$USER_A"
	check "doctor, alice's real manager: accepted, systemctl --user answers" doctor_real_manager
	check "doctor, a silent listener planted by alice: skipped and named, no wait" doctor_planted silent
	check "doctor, a noisy listener planted by alice: skipped and named, no control characters" doctor_planted noisy
	check "doctor, alice's real manager again after the plant is gone" doctor_real_manager
	um_user_gone "$USER_A"
}

# shellcheck shell=bash
# front.sh - tests of the C front module pam_unshare.so and the Go library
# it loads (GO_MODULE, staged by stage.sh). Sourced by run-tests.sh after
# lib.sh; each t_front_* function adds TAP results through check.

# front_service NAME AUTH: a service with AUTH (a module) for auth, the
# module last on the session stack, and pam_permit for account.
front_service() {
	cat >"$W/pam.d/$1" <<-EOF
		auth required $2
		account required pam_permit.so
		session optional pam_permit.so
		session required $MODULE helper=$HELPER
	EOF
}

# assert_no_go_loaded SERVICE: pam_start, auth and account with the module
# in the stack and no session: the host has one thread, has pam_unshare.so
# mapped (by its real path: the sanitizer run links it) and not the Go
# library.
assert_no_go_loaded() {
	local out
	# shellcheck disable=SC2016 # expanded by the child's shell
	out=$(pamhost -s "$1" -u pu-alice -m noopen -- /bin/sh -c \
		'grep "^Threads:" /proc/$PAMHOST_PID/status; awk "{ print \$6 }" /proc/$PAMHOST_PID/maps | sort -u' 2>&1)
	echo "$out"
	grep -q "^Threads:[[:space:]]*1$" <<<"$out" &&
		grep -qxF "$(readlink -f "$MODULE")" <<<"$out" &&
		! grep -qF "$GO_MODULE" <<<"$out"
}

t_front_no_session() {
	front_service front-ok pam_permit.so
	front_service front-denied pam_deny.so
	check "no session opened: the host has 1 thread and has not mapped the Go library" \
		assert_no_go_loaded front-ok
	check "a failed login (auth denied): 1 thread, the Go library not mapped" \
		assert_no_go_loaded front-denied
}

# assert_go_refused PATTERN: a session is refused with PAM_SYSTEM_ERR, one
# syslog line matches PATTERN, and nothing is left.
assert_go_refused() {
	local mark out log
	mark=$(syslog_mark)
	out=$(pamhost -s pamhost -u pu-alice -- /bin/true 2>&1)
	wait_until 30 syslog_count_at_least "$mark" 1 "pam_unshare(pamhost:session): $1; refusing the session\$"
	log=$(syslog_since "$mark")
	echo "$out"
	echo "$log"
	grep -q 'open=PAM_SYSTEM_ERR' <<<"$out" &&
		[ "$(grep -c "pam_unshare(pamhost:session): $1; refusing the session\$" <<<"$log")" -eq 1 ] &&
		[ "$(grep -c pam_unshare <<<"$log")" -eq 1 ] &&
		no_helpers && no_other_pidns && host_proc_intact
}

t_front_untrusted_go() {
	local good=$W/go-module.good dir=$W/userdir permit
	cp -p "$GO_MODULE" "$good"
	chown pu-alice "$GO_MODULE"
	check "a Go library owned by a user is refused, and syslog says why" \
		assert_go_refused "untrusted Go module $GO_MODULE: owned by uid $(id -u pu-alice), must be owned by root"
	chown root "$GO_MODULE"
	chmod 0664 "$GO_MODULE"
	check "a group-writable Go library is refused, and syslog says why" \
		assert_go_refused "untrusted Go module $GO_MODULE: mode 0664: must not be writable by group or others"
	# A root-owned library behind a symlink, in a directory a user owns.
	mkdir -p "$dir"
	chown pu-alice "$dir"
	install -m 0644 "$good" "$dir/pam_unshare_go.so"
	ln -sf "$dir/pam_unshare_go.so" "$GO_MODULE"
	check "a symlink to a Go library in a user's directory is refused" \
		assert_go_refused "untrusted Go module $GO_MODULE: directory $dir must be owned by root and not writable by group or others"
	rm -f "$GO_MODULE"
	check "a missing Go library: the session is refused" \
		assert_go_refused "cannot open the Go module $GO_MODULE: No such file or directory"
	permit=$(find /lib /usr/lib -name pam_permit.so -path '*security*' | head -n 1)
	install -m 0644 "$permit" "$GO_MODULE"
	check "another library at the Go library's path is refused" \
		assert_go_refused "the Go module $GO_MODULE is not from this build of pam_unshare (interface [0-9]* expected)"
	install -m 0644 "$good" "$GO_MODULE"
	rm -rf "$dir" "$good"
}

# assert_child_close_harmless: the host forks after open; the child calls
# pam_close_session and pam_end on its copy of the handle, then runs ps.
# The child's close ends nothing and runs no Go (with debug, Go logs every
# close it sees: only the parent's may show), and the parent's session ends
# normally, once.
assert_child_close_harmless() {
	local mark out log
	mark=$(syslog_mark)
	out=$(timeout 20 "$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -m childclose -- \
		/bin/ps -e -o pid=,comm= 2>&1)
	wait_until 30 syslog_count_at_least "$mark" 1 'session closed for user pu-alice$'
	log=$(syslog_since "$mark")
	echo "$out"
	echo "$log"
	grep -q 'open=PAM_SUCCESS close=PAM_SUCCESS child=0 .* child_close=PAM_SUCCESS' <<<"$out" &&
		sees_only_session "$out" &&
		[ "$(grep -c 'pam_unshare(pamhost:session): ending the namespace' <<<"$log")" -eq 1 ] &&
		[ "$(grep -c 'pam_unshare(pamhost:session): no isolated session' <<<"$log")" -eq 0 ] &&
		[ "$(grep -c 'session closed for user pu-alice$' <<<"$log")" -eq 1 ] &&
		wait_until 10 no_helpers && no_other_pidns
}

t_front_fork_child() {
	pamd_write "debug"
	check "a forked child that closes and ends the PAM handle runs no Go and ends nothing" \
		assert_child_close_harmless
	pamd_write ""
}

# go_threads_block_signals PID: the host PID has more than one thread (the
# Go runtime's), and every thread but the host's own (PID) blocks the
# asynchronous signals a host waits for: SIGHUP, SIGINT, SIGALRM, SIGTERM
# and SIGWINCH. A process-directed signal goes to any thread that does not
# block it, and hosts are written for one thread. (SIGCHLD, which the
# runtime never blocks, is checked by t_front_go_threads_signals.)
go_threads_block_signals() {
	local pid=$1 t blk n=0 bad=0 want=$((0x08006003))
	for t in /proc/"$pid"/task/*; do
		[ "${t##*/}" = "$pid" ] && continue
		n=$((n + 1))
		blk=$(awk '/^SigBlk:/ {print $2}' "$t"/status)
		echo "thread ${t##*/} SigBlk $blk"
		[ $((0x$blk & want)) -eq "$want" ] || bad=1
	done
	[ "$n" -gt 0 ] && [ "$bad" -eq 0 ]
}

t_front_go_threads_signals() {
	local p out
	"$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -- /bin/sleep 1031 >/dev/null 2>&1 &
	p=$!
	wait_until 30 runs "/bin/sleep 1031"
	check "a live session: the Go runtime's threads in the host block the host's signals (SIGTERM, SIGINT, ...)" \
		go_threads_block_signals "$p"
	pkill -f '^/bin/sleep 1031$'
	wait "$p" 2>/dev/null
	# sudo runs a command without a terminal this way: block every
	# signal, fork, install its SIGCHLD handler, unblock. The command's
	# SIGCHLD must reach that handler, or sudo waits forever.
	out=$(timeout 20 "$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -m sudochld -- /bin/true 2>&1)
	check "a host that forks with every signal blocked (as sudo does) gets its command's SIGCHLD" \
		has_line "$out" 'open=PAM_SUCCESS close=PAM_SUCCESS child=0 .* sigchld=caught'
	out=$(timeout 20 "$PAMHOST" -c /etc/pam.d -s pamhost -u pu-alice -m sudochld -- /bin/false 2>&1)
	check "... and the command's exit status" has_line "$out" 'child=1 .* sigchld=caught'
}

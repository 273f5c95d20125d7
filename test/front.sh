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

# front_and_doctor_agree WANT: the one trust rule (nsinit/trust.c) has two
# entry points, and both reach the same verdict on the file now at
# GO_MODULE: the front module when a session loads it, and doctor (through
# nsinit, as for the helper) when it checks it. WANT is "ok", or words the
# problem both name must hold. Doctor names the real path before a problem
# found there ("real path R: "), the front's syslog line does not.
front_and_doctor_agree() {
	local want=$1 mark out front doctor
	mark=$(syslog_mark)
	out=$(pamhost -s pamhost -u pu-alice -- /bin/true 2>&1)
	echo "$out"
	if grep -q 'open=PAM_SUCCESS' <<<"$out"; then
		front=ok
	else
		wait_until 2 syslog_count_at_least "$mark" 1 "untrusted Go module $GO_MODULE: "
		front=$(syslog_since "$mark" |
			sed -n "s|.*pam_unshare(pamhost:session): untrusted Go module $GO_MODULE: \(.*\); refusing the session\$|\1|p")
	fi
	doctor=$("$BUILD"/pam-unshare doctor --pamd "$W/pam.d" --module "$MODULE" --go-module "$GO_MODULE" \
		--helper "$HELPER" 2>&1 | sed -n -e "s|^✓ Go library $GO_MODULE: .*|ok|p" \
		-e "s|^✗ Go library $GO_MODULE: \(real path [^:]*: \)\{0,1\}\(.*\) (pam_unshare.so refuses every session with PAM_SYSTEM_ERR)\$|\2|p")
	echo "front: $front"
	echo "doctor: $doctor"
	[ -n "$front" ] && [ "$front" = "$doctor" ] && case $want in
	ok) [ "$front" = ok ] ;;
	*) [ "$front" != ok ] && [[ $front == *"$want"* ]] ;;
	esac
}

t_front_untrusted_go() {
	local good=$W/go-module.good dir=$W/userdir permit
	local rootdir=$W/rootonly sticky=$W/sticky userdir=$W/userlib d
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
	# The same files through both entry points of the trust rule, each
	# planted at GO_MODULE: a copy, or a symlink to one elsewhere.
	mkdir -p "$rootdir" "$sticky" "$userdir"
	chmod 0755 "$rootdir"
	chmod 1777 "$sticky"
	chown pu-alice "$userdir"
	for d in "$rootdir" "$sticky" "$userdir"; do install -m 0644 "$good" "$d/lib.so"; done
	ln -sfn "$userdir" "$W/dirlink"
	check "trust rule, the front and doctor agree: a root-owned 0644 library is loaded" \
		front_and_doctor_agree ok
	chmod 0646 "$GO_MODULE"
	check "trust rule, the front and doctor agree: an other-writable library is refused" \
		front_and_doctor_agree "mode 0646: must not be writable by group or others"
	chmod 0644 "$GO_MODULE"
	chown pu-alice "$GO_MODULE"
	check "trust rule, the front and doctor agree: a library owned by a user is refused" \
		front_and_doctor_agree "owned by uid $(id -u pu-alice), must be owned by root"
	rm -f "$GO_MODULE"
	mkdir "$GO_MODULE"
	check "trust rule, the front and doctor agree: a directory is refused" \
		front_and_doctor_agree "not a regular file"
	rmdir "$GO_MODULE"
	ln -s "$rootdir/lib.so" "$GO_MODULE"
	check "trust rule, the front and doctor agree: a symlink through root-only directories is followed" \
		front_and_doctor_agree ok
	chmod 0775 "$rootdir"
	check "trust rule, the front and doctor agree: a group-writable directory on the real path is refused" \
		front_and_doctor_agree "directory $rootdir must be owned by root and not writable by group or others"
	chmod 0755 "$rootdir"
	ln -sfn "$sticky/lib.so" "$GO_MODULE"
	check "trust rule, the front and doctor agree: a root-owned library in a sticky directory is loaded" \
		front_and_doctor_agree ok
	ln -sfn "$W/dirlink/lib.so" "$GO_MODULE"
	check "trust rule, the front and doctor agree: a symlinked directory a user owns is refused" \
		front_and_doctor_agree "directory $userdir must be owned by root and not writable by group or others"
	rm -f "$GO_MODULE"
	install -m 0644 "$good" "$GO_MODULE"
	rm -rf "$dir" "$good" "$rootdir" "$sticky" "$userdir" "$W/dirlink"
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

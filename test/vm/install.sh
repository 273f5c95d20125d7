# shellcheck shell=bash
# install.sh - the module as installed: the harness checks (the guest, the
# package, the pam.d lines runner.sh made) and what an administrator does
# after installing (doctor, the man page, a refused dpkg -r). Sourced by
# scenarios.sh; these run first.
# tmp, T, USER_A, CLI and the TAP and wait helpers come from scenarios.sh,
# the guest's observers from guest.sh.
# shellcheck disable=SC2154,SC2153

# session_stack FILE: FILE's session lines in the order libpam runs them,
# with @include and "session include" (su-l includes su) expanded.
session_stack() {
	local line typ control target
	while read -r line; do
		read -r typ control target _ <<<"$line"
		case $typ:$control in
		@include:*) session_stack "/etc/pam.d/$control" ;;
		session:include | session:substack) session_stack "/etc/pam.d/$target" ;;
		session:* | -session:*) echo "$line" ;;
		esac
	done <"$1"
}

# last_session_line FILE: the module line is the last of FILE's session
# stack.
last_session_line() {
	session_stack "$1" >"$tmp/stack"
	[ "$(tail -n 1 "$tmp/stack")" = "$PAM_LINE" ] || {
		echo "session stack of $1:"
		cat "$tmp/stack"
		return 1
	}
}

sc_harness() {
	check "harness: ssh alice@127.0.0.1 logs in with a key" \
		timeout "$T" ssh "$USER_A@127.0.0.1" true
	check "harness: binfmt_misc is mounted at /proc/sys/fs/binfmt_misc" \
		findmnt /proc/sys/fs/binfmt_misc
	[ "${VM_SMOKE:-0}" = 1 ] && return
	local f built installed
	if [ "$VM_INSTALL" = make ]; then
		built="make install DESTDIR=..."
		installed="the make install tree is copied into /"
	else
		built="make deb"
		installed="dpkg -i installs the package"
	fi
	built=${VM_BUILT:-$built}
	if [ "${VM_INSTALL_RC:-0}" = 0 ]; then
		ok "harness: $built succeeded on the build host"
	else
		not_ok "harness: $built succeeded on the build host (exit $VM_INSTALL_RC)"
		diag "$(tail -n 5 "$here/install.log" 2>/dev/null)"
	fi
	if [ "${VM_GUEST_INSTALL_RC:-0}" = 0 ]; then
		ok "harness: $installed"
	else
		not_ok "harness: $installed (exit $VM_GUEST_INSTALL_RC)"
		diag "$(tail -n 20 "$VM_OUT/install.log" 2>/dev/null)"
	fi
	check "harness: the helper, the module, its Go library and pam-unshare are in place" \
		ls -l "$HELPER" "$MODULE" "$GO_MODULE" "$CLI"
	if [ "$VM_INSTALL" = deb ]; then
		check "harness: dpkg lists $PKG as installed and owning the module" pkg_owns_module
	fi
	if [ "${VM_ENABLE_RC:-0}" = 0 ]; then
		ok "harness: enabling the module ($VM_ENABLE) for $SERVICES succeeded"
	else
		not_ok "harness: enabling the module ($VM_ENABLE) for $SERVICES succeeded (exit $VM_ENABLE_RC)"
		diag "$(cat "$VM_OUT/enable.log")"
	fi
	for f in $SERVICES; do
		check "harness: pam_unshare is the last session line of /etc/pam.d/$f" \
			last_session_line "/etc/pam.d/$f"
	done
}

pkg_installed() {
	local st
	st=$(dpkg-query -W -f '${Status}' "$PKG" 2>&1)
	echo "dpkg status of $PKG: $st"
	case $st in *" ok installed") ;; *) return 1 ;; esac
}
pkg_owns_module() {
	pkg_installed || return 1
	dpkg -S "$MODULE" | grep -q "^$PKG:" || { fail "dpkg -S $MODULE: $(dpkg -S "$MODULE" 2>&1)"; return 1; }
}

# ---- what an administrator does after installing --------------------------

# doctor_clean: `pam-unshare doctor` exits 0 and reports no failed check.
doctor_clean() {
	local rc=0
	timeout "$T" "$CLI" doctor >"$tmp/doctor" 2>&1 || rc=$?
	cp "$tmp/doctor" "$VM_OUT/doctor.txt" 2>/dev/null
	cat "$tmp/doctor"
	[ "$rc" = 0 ] || { fail "pam-unshare doctor exited $rc"; return 1; }
	! grep -qF '✗' "$tmp/doctor" || { fail "pam-unshare doctor reports a failed check"; return 1; }
}

# man_page PAGE: man finds the page in the packaged section 8.
man_page() {
	local path
	command -v man >/dev/null || { fail "man is not installed in the guest"; return 1; }
	path=$(man -w "$1" 2>&1) || { fail "man -w $1: $path"; return 1; }
	echo "$path"
	case $path in */man8/"$1".8*) ;; *) fail "not a section 8 page: $path" ;; esac
}

# remove_refused: `dpkg -r` is refused by the package's prerm while pam.d
# files use the module, and the package stays installed. If it was removed
# anyway, it is installed again so that the other scenarios still run.
remove_refused() {
	local rc=0
	timeout "$T" dpkg -r "$PKG" >"$tmp/dpkg-r" 2>&1 </dev/null || rc=$?
	cp "$tmp/dpkg-r" "$VM_OUT/dpkg-r-refused.txt" 2>/dev/null
	cat "$tmp/dpkg-r"
	echo "dpkg -r exited $rc"
	if [ "$rc" = 0 ]; then
		echo "reinstalling for the remaining scenarios:"
		dpkg -i "$(dirname "$VM_OUT")"/deb/*.deb
		fail "dpkg -r removed the package while the module is enabled"
		return 1
	fi
	pkg_installed || { fail "the package is no longer installed"; return 1; }
	ls -l "$MODULE" "$GO_MODULE" "$HELPER" "$CLI" || { fail "files are gone"; return 1; }
	grep -q 'pam-unshare disable' "$tmp/dpkg-r" ||
		{ fail "the refusal does not tell the administrator to run pam-unshare disable"; return 1; }
}

sc_admin() {
	check "admin: pam-unshare doctor exits 0 and reports no failed check" doctor_clean
	# Warnings do not fail the check; show them.
	diag "$(grep -E '^! ' "$tmp/doctor" 2>/dev/null)"
	check "admin: man -w pam_unshare finds pam_unshare(8)" man_page pam_unshare
	check "admin: man -w pam-unshare finds pam-unshare(8)" man_page pam-unshare
	if [ "$VM_INSTALL" != deb ]; then
		skip "admin: dpkg -r $PKG is refused while the module is enabled" "VM_INSTALL=$VM_INSTALL"
		return
	fi
	mark_leftovers
	check "admin: dpkg -r $PKG is refused while the module is enabled; the package stays" remove_refused
	session_check "su - alice after the refused dpkg -r" su - "$USER_A" -c "$PS_CMD"
}

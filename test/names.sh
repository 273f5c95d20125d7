# shellcheck shell=bash
# names.sh - the module's options name users and groups; every name must
# resolve, or the session is refused (pam_unshare/policy, Decide). Sourced
# by run-tests.sh inside its private world (lib.sh, tap.sh).
#
# A failing NSS source: test/nss-fail.c, built as $BUILD/nss-fail.so, is
# an NSS module whose every lookup fails as LDAP or SSSD does when down
# (NSS_STATUS_UNAVAIL, errno EHOSTDOWN). It is mounted over the hesiod
# module's file (which nothing here uses) and named after "files" in
# /etc/nsswitch.conf, in this run's private mount namespace only: the test
# world's own users and groups still resolve, every other name fails.

NSS_FAIL=$BUILD/nss-fail.so

# names_refused HOST OPTION VALUE PATTERN: with OPTION=VALUE, pu-alice's
# session under HOST (pamhost, su or sudo) is refused, her command does
# not run, and exactly one syslog line of that host matches PATTERN.
names_refused() {
	local host=$1 line=$2 pattern=$3 mark out
	pamd_write "$line"
	rm -f "$W"/marker
	mark=$(syslog_mark)
	case $host in
	pamhost)
		out=$(pamhost -s pamhost -u pu-alice -- /usr/bin/touch "$W"/marker 2>&1)
		echo "$out"
		grep -q 'open=PAM_SYSTEM_ERR close=NONE child=-1' <<<"$out" || return 1
		;;
	su) su pu-alice -c "touch $W/marker" 2>&1 ;;
	sudo) sudo -u pu-alice touch "$W"/marker 2>&1 ;;
	esac
	[ ! -e "$W"/marker ] || { fail "the command ran"; return 1; }
	syslog_has_n "$mark" 1 "pam_unshare($host:session): $pattern; refusing the session\$" || return 1
	no_session_left
}

# names_all_hosts DESC LINE PATTERN: names_refused under each host.
names_all_hosts() {
	local host
	for host in pamhost su sudo; do
		check "$1: refused under $host, command not run, one syslog line" \
			names_refused "$host" "$2" "$3"
	done
}

t_names_missing() {
	names_all_hosts "only_groups names a group that does not exist" \
		"only_groups=pu-studnets" 'only_groups=pu-studnets: no such group'
	names_all_hosts "exempt_groups names a group that does not exist" \
		"exempt_groups=pu-staff,pu-nosuch" 'exempt_groups=pu-nosuch: no such group'
	names_all_hosts "exempt_users names a user that does not exist" \
		"exempt_users=root,pu-nosuch" 'exempt_users=pu-nosuch: no such user'
	pamd_write "only_groups=pu-studnets"
	check "a user exempt by name is not refused (root keeps a way in)" \
		sees_host su - root -c 'ps -e -o args='
	pamd_write ""
}

# nss_failing: /etc/nsswitch.conf asks files, then the failing module.
nss_failing() {
	local lib
	lib=$(ldconfig -p | awk '$1 == "libnss_hesiod.so.2" { print $NF; exit }')
	[ -n "$lib" ] && [ -f "$NSS_FAIL" ] || return 1
	printf 'passwd: files hesiod\ngroup: files hesiod\nshadow: files\n' >"$W"/nsswitch.conf
	mount --bind "$W"/nsswitch.conf /etc/nsswitch.conf &&
		mount --bind "$NSS_FAIL" "$(readlink -f "$lib")"
}

nss_restored() {
	local lib
	lib=$(ldconfig -p | awk '$1 == "libnss_hesiod.so.2" { print $NF; exit }')
	umount "$(readlink -f "$lib")" 2>/dev/null
	umount /etc/nsswitch.conf 2>/dev/null
	return 0
}

# nss_really_fails: getgrnam_r, called as the module's lookups call it,
# returns an error (EHOSTDOWN), not "no such group" (0 and no entry).
nss_really_fails() {
	local out
	out=$("$PY" -c 'import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
grp, buf, res = ctypes.create_string_buffer(64), ctypes.create_string_buffer(4096), ctypes.c_void_p()
rc = libc.getgrnam_r(b"pu-ldap-students", grp, buf, len(buf), ctypes.byref(res))
print("getgrnam_r:", rc, errno.errorcode.get(rc, ""), "entry" if res.value else "no entry")' 2>&1)
	echo "$out"
	[ "$out" = "getgrnam_r: $(errno_of EHOSTDOWN) EHOSTDOWN no entry" ]
}
errno_of() { "$PY" -c "import errno; print(errno.$1)"; }

t_names_nss_down() {
	if ! nss_failing; then
		nss_restored
		skip "a failing NSS source" "no libnss_hesiod.so.2 to mount over, or no $NSS_FAIL"
		return
	fi
	check "the failing source really fails (getgrnam_r returns EHOSTDOWN)" nss_really_fails
	names_all_hosts "only_groups, its source down" \
		"only_groups=pu-ldap-students" 'only_groups=pu-ldap-students: cannot look up group "pu-ldap-students": host is down'
	names_all_hosts "exempt_groups, its source down" \
		"exempt_groups=pu-ldap-admins" 'exempt_groups=pu-ldap-admins: cannot look up group "pu-ldap-admins": host is down'
	names_all_hosts "exempt_users, its source down" \
		"exempt_users=root,pu-ldap-user" 'exempt_users=pu-ldap-user: cannot look up user "pu-ldap-user": host is down'
	pamd_write "only_groups=pu-staff"
	check "names from files still resolve: a member is isolated" isolated su pu-carol -c 'ps -e -o pid=,comm='
	nss_restored
	pamd_write ""
}

# doctor_names: doctor names each option value that does not resolve.
doctor_names() {
	local out rc=0
	pamd_write "only_groups=pu-studnets exempt_users=root,pu-nosuch"
	out=$(doctor_on su) || rc=$?
	pamd_write ""
	echo "$out"
	[ "$rc" -ne 0 ] || { fail "doctor exited 0"; return 1; }
	grep -q '^✗ option names: ' <<<"$out" &&
		grep -qx '    exempt_users=pu-nosuch: no such user (service su)' <<<"$out" &&
		grep -qx '    only_groups=pu-studnets: no such group (service su)' <<<"$out"
}
doctor_names_ok() {
	local out
	pamd_write "only_groups=pu-staff,pu-students exempt_users=root,pu-carol"
	out=$(doctor_on su)
	pamd_write ""
	echo "$out"
	grep -q '^✓ option names: ' <<<"$out"
}
t_names_doctor() {
	check "doctor names each option value that does not resolve" doctor_names
	check "doctor: option values that resolve pass" doctor_names_ok
}

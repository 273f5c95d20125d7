# shellcheck shell=bash
# sshd.sh - the module under OpenSSH's sshd (skipped without
# openssh-server). Sourced by run-tests.sh inside its private world
# (lib.sh, tap.sh, helper.sh's fd_listing).

# sshd_leader: the host PID of a live sshd post-auth child of a session:
# an sshd that is PID 2 of a nested PID namespace (NSpid: HOST_PID ... 2).
sshd_leader() {
	local p
	for p in $(pgrep -x "$SSHD_COMM"); do
		if awk '/^NSpid:/ && NF >= 3 && $NF == 2 { n = 1 } /^State:/ && $2 != "Z" { a = 1 } END { exit !(n && a) }' \
			/proc/"$p"/status 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# session_helper PID: the helper that is PID 1 of PID's namespace (another
# session's helper may still be on its way out).
session_helper() {
	local h ns
	ns=$(readlink /proc/"$1"/ns/pid) || return 1
	for h in $(helpers_alive); do
		if [ "$(readlink /proc/"$h"/ns/pid)" = "$ns" ]; then
			echo "$h"
			return 0
		fi
	done
	return 1
}

# control_socket_peer HELPER: the inode of the host's end of HELPER's
# control socket (the helper holds the other end as fd 3).
control_socket_peer() {
	local own
	own=$(readlink /proc/"$1"/fd/3 | tr -dc 0-9)
	[ -n "$own" ] && ss -x -a | awk -v i="$own" '$6 == i && $8 != 0 { print $8; f = 1 } END { exit !f }'
}

# sshd's post-auth child runs as the user for the whole connection and
# never execs: nothing the module holds may reach it. Listed from the host,
# since the child is not dumpable.
ssh_leader_fds() {
	local pid child helper peer listing f bad=""
	rm -f "$W"/home/pu-alice/ssh-started
	timeout 20 "${SSH[@]}" 'touch ~/ssh-started; sleep 3' >/dev/null 2>&1 &
	pid=$!
	wait_until 10 test -e "$W"/home/pu-alice/ssh-started
	child=$(sshd_leader)
	helper=$(session_helper "$child")
	if [ -z "$child" ] || [ -z "$helper" ]; then
		wait "$pid"
		echo "no session found (post-auth child '$child', helper '$helper')"
		return 1
	fi
	wait_until 5 control_socket_peer "$helper" >/dev/null
	peer=$(control_socket_peer "$helper")
	listing=$(fd_listing "$child")
	for f in /proc/"$child"/fd/*; do
		# Directories (the saved root and working directory), the
		# saved namespaces, pidfds, the runtime's cgroup files and the
		# host's end of the helper's control socket.
		if [ -d "$f" ] || readlink "$f" | grep -Eq '^(pid|mnt):\[|pidfd|^/sys/fs/cgroup/|^socket:\['"${peer:-none}"'\]$'; then
			bad+="${f##*/} "
		fi
	done
	wait "$pid"
	echo "post-auth child $child (PID 2 of the session), helper $helper, control socket host end ${peer:-?}:"
	echo "$listing"
	if [ -z "$peer" ] || [ -n "$bad" ]; then
		echo "from the module: ${bad:-?}"
		return 1
	fi
}

# PID 2 is sshd's post-auth child, which runs the user's commands.
ssh_sees_only_itself() {
	local out
	out=$(timeout 20 "${SSH[@]}" 'ps -e -o pid=,comm=' 2>&1)
	echo "$out"
	sees_only_session "$out" && grep -Eq "^ *2 $SSHD_COMM\$" <<<"$out"
}
ssh_tty_sees_only_itself() {
	local out
	out=$(timeout 20 "${SSH[@]}" -tt 'ps -e -o pid=,comm=' 2>&1 | tr -d '\r')
	echo "$out"
	sees_only_session "$out"
}
ssh_nothing_left() {
	nothing_left && return 0
	ps -eo pid,ppid,stat,wchan:20,args
	return 1
}
t_sshd() {
	if ! world_sshd; then
		skip "sshd: ps -e sees only the helper and the session" "openssh-server is not installed"
		return
	fi
	check "sshd: ps -e sees only the helper and the session" ssh_sees_only_itself
	check "sshd: after logout nothing is left in another PID namespace" ssh_nothing_left
	timeout 20 "${SSH[@]}" 'nohup sleep 1003 >/dev/null 2>&1 &' 2>/dev/null
	check "sshd: a background nohup sleep is gone after logout" sleep_gone 1003
	check "sshd: the post-auth child (PID 2) holds no descriptor of the module" ssh_leader_fds
	check "sshd with a pty (ssh -tt): ps -e sees only the helper and the session" ssh_tty_sees_only_itself
	check "sshd: 10 concurrent sessions cannot see each other" no_crosstalk 10 300 timeout 30 "${SSH[@]}"
	check "sshd: nothing left after 10 concurrent sessions" wait_until 10 no_other_pidns
}

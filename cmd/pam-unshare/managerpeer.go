package main

// Which socket doctor's systemctl --user check may use. /run/user/UID
// belongs to the user, so a socket there named systemd/private, owned by
// the user, proves nothing: the user can plant one that answers anything
// (escape sequences for root's terminal) or nothing (a hang). The check
// runs only against a socket whose listener is the user's real manager:
// the process that called listen() on it (SO_PEERCRED on a connection) is
// the user's, its executable is systemd, and it runs in the user's
// user@UID.service, whose init.scope holds the manager itself. A user's
// own processes run in a session scope or, when her manager starts them,
// in the service's app.slice, so none of them passes.

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// managerConnectTimeout bounds the connect to a manager socket (it
// returns at once unless the listener's backlog is full).
const managerConnectTimeout = 2 * time.Second

// procRoot is where the listener's /proc entry is read; tests change it.
var procRoot = "/proc"

// managerExes are the paths systemd --user runs from on Debian (merged
// /usr shows /usr/lib; older systems /lib).
var managerExes = []string{"/usr/lib/systemd/systemd", "/lib/systemd/systemd"}

// checkManagerPeer says why the socket at path is not uid's manager, or
// nil; a variable so that tests of the listing can accept their fixtures.
var checkManagerPeer = managerPeer

// managerPeer connects to path and checks the listener: see the file
// comment.
func managerPeer(path string, uid int) error {
	conn, err := net.DialTimeout("unix", path, managerConnectTimeout)
	if err != nil {
		return fmt.Errorf("cannot connect: %w", err)
	}
	defer conn.Close()
	raw, err := conn.(*net.UnixConn).SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if credErr != nil {
		return fmt.Errorf("SO_PEERCRED: %w", credErr)
	}
	return judgeManagerPeer(uid, int(cred.Pid), int(cred.Uid))
}

// judgeManagerPeer checks the listener pid (running as peerUID) of uid's
// manager socket against its /proc entry.
func judgeManagerPeer(uid, pid, peerUID int) error {
	if peerUID != uid {
		return fmt.Errorf("its listener runs as uid %d, not %d", peerUID, uid)
	}
	if pid <= 0 {
		return fmt.Errorf("its listener is in another PID namespace")
	}
	dir := filepath.Join(procRoot, strconv.Itoa(pid))
	exe, err := os.Readlink(filepath.Join(dir, "exe"))
	if err != nil {
		return fmt.Errorf("its listener, pid %d: %w", pid, err)
	}
	// A manager still running an executable that an upgrade replaced.
	exe = strings.TrimSuffix(exe, " (deleted)")
	known := false
	for _, e := range managerExes {
		known = known || exe == e
	}
	if !known {
		return fmt.Errorf("its listener, pid %d, runs %s, not systemd", pid, exe)
	}
	cg, err := os.ReadFile(filepath.Join(dir, "cgroup"))
	if err != nil {
		return fmt.Errorf("its listener, pid %d: %w", pid, err)
	}
	unit := fmt.Sprintf("/user@%d.service", uid)
	for _, line := range strings.Split(strings.TrimSpace(string(cg)), "\n") {
		// "0::/user.slice/user-1000.slice/user@1000.service/init.scope";
		// with cgroup v1 the name=systemd line has the same path.
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || (parts[1] != "" && parts[1] != "name=systemd") {
			continue
		}
		if p := parts[2]; strings.HasSuffix(p, unit+"/init.scope") || strings.HasSuffix(p, unit) {
			return nil
		}
		return fmt.Errorf("its listener, pid %d, runs in %s, not in user@%d.service's init.scope", pid, parts[2], uid)
	}
	return fmt.Errorf("its listener, pid %d, is in no systemd cgroup", pid)
}

package nsinit

// Where a PID namespace hangs, for per-user namespaces (scope=user). See
// "Per-user namespaces only from the top" in README.md in this directory.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// procPIDInitIno is the inode number of the kernel's initial PID namespace
// (PROC_PID_INIT_INO in include/linux/proc_ns.h). It is fixed; every other
// namespace gets a number from 0xF0000000 up, so it names the initial one
// and nothing else.
const procPIDInitIno = 0xEFFFFFFC

// ErrNestedHost: the host runs inside an isolated session (or another PID
// namespace below the one its /proc shows), so it may neither create nor
// join a per-user namespace. The module gives it a namespace of the session
// only (Enter), nested where it is.
var ErrNestedHost = errors.New("the host does not run in the top PID namespace")

// TopPIDNamespace reports whether the calling thread's PID namespace is
// the top one, where per-user namespaces are created and joined, and if
// not, why. helper is the configured helper program.
//
// The top is the kernel's initial PID namespace, or else the namespace of
// PID 1 of the thread's /proc when that PID 1 is not a pam_unshare helper
// (a container, or the tests' own PID namespace: whoever made it is root
// and gave it its /proc). It is not:
//   - a namespace other than that of the /proc's PID 1: the host runs below
//     the namespace its /proc shows;
//   - the namespace of a session: there /proc is the session's own procfs,
//     and its PID 1 is the session's helper. A helper whose file an upgrade
//     replaced (exe "PATH (deleted)") counts: its comm still names it.
//
// A user cannot make a root host see another /proc: mounting in the
// session's mount namespace needs CAP_SYS_ADMIN over it, and a setuid host
// started inside a user namespace of the user's own does not become root.
// NS_GET_PARENT cannot answer this on its own: on the caller's own PID
// namespace it fails with EPERM whether that is the initial one or not.
func TopPIDNamespace(helper string) (bool, string) {
	var self, one unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/pid", &self); err != nil {
		return false, "cannot read its own PID namespace: " + err.Error()
	}
	if self.Ino == procPIDInitIno {
		return true, ""
	}
	if err := unix.Stat("/proc/1/ns/pid", &one); err != nil {
		return false, "cannot read the PID namespace of PID 1 in its /proc: " + err.Error()
	}
	if self.Dev != one.Dev || self.Ino != one.Ino {
		return false, "its PID namespace is not that of PID 1 in its /proc"
	}
	if isHelperProc("/proc/1", helper) {
		return false, "PID 1 in its /proc is a pam_unshare helper: the host runs inside an isolated session"
	}
	return true, ""
}

// isHelperProc reports whether the process at dir (/proc/PID) is a
// pam_unshare helper: named like one, or running the helper's file, or a
// file that was at the helper's path and has been replaced since. It errs
// towards yes: a wrong yes costs a per-user namespace, a wrong no would
// publish one from inside a session.
func isHelperProc(dir, helper string) bool {
	if comm, err := os.ReadFile(dir + "/comm"); err == nil && strings.TrimSpace(string(comm)) == HelperComm {
		return true
	}
	exe, err := os.Readlink(dir + "/exe")
	if err != nil {
		return false
	}
	exe = strings.TrimSuffix(exe, " (deleted)")
	if exe == filepath.Clean(helper) {
		return true
	}
	if real, err := filepath.EvalSymlinks(helper); err == nil && exe == real {
		return true
	}
	var a, b unix.Stat_t
	return unix.Stat(dir+"/exe", &a) == nil && unix.Stat(helper, &b) == nil && a.Dev == b.Dev && a.Ino == b.Ino
}

// checkChildNS checks that the process whose /proc directory is dir is PID
// 1 of a PID namespace whose parent is the calling thread's own PID
// namespace: a helper the host started from the top, not one nested in a
// session (whose owner sees and signals everything in it) nor one of the
// host's own namespace.
func checkChildNS(dir, pid int) error {
	ns, err := unix.Openat(dir, "ns/pid", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("peer pid %d: open its PID namespace: %w", pid, err)
	}
	defer unix.Close(ns)
	parent, err := unix.IoctlRetInt(ns, unix.NS_GET_PARENT)
	if errors.Is(err, unix.EPERM) {
		// The kernel answers EPERM when the parent is not at or below
		// the caller's namespace: the peer's namespace is ours or above.
		return fmt.Errorf("peer pid %d is not in a PID namespace below this host's", pid)
	}
	if err != nil {
		return fmt.Errorf("peer pid %d: ioctl(NS_GET_PARENT): %w", pid, err)
	}
	defer unix.Close(parent)
	var got, own unix.Stat_t
	if err := unix.Fstat(parent, &got); err != nil {
		return err
	}
	if err := unix.Stat("/proc/thread-self/ns/pid", &own); err != nil {
		return err
	}
	if got.Dev != own.Dev || got.Ino != own.Ino {
		return fmt.Errorf("peer pid %d runs in a PID namespace nested below another one (an isolated session), not in a child of this host's", pid)
	}
	return nil
}

// peerStatus reads the Uid: and NSpid: lines of the process whose /proc
// directory is dir. It fails unless every user ID is root, and tells
// whether the process is PID 1 of its own PID namespace.
func peerStatus(dir, pid int) (pid1 bool, err error) {
	fd, err := unix.Openat(dir, "status", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("peer pid %d: %w", pid, err)
	}
	defer unix.Close(fd)
	// One read: the file is about 1.5 KiB, made whole at the first read;
	// reading it in small pieces costs several times as much.
	buf := make([]byte, 8192)
	n, err := unix.Read(fd, buf)
	if err != nil {
		return false, fmt.Errorf("peer pid %d: read its status: %w", pid, err)
	}
	var uidOK bool
	for _, line := range strings.Split(string(buf[:n]), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		switch k {
		case "Uid":
			uidOK = len(f) == 4
			for _, u := range f {
				uidOK = uidOK && u == "0"
			}
		case "NSpid":
			pid1 = len(f) >= 2 && f[len(f)-1] == "1"
		}
	}
	if !uidOK {
		return false, fmt.Errorf("peer pid %d does not run as root", pid)
	}
	return pid1, nil
}

// procDir opens /proc/PID as a directory descriptor. Everything read
// through it is about that process: once it exits, reads fail with ESRCH
// rather than reach a process that reuses the number.
func procDir(pid int) (int, error) {
	return unix.Open("/proc/"+strconv.Itoa(pid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

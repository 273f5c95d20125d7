package nsinit

// Per-user namespaces (module option scope=user): every isolated session of
// one user shares one PID and mount namespace. The first login creates it
// with enter (its helper runs in per-user mode, init/user.c), later logins
// join it. See the "Per-user namespaces" section of README.md in this
// directory for the protocol and why each step is there.

/*
#include "handshake.h"
*/
import "C"

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// RunDir holds the per-user rendezvous sockets and their lock files. It is
// root's alone (0700) and lives in /run, so nothing survives a reboot.
var RunDir = "/run/pam_unshare"

// joinAttempts bounds how often EnterUser retries when the helper it
// reached withdrew between connect and answer (its namespace was ending).
const joinAttempts = 3

// UserSocket is the rendezvous socket of the per-user namespace of uid.
func UserSocket(uid int) string { return filepath.Join(RunDir, strconv.Itoa(uid)+".sock") }

func userLock(uid int) string { return filepath.Join(RunDir, strconv.Itoa(uid)+".lock") }

// EnterUser moves the calling thread into the per-user namespace of uid:
// it joins the running one, or creates it when there is none (or only one
// that is ending). linger applies when it creates one. The caller must hold
// runtime.LockOSThread. On error nothing is left behind: no helper, no
// counted session, and the thread is back in its own namespaces.
//
// Logins of one user are serialised by a lock file, so two at once end up
// in one namespace; the lock is held only inside this call, never across
// the host's fork.
//
// A host that is not in the top PID namespace (TopPIDNamespace) gets
// ErrNestedHost: it neither creates nor joins. A helper that passes every
// check but whose join then fails (no answer, an answer this build does not
// know, setns refused) gives a *JoinError, with the thread back where it
// was: the caller may give the session a namespace of its own instead.
func EnterUser(cfg Config, uid int, linger bool) (*Session, error) {
	if top, why := TopPIDNamespace(cfg.Helper()); !top {
		return nil, fmt.Errorf("%w: %s", ErrNestedHost, why)
	}
	helperExe, err := openHelper(cfg.Helper())
	if err != nil {
		return nil, err
	}
	defer unix.Close(helperExe)
	helper, err := fileOfFD(helperExe)
	if err != nil {
		return nil, stepErr("open the helper", err)
	}
	if err := ensureRunDir(); err != nil {
		return nil, stepErr("rendezvous directory "+RunDir, err)
	}
	lock, err := unix.Open(userLock(uid), unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, stepErr("open "+userLock(uid), err)
	}
	defer unix.Close(lock)
	for {
		err = unix.Flock(lock, unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return nil, stepErr("lock "+userLock(uid), err)
	}
	for attempt := 1; ; attempt++ {
		conn, peer, err := dialHelper(uid, helper, true, true)
		if err != nil {
			return nil, err
		}
		if conn < 0 {
			return createUser(cfg, helperExe, uid, linger)
		}
		s, err := joinUser(cfg, conn, peer)
		if !errors.Is(err, errWithdrawn) || attempt == joinAttempts {
			return s, err
		}
	}
}

// JoinError: the helper passed every check, but joining its namespace
// failed; the thread is back in its own namespaces.
type JoinError struct {
	HelperPID int
	Err       error
}

func (e *JoinError) Error() string {
	return fmt.Sprintf("join the namespace of helper %d: %v", e.HelperPID, e.Err)
}
func (e *JoinError) Unwrap() error { return e.Err }

// helperFile is the installed helper a per-user helper must run.
type helperFile struct {
	st   unix.Stat_t
	path string // its real path, every symbolic link resolved
}

// fileOfFD describes the helper opened at fd (OpenTrusted's descriptor).
func fileOfFD(fd int) (*helperFile, error) {
	h := &helperFile{}
	if err := unix.Fstat(fd, &h.st); err != nil {
		return nil, err
	}
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return nil, err
	}
	h.path = p
	return h, nil
}

// fileOfPath describes the helper at path. A missing file still gives its
// path: a helper that runs a replaced file is recognised by that alone.
func fileOfPath(path string) *helperFile {
	h := &helperFile{path: filepath.Clean(path)}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		h.path = real
	}
	if err := unix.Stat(h.path, &h.st); err != nil {
		h.st = unix.Stat_t{}
	}
	return h
}

// peerHelper is what the checks learned of the helper at a rendezvous.
type peerHelper struct {
	pid      int
	replaced bool // it runs a helper file that has been replaced since (an upgrade)
}

// errWithdrawn: the helper closed the connection before it counted us;
// its namespace is ending, so try again (and create a new one).
var errWithdrawn = errors.New("the per-user namespace ended while joining it")

// ensureRunDir creates RunDir, or checks that the one there is a directory
// only root can enter: the sockets and locks in it are trusted.
func ensureRunDir() error {
	if err := unix.Mkdir(RunDir, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(RunDir, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Uid != 0 || st.Mode&0o077 != 0 {
		return fmt.Errorf("not a directory owned by root with mode 0700 (mode %#o, uid %d)", st.Mode&0o7777, st.Uid)
	}
	return nil
}

// dialHelper connects to uid's rendezvous and checks the peer (checkPeer;
// with join also its PID namespace). It returns conn -1 when there is no
// live namespace (no socket, or a stale one, which it removes when it holds
// the user's lock, locked).
func dialHelper(uid int, helper *helperFile, locked, join bool) (conn int, peer peerHelper, err error) {
	path := UserSocket(uid)
	conn, err = unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, peer, stepErr("socket", err)
	}
	err = unix.Connect(conn, &unix.SockaddrUnix{Name: path})
	switch {
	case errors.Is(err, unix.ENOENT):
		unix.Close(conn)
		return -1, peer, nil
	case errors.Is(err, unix.ECONNREFUSED):
		// Its helper is gone or has withdrawn; we hold the lock, so
		// nobody else is creating one at this path.
		unix.Close(conn)
		if !locked {
			return -1, peer, nil
		}
		if err := unix.Unlink(path); err != nil && !errors.Is(err, unix.ENOENT) {
			return -1, peer, stepErr("remove stale "+path, err)
		}
		return -1, peer, nil
	case err != nil:
		unix.Close(conn)
		return -1, peer, stepErr("connect to "+path, err)
	}
	peer, err = checkPeer(conn, helper, join)
	if err != nil {
		unix.Close(conn)
		return -1, peer, stepErr("check the helper at "+path, err)
	}
	return conn, peer, nil
}

// checkPeer checks the process at the other end of the connected socket
// conn, which listens at a rendezvous in root's 0700 directory. Each check
// stops a different process from being joined or obeyed:
//   - SO_PEERCRED uid 0, and every uid in its status root: only root could
//     have listened there, and a helper drops nothing;
//   - PID 1 of a PID namespace of its own (NSpid): the namespace joiners
//     enter is the helper's, not one it merely runs in;
//   - it runs the helper file (same device and inode), or a helper file an
//     upgrade replaced since (checkReplacedHelper): root's program, not any
//     root process that happens to listen there;
//   - with join, its PID namespace is a child of the caller's
//     (checkChildNS): a helper started inside a session, where the
//     session's owner sees and signals everything, is never joined. status
//     and stop skip this one, so that root can still end such a namespace.
//
// Everything is read through one /proc/PID descriptor, so a PID reused
// meanwhile cannot answer for the peer (reads then fail with ESRCH).
func checkPeer(conn int, want *helperFile, join bool) (peerHelper, error) {
	var peer peerHelper
	cred, err := unix.GetsockoptUcred(conn, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return peer, err
	}
	if cred.Uid != 0 || cred.Pid <= 0 {
		return peer, fmt.Errorf("peer pid %d uid %d is not a root process of this PID namespace", cred.Pid, cred.Uid)
	}
	peer.pid = int(cred.Pid)
	dir, err := procDir(peer.pid)
	if err != nil {
		return peer, fmt.Errorf("peer pid %d: %w", peer.pid, err)
	}
	defer unix.Close(dir)
	pid1, err := peerStatus(dir, peer.pid)
	if err != nil {
		return peer, err
	}
	if peer.replaced, err = checkPeerExe(dir, peer.pid, want); err != nil {
		return peer, err
	}
	if !pid1 {
		return peer, fmt.Errorf("peer pid %d is not PID 1 of a PID namespace of its own", peer.pid)
	}
	if join {
		if err := checkChildNS(dir, peer.pid); err != nil {
			return peer, err
		}
	}
	return peer, nil
}

// checkPeerExe checks what the process at dir (/proc/PID) runs: the helper
// file want describes, or one an upgrade replaced (replaced true).
func checkPeerExe(dir, pid int, want *helperFile) (replaced bool, err error) {
	// Opening the link reaches the very file the process runs, even one
	// without a name left.
	exe, err := unix.Openat(dir, "exe", unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("peer pid %d: %w", pid, err)
	}
	var got unix.Stat_t
	err = unix.Fstat(exe, &got)
	unix.Close(exe)
	if err != nil {
		return false, fmt.Errorf("peer pid %d: %w", pid, err)
	}
	if want.st.Ino != 0 && got.Dev == want.st.Dev && got.Ino == want.st.Ino {
		return false, nil
	}
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dir, "exe", buf)
	if err != nil {
		return false, fmt.Errorf("peer pid %d: %w", pid, err)
	}
	target := string(buf[:n])
	if err := checkReplacedHelper(target, &got, want.path); err != nil {
		return false, fmt.Errorf("peer pid %d runs %s, not the helper (%v)", pid, target, err)
	}
	return true, nil
}

// joinUser asks the helper at conn to count this host as a session and
// moves the thread into its namespace. It owns conn.
func joinUser(cfg Config, conn int, peer peerHelper) (_ *Session, retErr error) {
	helperPID := peer.pid
	s, err := saveThread(cfg)
	if err != nil {
		unix.Close(conn)
		return nil, err
	}
	s.perUser, s.control, s.helperPID, s.peerReplaced = true, conn, helperPID, peer.replaced
	joined := false
	// fallback marks a failure after which the session may go on in a
	// namespace of its own: the helper passed every check, so it is ours,
	// but could not serve this join.
	fallback := false
	defer func() {
		if joined {
			return
		}
		// Closing conn uncounts us; the helper then ends the
		// namespace if we were its only reason to live.
		s.abortJoin()
		if fallback && !errors.Is(retErr, errWithdrawn) {
			retErr = &JoinError{HelperPID: helperPID, Err: retErr}
		}
	}()
	cwd, cwdErr := unix.Getwd()
	hostFD, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return nil, stepErr("pidfd_open", err)
	}
	join := C.struct_nsinit_msg{_type: C.NSINIT_MSG_JOIN, version: C.NSINIT_PROTO_VERSION, pid: C.int(os.Getpid())}
	setLabel(&join, cfg.Service)
	err = unix.Sendmsg(conn, msgBytes(&join), unix.UnixRights(hostFD), nil, unix.MSG_NOSIGNAL)
	unix.Close(hostFD)
	if err != nil {
		return nil, stepErr("join", errWithdrawn)
	}
	fallback = true
	msg, nsFD, err := recvMsg(conn, readyTimeout)
	if err != nil {
		return nil, stepErr("join", err)
	}
	s.peerVersion = int(msg.version)
	if msg._type != C.NSINIT_MSG_JOINED || nsFD < 0 {
		if nsFD >= 0 {
			unix.Close(nsFD)
		}
		return nil, stepErr("join", fmt.Errorf("unexpected answer %q", rune(msg._type)))
	}
	defer unix.Close(nsFD)
	fallback = false // from here a mismatch is a trust failure
	if pid, err := pidfdPID(nsFD); err != nil || pid != helperPID {
		return nil, stepErr("join", fmt.Errorf("the helper's pidfd is for pid %d, not %d (%v)", pid, helperPID, err))
	}
	// Go's threads share one fs_struct (root, cwd), and setns into a
	// mount namespace refuses a shared one (EINVAL) when End comes back.
	// unshare(CLONE_NEWNS) on the create path gives the thread its own
	// implicitly; here it is done explicitly.
	fallback = true
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return nil, stepErr("unshare(CLONE_FS)", err)
	}
	// One call for both: PID namespace for our children, and the mount
	// namespace, which also moves us to its root directory (Linux 5.8).
	if err := unix.Setns(nsFD, unix.CLONE_NEWPID|unix.CLONE_NEWNS); err != nil {
		return nil, stepErr("setns(CLONE_NEWPID|CLONE_NEWNS) into the namespace of helper "+strconv.Itoa(helperPID), err)
	}
	// Resolve the working directory again inside: the session starts
	// where the host was, as it does in a namespace just created.
	if cwdErr == nil {
		_ = unix.Chdir(cwd)
	}
	joined, s.joinedNS = true, true
	return s, nil
}

// abortJoin undoes a partial join: drop the connection and the saved
// descriptors. The thread has not moved: setns is the last step that can
// fail, and it changes nothing when it does. (Restoring here, as this did
// once, fails: setns back into the saved mount namespace needs the
// unshared fs_struct that only a join that got that far has, so every
// failed join refused the session.)
func (s *Session) abortJoin() {
	s.closeAll()
}

// createUser starts uid's namespace: bind the rendezvous, build the
// namespace with a per-user helper, and publish it by releasing the lock
// (the caller's). On error the socket is removed again.
func createUser(cfg Config, helperExe, uid int, linger bool) (*Session, error) {
	path := UserSocket(uid)
	ln, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, stepErr("socket", err)
	}
	defer unix.Close(ln)
	// Bound here, listened on by the helper: SO_PEERCRED, which joiners
	// check, names the process that called listen().
	if err := unix.Bind(ln, &unix.SockaddrUnix{Name: path}); err != nil {
		return nil, stepErr("bind "+path, err)
	}
	// Root's alone, like its directory (bind applied the host's umask).
	if err := unix.Chmod(path, 0o600); err != nil {
		unix.Unlink(path)
		return nil, stepErr("chmod "+path, err)
	}
	high, err := dupHigh(ln)
	if err != nil {
		unix.Unlink(path)
		return nil, stepErr("socket", err)
	}
	defer unix.Close(high)
	s, err := enter(cfg, helperExe, &userCreate{listenFD: high, linger: linger})
	if err != nil {
		unix.Unlink(path)
		return nil, err
	}
	return s, nil
}

// leave is End for a per-user namespace: the helper answers LEFT when the
// namespace lives on, or tears it down and exits, which closes the
// connection. Only in the second case is there a helper to reap (if it is
// our child).
func (s *Session) leave() error {
	deadline := time.Now().Add(s.grace + endMargin)
	for waitReadable(s.control, time.Until(deadline)) {
		var msg C.struct_nsinit_msg
		n, _, err := unix.Recvfrom(s.control, msgBytes(&msg), unix.MSG_DONTWAIT)
		switch {
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
			continue
		case err == nil && n == int(unsafe.Sizeof(msg)) && msg._type == C.NSINIT_MSG_LEFT:
			return nil
		case err == nil && n > 0:
			continue
		}
		// End-of-file: the namespace is over.
		if s.helperFD >= 0 {
			return s.reapExited()
		}
		return nil
	}
	// Not killed: other sessions may still live in it.
	return fmt.Errorf("helper %d did not answer within %v of leaving its namespace", s.helperPID, s.grace+endMargin)
}

// recvMsg waits up to timeout for one message and at most one descriptor
// (-1 if none came). End-of-file or a reset is errWithdrawn.
func recvMsg(conn int, timeout time.Duration) (C.struct_nsinit_msg, int, error) {
	var msg C.struct_nsinit_msg
	oob := make([]byte, unix.CmsgSpace(4*4))
	deadline := time.Now().Add(timeout)
	for {
		if !waitReadable(conn, time.Until(deadline)) {
			return msg, -1, unix.ETIMEDOUT
		}
		n, oobn, _, _, err := unix.Recvmsg(conn, msgBytes(&msg), oob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.ECONNRESET) || err == nil && n == 0 {
			return msg, -1, errWithdrawn
		}
		if err != nil {
			return msg, -1, err
		}
		fd := -1
		if cmsgs, perr := unix.ParseSocketControlMessage(oob[:oobn]); perr == nil {
			for _, c := range cmsgs {
				fds, _ := unix.ParseUnixRights(&c)
				for _, f := range fds {
					if fd < 0 {
						fd = f
					} else {
						unix.Close(f)
					}
				}
			}
		}
		if n != int(unsafe.Sizeof(msg)) {
			if fd >= 0 {
				unix.Close(fd)
			}
			return msg, -1, fmt.Errorf("short message (%d bytes)", n)
		}
		return msg, fd, nil
	}
}

func setLabel(m *C.struct_nsinit_msg, s string) {
	for i := 0; i < len(m.label)-1 && i < len(s); i++ {
		m.label[i] = C.char(s[i])
	}
}

func msgLabel(m *C.struct_nsinit_msg) string {
	var b strings.Builder
	for _, c := range m.label {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	return b.String()
}

// pidfdPID reads which process a pidfd refers to, as this process's PID
// namespace numbers it.
func pidfdPID(fd int) (int, error) {
	f, err := os.Open("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Pid:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, errors.New("no Pid: line in fdinfo")
}

// UserStatus is what the helper of a per-user namespace reports.
type UserStatus struct {
	UID       int           `json:"uid"`
	HelperPID int           `json:"helper_pid"`
	Linger    bool          `json:"linger"`
	Sessions  []UserSession `json:"sessions"`
	// Protocol is the helper's NSINIT_PROTO_VERSION (0: a build from
	// before the version byte).
	Protocol int `json:"protocol"`
	// Replaced: the helper runs a file that an upgrade has replaced since;
	// it serves its namespace until that ends.
	Replaced bool `json:"replaced,omitempty"`
}

// UserSession is one session counted by a per-user namespace.
type UserSession struct {
	HostPID int    `json:"host_pid"` // the process that opened it (sshd, su, cron)
	Service string `json:"service"`
}

// ErrNoUserNamespace: the user has no live per-user namespace.
var ErrNoUserNamespace = errors.New("no per-user namespace")

// UserNamespaceUIDs lists the UIDs that have a rendezvous socket in RunDir.
// A socket may be stale; QueryUser tells.
func UserNamespaceUIDs() ([]int, error) {
	entries, err := os.ReadDir(RunDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var uids []int
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".sock")
		if !ok {
			continue
		}
		if uid, err := strconv.Atoi(name); err == nil {
			uids = append(uids, uid)
		}
	}
	return uids, nil
}

// adminDial connects to uid's helper for the pam-unshare command.
// The helper's PID namespace is not checked (see checkPeer): root may
// query and stop a namespace that no login would join.
func adminDial(uid int, helper string) (int, peerHelper, error) {
	conn, peer, err := dialHelper(uid, fileOfPath(helper), false, false)
	if err != nil {
		return -1, peer, err
	}
	if conn < 0 {
		return -1, peer, ErrNoUserNamespace
	}
	return conn, peer, nil
}

// QueryUser asks uid's helper, which must be the program at helper, for its
// sessions.
func QueryUser(uid int, helper string) (UserStatus, error) {
	st := UserStatus{UID: uid}
	conn, peer, err := adminDial(uid, helper)
	if err != nil {
		return st, err
	}
	defer unix.Close(conn)
	st.HelperPID, st.Replaced = peer.pid, peer.replaced
	ask := C.struct_nsinit_msg{_type: C.NSINIT_MSG_STATUS, version: C.NSINIT_PROTO_VERSION}
	if err := unix.Sendmsg(conn, msgBytes(&ask), nil, nil, unix.MSG_NOSIGNAL); err != nil {
		return st, err
	}
	msg, fd, err := recvMsg(conn, readyTimeout)
	if fd >= 0 {
		unix.Close(fd)
	}
	if err != nil {
		return st, err
	}
	if msg._type != C.NSINIT_MSG_STATUS {
		return st, fmt.Errorf("unexpected answer %q", rune(msg._type))
	}
	st.Linger = msg.step != 0
	st.Protocol = int(msg.version)
	st.Sessions = []UserSession{}
	for i := 0; i < int(msg.err); i++ {
		m, fd, err := recvMsg(conn, readyTimeout)
		if fd >= 0 {
			unix.Close(fd)
		}
		if err != nil {
			return st, err
		}
		st.Sessions = append(st.Sessions, UserSession{HostPID: int(m.pid), Service: msgLabel(&m)})
	}
	return st, nil
}

// StopUser ends uid's namespace: the helper withdraws its rendezvous,
// sends SIGTERM to everything in it, waits its grace period and exits.
// StopUser returns the helper's PID once it has exited, or an error after
// timeout.
func StopUser(uid int, helper string, timeout time.Duration) (int, error) {
	conn, peer, err := adminDial(uid, helper)
	if err != nil {
		return 0, err
	}
	defer unix.Close(conn)
	pid := peer.pid
	stop := C.struct_nsinit_msg{_type: C.NSINIT_MSG_STOP, version: C.NSINIT_PROTO_VERSION}
	if err := unix.Sendmsg(conn, msgBytes(&stop), nil, nil, unix.MSG_NOSIGNAL); err != nil {
		return pid, err
	}
	if !waitHangup(conn, timeout) {
		return pid, fmt.Errorf("helper %d still running after %v", pid, timeout)
	}
	return pid, nil
}

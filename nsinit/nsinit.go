package nsinit

/*
#cgo CFLAGS: -Wall -Wextra -Werror
#include <stdlib.h>
#include "handshake.h"
#include "nsspawn.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DefaultHelperPath is where the PID-1 helper is installed. The Makefile
// sets it with -ldflags -X from LIBEXECDIR.
var DefaultHelperPath = "/usr/libexec/pam_unshare/" + HelperName

// HelperComm is the helper's process name, what ps -e and pgrep -x show
// (NSINIT_HELPER_COMM in handshake.h).
const HelperComm = C.NSINIT_HELPER_COMM

// Propagation values for Config.Propagation, the helper's -m and the
// module's propagation= (NSINIT_PROPAGATION_* in handshake.h).
const (
	PropagationSlave   = C.NSINIT_PROPAGATION_SLAVE
	PropagationPrivate = C.NSINIT_PROPAGATION_PRIVATE
)

// readyTimeout bounds the wait for the helper's first message. The helper
// needs well under a millisecond; this only keeps a wedged helper from
// hanging a login forever. A variable so that tests can shorten it.
var readyTimeout = 10 * time.Second

// endMargin is how much longer than the grace period End waits for the
// helper before it kills it outright.
const endMargin = 5 * time.Second

// exitWait is how long End waits for the helper's exit to complete once its
// teardown is over (see reapHelper).
const exitWait = 250 * time.Millisecond

// Config says how to build the namespace.
type Config struct {
	HelperPath  string        // the PID-1 helper; empty means DefaultHelperPath
	Propagation string        // PropagationSlave (empty) or PropagationPrivate
	Grace       time.Duration // SIGTERM-to-exit grace period at teardown
	Service     string        // PAM service, shown in the helper's argv
	User        string        // user name, shown in the helper's argv
	NoPidfd     bool          // force the helper's polling fallback
	// UserManager, if not nil, is the account whose systemd user manager
	// the helper relays into the session (-u), so that systemctl --user
	// works there (init/relay.c); nil: no relay.
	UserManager *Account
}

// Account is a user the helper's relay runs as.
type Account struct {
	UID, GID int
}

// Session is a live namespace entered by this thread.
type Session struct {
	tid        int // the thread that entered; only it can leave
	helperPID  int // the helper's PID in the host namespace
	helperFD   int // pidfd of the helper, or -1
	control    int // host end of the control socket
	savedPidNS int // this thread's PID namespace for children, before Enter
	savedMntNS int // this thread's mount namespace, before Enter
	savedRoot  int // this thread's root directory (O_PATH), before Enter
	savedCwd   int // this thread's working directory (O_PATH), before Enter
	grace      time.Duration
	perUser    bool // a per-user namespace (EnterUser): leaving may not end it
	// Joined per-user namespaces only: what the helper answered.
	joinedNS     bool // it joined a running one
	peerVersion  int  // its helper's NSINIT_PROTO_VERSION
	peerReplaced bool // its helper runs a file replaced since (an upgrade)
}

// ProtoVersion is NSINIT_PROTO_VERSION of handshake.h: the version of the
// rendezvous protocol this build speaks.
const ProtoVersion = C.NSINIT_PROTO_VERSION

// JoinedHelper tells, for a session that joined a running per-user
// namespace, the protocol version its helper answered with and whether it
// runs a helper file replaced since it started; ok is false for a session
// that created its namespace.
func (s *Session) JoinedHelper() (version int, replaced, ok bool) {
	return s.peerVersion, s.peerReplaced, s.joinedNS
}

// Helper is the helper program Enter runs: HelperPath, or
// DefaultHelperPath when that is empty.
func (c Config) Helper() string {
	if c.HelperPath == "" {
		return DefaultHelperPath
	}
	return c.HelperPath
}

// HelperPID is the helper's PID as the host sees it.
func (s *Session) HelperPID() int { return s.helperPID }

// Descriptors lists the descriptors the session holds until End. They are
// close-on-exec, but a child the host forks without exec inherits them;
// the PAM module keeps them from such children (glue.c).
func (s *Session) Descriptors() []int {
	var fds []int
	for _, fd := range []int{s.helperFD, s.control, s.savedPidNS, s.savedMntNS, s.savedRoot, s.savedCwd} {
		if fd >= 0 {
			fds = append(fds, fd)
		}
	}
	return fds
}

// StepError says which step of building the namespace failed.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return e.Step + ": " + e.Err.Error() }
func (e *StepError) Unwrap() error { return e.Err }

func stepErr(step string, err error) error { return &StepError{Step: step, Err: err} }

// stepName turns a NSINIT_STEP_* code into words (nsinit_step_name in
// handshake.h).
func stepName(step int) string {
	if name := C.nsinit_step_name(C.int(step)); name != nil {
		return "helper: " + C.GoString(name)
	}
	return "helper: step " + strconv.Itoa(step)
}

// message is one control-socket message (struct nsinit_msg in
// handshake.h) as it goes over the wire.
func message(typ byte, step int, err unix.Errno) []byte {
	msg := C.struct_nsinit_msg{_type: C.uchar(typ), step: C.uchar(step), err: C.int(err)}
	return C.GoBytes(unsafe.Pointer(&msg), C.int(unsafe.Sizeof(msg)))
}

// msgBytes is m's memory as a byte slice, to receive a message into.
func msgBytes(m *C.struct_nsinit_msg) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(m)), unsafe.Sizeof(*m))
}

// The control descriptor and message types of handshake.h.
const (
	fdControl    = C.NSINIT_FD_CONTROL
	msgReady     = C.NSINIT_MSG_READY
	msgFailed    = C.NSINIT_MSG_FAILED
	msgTerminate = C.NSINIT_MSG_TERMINATE
)

// ErrNested means this thread is already in a namespace it entered and has
// not left: a second Enter without End.
var ErrNested = errors.New("this thread already entered a PID namespace that it has not left")

// Enter moves the calling thread into a new PID and mount namespace and
// starts the helper as PID 1. The next process this thread starts is PID 2.
// The helper must pass OpenTrusted, and the descriptor that check opened is
// what runs: it runs as root in every session.
// On error nothing is left behind: no helper, and the thread is back in its
// own namespaces. The caller must hold runtime.LockOSThread.
func Enter(cfg Config) (*Session, error) {
	helper := cfg.Helper()
	helperExe, err := openHelper(helper)
	if err != nil {
		return nil, err
	}
	defer unix.Close(helperExe)
	return enter(cfg, helperExe, nil)
}

// userCreate is what creating a per-user namespace adds to Enter.
type userCreate struct {
	listenFD int // the bound, listening rendezvous socket
	linger   bool
}

// saveThread records what this thread must return to: its PID and mount
// namespaces, root and working directory. It refuses a thread that is
// already in a namespace it entered. On error nothing is held.
func saveThread(cfg Config) (*Session, error) {
	childrenNS, err := openNS("/proc/thread-self/ns/pid_for_children")
	if err != nil {
		return nil, stepErr("save the PID namespace", err)
	}
	if nested, err := enteredNamespace(childrenNS); err != nil || nested {
		unix.Close(childrenNS)
		if err != nil {
			return nil, stepErr("inspect /proc/thread-self/ns/pid", err)
		}
		return nil, stepErr("enter", ErrNested)
	}
	s := &Session{tid: unix.Gettid(), helperFD: -1, control: -1,
		savedPidNS: childrenNS, savedMntNS: -1, savedRoot: -1, savedCwd: -1, grace: cfg.Grace}
	if s.savedMntNS, err = openNS("/proc/thread-self/ns/mnt"); err != nil {
		s.closeAll()
		return nil, stepErr("save the mount namespace", err)
	}
	// setns into a mount namespace moves the thread to that namespace's
	// root directory, so End puts the root and working directory back.
	if s.savedRoot, err = unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
		s.closeAll()
		return nil, stepErr("save the root directory", err)
	}
	if s.savedCwd, err = unix.Open(".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
		s.closeAll()
		return nil, stepErr("save the working directory", err)
	}
	return s, nil
}

// enter builds a new namespace with the helper as PID 1: a per-session
// one, or with uc a per-user one that later sessions can join.
// helperExe is the helper's descriptor from openHelper: what runs.
func enter(cfg Config, helperExe int, uc *userCreate) (_ *Session, retErr error) {
	helper := cfg.Helper()
	s, err := saveThread(cfg)
	if err != nil {
		return nil, err
	}
	s.perUser = uc != nil
	// Undo everything on any early return, and on a panic too: a thread
	// left in the new namespaces would break the host's next fork.
	entered := false
	defer func() {
		if !entered {
			// A failed undo matters most: the thread may be stuck in a
			// namespace whose PID 1 is gone, so the host's forks fail.
			retErr = errors.Join(retErr, s.abort())
		}
	}()
	// A pidfd of this process lets the helper notice the host's death
	// (kill -9 of su). Kernels before 5.3 lack it; the helper then polls.
	hostFD := -1
	if !cfg.NoPidfd {
		fd, err := unix.PidfdOpen(os.Getpid(), 0)
		if err == nil {
			defer unix.Close(fd)
			if hostFD, err = dupHigh(fd); err != nil {
				return nil, stepErr("pidfd_open", err)
			}
			defer unix.Close(hostFD)
		} else if !errors.Is(err, unix.ENOSYS) {
			return nil, stepErr("pidfd_open", err)
		}
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, stepErr("socketpair", err)
	}
	s.control = pair[0]
	helperEnd, err := dupHigh(pair[1])
	unix.Close(pair[1])
	if err != nil {
		return nil, stepErr("socketpair", err)
	}

	if err = unix.Unshare(unix.CLONE_NEWPID | unix.CLONE_NEWNS); err != nil {
		unix.Close(helperEnd)
		return nil, stepErr("unshare(CLONE_NEWPID|CLONE_NEWNS)", err)
	}
	from, to := []int{helperEnd}, []int{fdControl}
	if hostFD >= 0 {
		from, to = append(from, hostFD), append(to, C.NSINIT_FD_HOST)
	}
	args := helperArgs(cfg)
	if uc != nil {
		from, to = append(from, uc.listenFD), append(to, C.NSINIT_FD_LISTEN)
		args.PerUser, args.Linger, args.HostPID = true, uc.linger, os.Getpid()
	}
	s.helperPID, err = spawn(execPath(helperExe), args.Argv(), []string{}, from, to)
	// The host must not keep the helper's end: a helper that dies must
	// give end-of-file, not a wait for readyTimeout.
	unix.Close(helperEnd)
	if err != nil {
		return nil, stepErr("start "+helper, err)
	}
	// The helper is our child; pidfd_open on a child always works when
	// the syscall exists.
	if fd, err := unix.PidfdOpen(s.helperPID, 0); err == nil {
		s.helperFD = fd
	}
	if err = s.awaitReady(); err != nil {
		return nil, err
	}
	entered = true
	return s, nil
}

// openHelper opens the helper and checks it (OpenTrusted). The descriptor
// is kept above the numbers the helper's descriptors are mapped to, so
// that the mapping cannot clobber it before the exec.
func openHelper(helper string) (int, error) {
	fd, err := OpenTrusted(helper, true)
	if err != nil {
		return -1, stepErr("untrusted helper", err)
	}
	high, err := dupHigh(fd)
	unix.Close(fd)
	if err != nil {
		return -1, stepErr("open the helper", err)
	}
	return high, nil
}

// execPath is the name under which the checked helper descriptor fd is
// executed. The helper is spawned after unshare(CLONE_NEWPID|CLONE_NEWNS),
// but the path is resolved by the spawned child before its exec, in the
// new mount namespace, which is still a copy of the host's: its /proc is
// the host's procfs (the helper replaces it only once it runs). In that
// procfs "self" is the child under its host PID (a process of a child PID
// namespace is visible in its parent's procfs), and fd/N is its copy of
// the host's descriptor table (posix_spawn does not share it), so the
// kernel executes exactly the file OpenTrusted checked. The descriptor is
// close-on-exec; exec opens the file before it closes those, which is
// fine for a binary (a #! script would find its /proc/self/fd/N gone).
// Without a /proc the exec fails and the session is refused.
func execPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// awaitReady waits for the helper's first message on the control socket.
func (s *Session) awaitReady() error {
	deadline := time.Now().Add(readyTimeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return stepErr("wait for the helper", unix.ETIMEDOUT)
		}
		pfd := []unix.PollFd{{Fd: int32(s.control), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, int(left.Milliseconds())+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return stepErr("wait for the helper", err)
		}
		if n == 0 {
			continue
		}
		var msg C.struct_nsinit_msg
		buf := msgBytes(&msg)
		got, _, err := unix.Recvfrom(s.control, buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		switch {
		case err != nil:
			return stepErr("wait for the helper", err)
		case got == 0:
			return stepErr("wait for the helper", errors.New("helper exited before it was ready"))
		case got != len(buf):
			return stepErr("wait for the helper", fmt.Errorf("short message from the helper: %d of %d bytes", got, len(buf)))
		case msg._type == msgReady:
			return nil
		case msg._type == msgFailed:
			return stepErr(stepName(int(msg.step)), unix.Errno(msg.err))
		default:
			return stepErr("wait for the helper", fmt.Errorf("unexpected message %q", rune(msg._type)))
		}
	}
}

// End tears the namespace down and returns this thread to the namespaces
// it had before Enter. It waits for the helper, which exits once the
// namespace is empty or the grace period is over.
//
// In a per-user namespace End only leaves it, unless this was its last
// session and it does not linger: then the helper tears it down first.
func (s *Session) End() error {
	// EPIPE or ECONNREFUSED: the helper already ended the session because
	// the session leader exited. That is the common case, not an error.
	_ = unix.Sendmsg(s.control, message(msgTerminate, 0, 0), nil, nil, unix.MSG_NOSIGNAL)
	var waitErr error
	if s.perUser {
		waitErr = s.leave()
	} else {
		waitErr = s.reapHelper(s.grace + endMargin)
	}
	restoreErr := s.restore()
	s.closeAll()
	return errors.Join(waitErr, restoreErr)
}

// abort undoes a partial Enter: kill the helper if there is one, reap it,
// and restore the thread's namespaces. It returns only restore's error:
// the helper is gone either way.
func (s *Session) abort() error {
	if s.helperPID > 0 {
		s.kill()
		_ = s.reapHelper(endMargin)
	}
	err := s.restore()
	s.closeAll()
	return err
}

func (s *Session) kill() {
	if s.helperFD >= 0 {
		_ = unix.PidfdSendSignal(s.helperFD, unix.SIGKILL, nil, 0)
	} else {
		_ = unix.Kill(s.helperPID, unix.SIGKILL)
	}
}

// reapHelper waits up to timeout for the helper to finish its teardown,
// kills it if it has not, and reaps it if it can.
//
// The helper's descriptors close as it exits, so end-of-file on the control
// socket marks the end of teardown. Its exit can still block after that:
// the kernel keeps PID 1 of a namespace in exit until every other process
// of the namespace has been reaped, and the session leader is the host's
// child. sshd's monitor closes the PAM session before it reaps its
// post-auth child, so waiting for the helper there would deadlock. The
// helper is reaped when it is done within exitWait; otherwise the host
// reaps it with its own children (or init does, once the host exits).
func (s *Session) reapHelper(timeout time.Duration) error {
	var err error
	if !waitHangup(s.control, timeout) {
		err = fmt.Errorf("helper %d still running %v after teardown began; killed it", s.helperPID, timeout)
		s.kill()
	}
	return errors.Join(err, s.reapExited())
}

// reapExited reaps the helper, whose teardown is over, if its exit
// completes within exitWait (see reapHelper).
func (s *Session) reapExited() error {
	var err error
	if s.helperFD >= 0 && !waitReadable(s.helperFD, exitWait) {
		return err // still held in exit by an unreaped session leader
	}
	for deadline := time.Now().Add(exitWait); ; {
		pid, werr := unix.Wait4(s.helperPID, nil, unix.WNOHANG, nil)
		switch {
		case pid == s.helperPID, errors.Is(werr, unix.ECHILD):
			// ECHILD: the host reaped it itself (a SIGCHLD handler that
			// waits for any child). Either way it is gone.
			return err
		case werr != nil && !errors.Is(werr, unix.EINTR):
			return errors.Join(err, fmt.Errorf("wait for helper %d: %w", s.helperPID, werr))
		case time.Now().After(deadline):
			return err
		}
		time.Sleep(time.Millisecond)
	}
}

// waitHangup waits up to timeout for end-of-file on the control socket,
// discarding anything read before it.
func waitHangup(fd int, timeout time.Duration) bool {
	var buf [64]byte
	deadline := time.Now().Add(timeout)
	for waitReadable(fd, time.Until(deadline)) {
		n, _, err := unix.Recvfrom(fd, buf[:], unix.MSG_DONTWAIT)
		if n == 0 && err == nil || err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
			return true
		}
	}
	return false
}

// waitReadable polls fd until it is readable or timeout passes.
func waitReadable(fd int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(left.Milliseconds())+1)
		if err == nil && n > 0 {
			return true
		}
		if err != nil && !errors.Is(err, unix.EINTR) {
			return false
		}
	}
}

// restore moves this thread back to the saved namespaces. It must run on
// the thread that entered: setns acts on the calling thread only.
func (s *Session) restore() error {
	if tid := unix.Gettid(); tid != s.tid {
		return fmt.Errorf("namespaces were entered by thread %d but left from thread %d; thread %d stays in them", s.tid, tid, s.tid)
	}
	var errs []error
	if s.savedPidNS >= 0 {
		if err := unix.Setns(s.savedPidNS, unix.CLONE_NEWPID); err != nil {
			errs = append(errs, fmt.Errorf("setns back to the PID namespace: %w", err))
		}
	}
	if s.savedMntNS >= 0 {
		if err := unix.Setns(s.savedMntNS, unix.CLONE_NEWNS); err != nil {
			errs = append(errs, fmt.Errorf("setns back to the mount namespace: %w", err))
		}
	}
	if s.savedRoot >= 0 && s.savedCwd >= 0 {
		if err := restoreDirs(s.savedRoot, s.savedCwd); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// restoreDirs makes root the thread's root directory again (a chrooted
// host stays chrooted) and cwd its working directory.
func restoreDirs(root, cwd int) error {
	if err := unix.Fchdir(root); err != nil {
		return fmt.Errorf("restore the root directory: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("restore the root directory: %w", err)
	}
	if err := unix.Fchdir(cwd); err != nil {
		return fmt.Errorf("restore the working directory: %w", err)
	}
	return nil
}

func (s *Session) closeAll() {
	for _, fd := range []*int{&s.helperFD, &s.control, &s.savedPidNS, &s.savedMntNS, &s.savedRoot, &s.savedCwd} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}

// enteredNamespace reports whether this thread's PID namespace for
// children, open as childrenNS, differs from its own: the thread unshared
// and has not come back.
func enteredNamespace(childrenNS int) (bool, error) {
	var own, children unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/pid", &own); err != nil {
		return false, err
	}
	if err := unix.Fstat(childrenNS, &children); err != nil {
		return false, err
	}
	return own.Ino != children.Ino || own.Dev != children.Dev, nil
}

func openNS(path string) (int, error) {
	return unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
}

// lowestHighFD is where descriptors handed to the helper are kept, so that
// mapping them to NSINIT_FD_CONTROL and NSINIT_FD_HOST clobbers nothing.
const lowestHighFD = 10

func dupHigh(fd int) (int, error) {
	return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, lowestHighFD)
}

// Spawn starts argv[0], an absolute path, with env and the caller's stdio,
// from this thread. Inside an entered namespace the first one becomes PID 2.
// It never uses os/exec: see the package comment.
func Spawn(argv, env []string) (int, error) {
	if len(argv) == 0 {
		return 0, errors.New("spawn: empty command")
	}
	return spawn(argv[0], argv, env, nil, nil)
}

// spawn wraps nsinit_spawn (nsspawn.c). from[i] becomes descriptor to[i]
// in the child.
func spawn(path string, argv, env []string, from, to []int) (int, error) {
	cPath := C.CString(path)
	defer C.free(unsafe.Pointer(cPath))
	cArgv := cStrings(argv)
	defer freeStrings(cArgv)
	cEnv := cStrings(env)
	defer freeStrings(cEnv)
	// One C array: from[] then to[], plus a slot so it is never empty.
	n := len(from)
	fds := (*C.int)(C.malloc(C.size_t(2*n+1) * C.size_t(unsafe.Sizeof(C.int(0)))))
	defer C.free(unsafe.Pointer(fds))
	view := unsafe.Slice(fds, 2*n+1)
	for i := range from {
		view[i], view[n+i] = C.int(from[i]), C.int(to[i])
	}
	var pid C.pid_t
	if rc := C.nsinit_spawn(cPath, cArgv, cEnv, &view[0], &view[n], C.int(n), &pid); rc != 0 {
		return 0, unix.Errno(rc)
	}
	return int(pid), nil
}

// cStrings makes a NULL-terminated C array of C strings, in C memory.
func cStrings(ss []string) **C.char {
	arr := (**C.char)(C.malloc(C.size_t(len(ss)+1) * C.size_t(unsafe.Sizeof((*C.char)(nil)))))
	view := unsafe.Slice(arr, len(ss)+1)
	for i, s := range ss {
		view[i] = C.CString(s)
	}
	view[len(ss)] = nil
	return arr
}

func freeStrings(arr **C.char) {
	for p := arr; *p != nil; p = (**C.char)(unsafe.Add(unsafe.Pointer(p), unsafe.Sizeof(*p))) {
		C.free(unsafe.Pointer(*p))
	}
	C.free(unsafe.Pointer(arr))
}

// SpawnStdio is Spawn with the child's descriptors 0, 1 and 2 taken from
// stdio (a value of -1 keeps the caller's own): pam-unshare run gives a
// command run as another user a pseudo-terminal of its own this way.
func SpawnStdio(argv, env []string, stdio [3]int) (int, error) {
	if len(argv) == 0 {
		return 0, errors.New("spawn: empty command")
	}
	var from, to []int
	for i, fd := range stdio {
		if fd >= 0 {
			from, to = append(from, fd), append(to, i)
		}
	}
	return spawn(argv[0], argv, env, from, to)
}

package main

// run --user: the command never shares the caller's terminal.
//
// A process that has root's terminal as its controlling terminal, or just
// an open descriptor to it, can read what root types next, and with its
// controlling terminal send job-control signals to root's shell or push
// input with TIOCSTI where the kernel still allows it (Linux 6.1 does;
// dev.tty.legacy_tiocsti from 6.2). This is the su/runuser hijack class,
// CVE-2016-2779. As "su --pty" and "runuser --pty" do, the command gets
// its own session (setsid) and, when the caller has a terminal on any of
// descriptors 0, 1 and 2, a pseudo-terminal of its own that this process
// relays to the caller's: the caller's terminal in raw mode meanwhile,
// window size followed, settings restored at the end. Without a terminal
// the command gets only the new session, and no controlling terminal.
//
// setsid(1) makes the session: the command starts through nsinit's C
// spawn (no Go code may fork in the namespace-entering thread), which
// cannot call setsid and TIOCSCTTY itself. setsid runs as root before
// setpriv drops to the user, and execs, so the command keeps PID 2.

import (
	"errors"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// setsidPaths are tried in order for the command's new session.
var setsidPaths = []string{"/usr/bin/setsid", "/bin/setsid"}

// ptyDrain bounds how long the relay waits, after the namespace ended, for
// output still in the pseudo-terminal. Everything in the namespace is gone
// by then, so the slave side is closed and the read ends at once; the
// bound only matters if the command passed the slave to a process outside.
const ptyDrain = 200 * time.Millisecond

// ownTerminal is the command's session and, when the caller has a
// terminal, its pseudo-terminal and the relay to the caller's.
type ownTerminal struct {
	argvPrefix []string // setsid [--ctty]
	stdio      [3]int   // the child's 0, 1, 2: the slave, or -1 (the caller's own)

	master, slave *os.File
	caller        int            // the caller's terminal descriptor (0, 1 or 2)
	saved         *unix.Termios  // the caller's settings, restored at the end; nil: not changed
	out           io.Writer      // where the command's terminal output goes
	outDone       chan struct{}  // closed when the output relay ends
	winch         chan os.Signal // SIGWINCH: the caller's window changed
	stop          sync.Once
}

// isTerminal reports whether fd is a terminal.
func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// newOwnTerminal prepares the command's session for a command run as uid.
// Call it before entering the namespace; start the relay with relay()
// once the command runs, and end it with finish().
func newOwnTerminal(uid int) (*ownTerminal, error) {
	setsid := firstExisting(setsidPaths)
	if setsid == "" {
		return nil, errors.New("--user needs setsid(1) from util-linux, which is not installed")
	}
	t := &ownTerminal{argvPrefix: []string{setsid}, stdio: [3]int{-1, -1, -1}, caller: -1}
	for fd := 0; fd <= 2; fd++ {
		if isTerminal(fd) {
			if t.caller < 0 {
				t.caller = fd
			}
		}
	}
	if t.caller < 0 {
		return t, nil // no terminal to keep from the command: a new session is enough
	}
	if err := t.openPty(uid); err != nil {
		return nil, err
	}
	for fd := 0; fd <= 2; fd++ {
		if isTerminal(fd) {
			t.stdio[fd] = int(t.slave.Fd())
		}
	}
	if t.stdio[0] >= 0 {
		// The slave is the command's stdin: make it the controlling
		// terminal, so the command has job control on its own terminal.
		t.argvPrefix = append(t.argvPrefix, "--ctty")
	}
	t.out = os.Stdout
	if t.stdio[1] < 0 {
		t.out = os.Stderr
	}
	// Before the namespace is entered, like run's other signals.
	t.winch = make(chan os.Signal, 1)
	signal.Notify(t.winch, syscall.SIGWINCH)
	return t, nil
}

// openPty opens a pseudo-terminal pair with the caller's settings and
// window size, its slave owned by uid as login programs do.
func (t *ownTerminal) openPty(uid int) error {
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("open /dev/ptmx", err)
	}
	t.master = os.NewFile(uintptr(m), "/dev/ptmx")
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		t.master.Close()
		return os.NewSyscallError("unlockpt", err)
	}
	// TIOCGPTPEER opens the slave from the master, with no path to race on.
	s, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if errno != 0 {
		t.master.Close()
		return os.NewSyscallError("TIOCGPTPEER", errno)
	}
	t.slave = os.NewFile(s, "pty slave")
	err = unix.Fchown(int(s), uid, -1)
	if err == nil {
		err = unix.Fchmod(int(s), 0o620)
	}
	if err != nil {
		t.slave.Close()
		t.master.Close()
		return os.NewSyscallError("giving the terminal to the user", err)
	}
	if tio, err := unix.IoctlGetTermios(t.caller, unix.TCGETS); err == nil {
		_ = unix.IoctlSetTermios(int(s), unix.TCSETS, tio)
	}
	t.copyWindowSize()
	return nil
}

// copyWindowSize gives the command's terminal the caller's window size.
func (t *ownTerminal) copyWindowSize() {
	if ws, err := unix.IoctlGetWinsize(t.caller, unix.TIOCGWINSZ); err == nil {
		_ = unix.IoctlSetWinsize(int(t.master.Fd()), unix.TIOCSWINSZ, ws)
	}
}

// closeSlave drops this process's copy of the slave once the command has
// its own, so that the relay sees the end when the command's side closes.
func (t *ownTerminal) closeSlave() {
	if t.slave != nil {
		t.slave.Close()
		t.slave = nil
	}
}

// relay copies between the caller's terminal and the command's until
// finish: keys typed (in raw mode, so ^C and ^Z reach the command's
// terminal as bytes and its line discipline turns them into signals) and
// output, and follows window size changes. It starts goroutines only: the
// runtime makes their threads from its template thread, never from the
// locked thread that entered the namespace.
func (t *ownTerminal) relay() {
	if t.master == nil {
		return
	}
	if t.stdio[0] >= 0 {
		if tio, err := unix.IoctlGetTermios(0, unix.TCGETS); err == nil {
			saved := *tio
			raw := *tio
			raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
			raw.Oflag &^= unix.OPOST
			raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
			raw.Cflag &^= unix.CSIZE | unix.PARENB
			raw.Cflag |= unix.CS8
			raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
			if unix.IoctlSetTermios(0, unix.TCSETSW, &raw) == nil {
				t.saved = &saved
			}
		}
		// Not waited for: it blocks reading the caller's terminal until
		// this process exits.
		go func() { _, _ = io.Copy(t.master, os.Stdin) }()
	}
	t.outDone = make(chan struct{})
	go func() {
		defer close(t.outDone)
		// Ends with EIO once every holder of the slave has closed it.
		_, _ = io.Copy(t.out, t.master)
	}()
	go func() {
		for range t.winch {
			t.copyWindowSize()
		}
	}()
}

// finish waits for the command's last output (the namespace has ended),
// stops the relay and restores the caller's terminal. Safe to call twice.
func (t *ownTerminal) finish() {
	t.stop.Do(func() {
		if t.master == nil {
			return
		}
		t.closeSlave()
		if t.outDone != nil {
			_ = t.master.SetReadDeadline(time.Now().Add(ptyDrain))
			<-t.outDone
		}
		if t.winch != nil {
			signal.Stop(t.winch)
			close(t.winch)
		}
		if t.saved != nil {
			_ = unix.IoctlSetTermios(0, unix.TCSETSW, t.saved)
		}
		t.master.Close()
	})
}

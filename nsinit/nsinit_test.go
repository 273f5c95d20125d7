package nsinit

// Enter and End against the real helper and against a fake one: this test
// binary, started by Enter as the helper, playing the helper's side of the
// handshake (handshake.h) wrongly in each way a helper can.
//
// These tests need root. They run in a private mount namespace of their
// own (TestMain re-executes the binary under unshare), so the helper's
// /proc mount and anything a failed undo leaves can never reach the
// machine's mounts. Each test locks its goroutine to its thread and never
// unlocks it: if a test fails with the thread still inside a namespace,
// the runtime discards the thread when the goroutine ends.

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// privateMountsEnv marks the re-executed test binary.
const privateMountsEnv = "NSINIT_TEST_PRIVATE_MOUNTS"

// fakePrefix starts the SERVICE label that makes the test binary a fake
// helper; the rest names its behaviour (see fakeHelper). The helper gets
// an empty environment, so its command line is the only way to tell it.
const fakePrefix = "nsinit-test-fake-"

func TestMain(m *testing.M) {
	if len(os.Args) > 0 && os.Args[0] == HelperName {
		os.Exit(fakeHelper(os.Args))
	}
	flag.Parse()
	if os.Geteuid() == 0 && !testing.Short() && os.Getenv(privateMountsEnv) == "" {
		exe, err := os.Executable()
		if err == nil {
			var unshare string
			if unshare, err = exec.LookPath("unshare"); err == nil {
				argv := append([]string{"unshare", "--mount", "--propagation", "private", exe}, os.Args[1:]...)
				err = syscall.Exec(unshare, argv, append(os.Environ(), privateMountsEnv+"=1"))
			}
		}
		fmt.Fprintf(os.Stderr, "nsinit tests: cannot re-run in a private mount namespace: %v\n", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// fakeHelper is the helper side of the handshake, done wrongly (or, for
// "ready", rightly) on purpose. It returns the exit status.
func fakeHelper(argv []string) int {
	a, err := ParseHelperArgv(argv)
	if err != nil {
		return 2
	}
	send := func(b []byte) { _, _ = unix.Write(fdControl, b) }
	switch strings.TrimPrefix(a.Service, fakePrefix) {
	case "ready": // ready, then wait for TERMINATE or end-of-file
		send(message(msgReady, 0, 0))
		buf := make([]byte, 64)
		for {
			n, err := unix.Read(fdControl, buf)
			if n <= 0 && !errors.Is(err, unix.EINTR) || n > 0 && buf[0] == msgTerminate {
				return 0
			}
		}
	case "fail": // setup failed at mounting /proc
		send(message(msgFailed, fakeStep, unix.EACCES))
		return 1
	case "short": // a message cut short, then silence
		send([]byte{msgReady})
	case "bogus": // a message type the host does not know
		send(message('?', 0, 0))
	case "exit": // gone before it says anything
		return 1
	case "never": // alive, silent: never becomes ready
	}
	time.Sleep(time.Hour) // until the host kills us
	return 1
}

// fakeStep is the step the "fail" fake reports: any NSINIT_STEP_* code
// (3 is mounting /proc) does.
const fakeStep = 3

// needRoot skips tests that build namespaces unless they can run.
func needRoot(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds namespaces; not with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if os.Getenv(privateMountsEnv) == "" {
		t.Fatal("not in the private mount namespace that TestMain makes")
	}
}

// trustedCopy copies src into a fresh root-owned directory, so that it
// passes CheckTrusted, and returns the copy's path.
func trustedCopy(t *testing.T, src string) string {
	t.Helper()
	exe, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), HelperName)
	if err := os.WriteFile(dst, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

// fakeHelperPath is this test binary, where Enter trusts it.
func fakeHelperPath(t *testing.T) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return trustedCopy(t, exe)
}

var (
	realHelperOnce sync.Once
	realHelperBin  string
	realHelperErr  error
)

// realHelper is the helper (helperSources), compiled once per run with $CC (cc).
func realHelper(t *testing.T) string {
	t.Helper()
	realHelperOnce.Do(func() {
		dir, err := os.MkdirTemp("", "nsinit-helper")
		if err != nil {
			realHelperErr = err
			return
		}
		realHelperBin = filepath.Join(dir, HelperName)
		realHelperErr = compileC(realHelperBin, helperSources()...)
	})
	if realHelperErr != nil {
		t.Fatal(realHelperErr)
	}
	return trustedCopy(t, realHelperBin)
}

// helperSources are the helper's C files: every init/*.c but the test
// programs.
func helperSources() []string {
	all, _ := filepath.Glob("init/*.c")
	var srcs []string
	for _, f := range all {
		if !strings.HasSuffix(f, "_test.c") && f != "init/config_print.c" {
			srcs = append(srcs, f)
		}
	}
	return srcs
}

// compileC builds a C program from srcs with $CC (cc), warnings as errors.
func compileC(out string, srcs ...string) error {
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	args := append([]string{"-O2", "-Wall", "-Wextra", "-Werror", "-o", out}, srcs...)
	if msg, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v\n%s", cc, err, msg)
	}
	return nil
}

// threadState is what Enter changes on the calling thread and End and the
// undo of a failed Enter must put back.
type threadState struct {
	pidNS, childrenNS, mntNS, root, cwd string
	fds                                 int // open in the process
	children                            bool
}

func threadNow(t *testing.T) threadState {
	t.Helper()
	var s threadState
	for _, f := range []struct {
		dst  *string
		path string
	}{
		{&s.pidNS, "/proc/thread-self/ns/pid"},
		{&s.childrenNS, "/proc/thread-self/ns/pid_for_children"},
		{&s.mntNS, "/proc/thread-self/ns/mnt"},
		{&s.root, "/proc/thread-self/root"},
		{&s.cwd, "/proc/thread-self/cwd"},
	} {
		v, err := os.Readlink(f.path)
		if err != nil {
			t.Fatal(err)
		}
		*f.dst = v
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	s.fds = len(fds)
	_, err = unix.Wait4(-1, nil, unix.WNOHANG, nil)
	s.children = !errors.Is(err, unix.ECHILD)
	return s
}

// helperGone reports whether the helper is neither running nor a zombie.
func helperGone(pid int) bool {
	return errors.Is(unix.Kill(pid, 0), unix.ESRCH)
}

// Three sessions in a row on one thread: each time the first process
// started is PID 2, sees only the helper (PID 1, named HelperComm) and
// itself, and End puts the thread back where it was.
func TestEnterEndCycles(t *testing.T) {
	needRoot(t)
	helper := realHelper(t)
	out := filepath.Join(t.TempDir(), "seen")
	runtime.LockOSThread()
	before := threadNow(t)
	for i := 0; i < 3; i++ {
		s, err := Enter(Config{HelperPath: helper, Grace: 100 * time.Millisecond, Service: "test", User: "nobody"})
		if err != nil {
			t.Fatalf("cycle %d: Enter: %v", i, err)
		}
		// Shell builtins only: a forked ls would list itself.
		pid, err := Spawn([]string{"/bin/sh", "-c", `{ echo "$$"; for p in /proc/[0-9]*; do echo "${p#/proc/}"; done; read -r c </proc/1/comm; echo "$c"; } >` + out}, nil)
		if err != nil {
			t.Fatalf("cycle %d: Spawn: %v", i, err)
		}
		if _, err := unix.Wait4(pid, nil, 0, nil); err != nil {
			t.Fatalf("cycle %d: wait: %v", i, err)
		}
		if err := s.End(); err != nil {
			t.Errorf("cycle %d: End: %v", i, err)
		}
		seen, _ := os.ReadFile(out)
		if want := "2\n1\n2\n" + HelperComm + "\n"; string(seen) != want {
			t.Errorf("cycle %d: the session saw %q, want %q", i, seen, want)
		}
		if !helperGone(s.HelperPID()) {
			t.Errorf("cycle %d: helper %d still there after End", i, s.HelperPID())
		}
		if after := threadNow(t); after != before {
			t.Fatalf("cycle %d: thread before Enter %+v, after End %+v", i, before, after)
		}
	}
}

// A second Enter without End is refused, and the first session still ends
// cleanly.
func TestEnterNested(t *testing.T) {
	needRoot(t)
	cfg := Config{HelperPath: fakeHelperPath(t), Service: fakePrefix + "ready", User: "nobody"}
	runtime.LockOSThread()
	before := threadNow(t)
	s, err := Enter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	inner, err := Enter(cfg)
	if !errors.Is(err, ErrNested) || inner != nil {
		t.Errorf("second Enter: %v, %v; want ErrNested", inner, err)
	}
	if err := s.End(); err != nil {
		t.Errorf("End: %v", err)
	}
	if !helperGone(s.HelperPID()) {
		t.Errorf("helper %d still there after End", s.HelperPID())
	}
	if after := threadNow(t); after != before {
		t.Errorf("thread before Enter %+v, after End %+v", before, after)
	}
}

// Each way a helper can fail the handshake makes Enter fail with an error
// that says how, and leaves nothing behind: the helper is killed and
// reaped, and the thread is back in its namespaces and directories with
// no descriptor more.
func TestEnterHelperFails(t *testing.T) {
	needRoot(t)
	helper := fakeHelperPath(t)
	defer func(d time.Duration) { readyTimeout = d }(readyTimeout)
	readyTimeout = 300 * time.Millisecond
	runtime.LockOSThread()
	for _, tc := range []struct {
		mode string
		want func(error) bool
	}{
		{"fail", func(err error) bool {
			var se *StepError
			return errors.As(err, &se) && se.Step == stepName(fakeStep) && errors.Is(err, unix.EACCES)
		}},
		{"short", func(err error) bool { return strings.Contains(err.Error(), "short message from the helper: 1 of") }},
		{"bogus", func(err error) bool { return strings.Contains(err.Error(), `unexpected message '?'`) }},
		{"exit", func(err error) bool { return strings.Contains(err.Error(), "helper exited before it was ready") }},
		{"never", func(err error) bool { return errors.Is(err, unix.ETIMEDOUT) }},
	} {
		before := threadNow(t)
		start := time.Now()
		s, err := Enter(Config{HelperPath: helper, Service: fakePrefix + tc.mode, User: "nobody"})
		if s != nil || err == nil || !tc.want(err) {
			t.Errorf("%s: Enter returned %v, %v", tc.mode, s, err)
		}
		if took := time.Since(start); took > readyTimeout+endMargin {
			t.Errorf("%s: Enter took %v", tc.mode, took)
		}
		if after := threadNow(t); after != before {
			t.Fatalf("%s: thread before Enter %+v, after the failed Enter %+v", tc.mode, before, after)
		}
	}
}

// End on another thread than the one that entered cannot move that thread
// back (setns acts on the calling thread), and says so. The helper is
// still ended, and the calling thread is left alone.
func TestEndOnAnotherThread(t *testing.T) {
	needRoot(t)
	cfg := Config{HelperPath: fakeHelperPath(t), Service: fakePrefix + "ready", User: "nobody"}
	runtime.LockOSThread()
	before := threadNow(t)
	entered := make(chan *Session)
	release := make(chan struct{})
	go func() {
		// Locked and never unlocked: the runtime discards this thread,
		// still in the namespaces, when the goroutine ends.
		runtime.LockOSThread()
		s, err := Enter(cfg)
		if err != nil {
			t.Error(err)
		}
		entered <- s
		<-release
	}()
	s := <-entered
	defer close(release)
	if s == nil {
		t.FailNow()
	}
	err := s.End()
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("entered by thread %d but left from thread %d", s.tid, unix.Gettid())) {
		t.Errorf("End on another thread: %v", err)
	}
	if !helperGone(s.HelperPID()) {
		t.Errorf("helper %d still there after End", s.HelperPID())
	}
	if after := threadNow(t); after != before {
		t.Errorf("the ending thread changed: before %+v, after %+v", before, after)
	}
}

package main

// run: start a command in a fresh PID and mount namespace through nsinit,
// the code pam_unshare.so uses, without PAM.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/procfs"
	"github.com/pam-unshare/pam-unshare/nsinit"
	"github.com/pam-unshare/pam-unshare/pam_unshare/options"
	"github.com/pam-unshare/pam-unshare/pam_unshare/plan"
)

// runService is the service name the helper shows for "run" sessions.
const runService = "pam-unshare-run"

// setprivPaths are tried in order for --user.
var setprivPaths = []string{"/usr/bin/setpriv", "/bin/setpriv"}

// runPlan is what run will do, worked out before entering the namespace:
// after nsinit.Enter nothing may start a process the Go way or look up a
// path.
type runPlan struct {
	cfg  nsinit.Config
	argv []string // absolute argv[0]
	env  []string
	// asUser: the command runs as another user (--user, uid): in a
	// session and on a terminal of its own (runpty.go).
	asUser bool
	uid    int
}

func cmdRun(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", stderr)
	userName := fs.String("user", "", "run the command as `USER`, through setpriv(1), with XDG_RUNTIME_DIR set when /run/user/UID exists (default: as the caller)")
	opts := fs.String("options", "", "module arguments `ARGS`; propagation=, grace=, helper= and user_manager= apply, the others are ignored")
	poll := fs.Bool("poll", false, "make the helper poll, as it does on kernels without pidfd_open (for testing that mode)")
	for _, a := range args {
		if a == "--" || !strings.HasPrefix(a, "-") {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(stdout)
			fs.Usage()
			return flag.ErrHelp
		}
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	cmd := fs.Args()
	if len(cmd) == 0 {
		fmt.Fprintf(stderr, "%s run: no COMMAND given\n", progName)
		fs.Usage()
		return errUsage
	}
	modArgs, err := moduleOptions(*opts)
	if err != nil {
		return err
	}
	o, _ := options.Parse(modArgs) // checked by moduleOptions
	p, err := planRun(cmd, *userName, o, os.Environ())
	if err != nil {
		return err
	}
	p.cfg.NoPidfd = *poll
	if os.Geteuid() != 0 {
		return errors.New("run needs root: creating PID and mount namespaces needs CAP_SYS_ADMIN")
	}
	status, err := runIsolated(p, stderr)
	if err != nil {
		return err
	}
	if status != 0 {
		return exitError(status)
	}
	return nil
}

// planRun resolves the command, the user and the namespace settings.
func planRun(cmd []string, userName string, o options.Options, env []string) (runPlan, error) {
	if o.Scope == options.ScopeUser {
		// A per-user namespace is found and counted through PAM sessions;
		// run always builds a fresh one, so say so rather than ignore it.
		return runPlan{}, errors.New("run always creates a new namespace; scope=user applies to PAM sessions only")
	}
	var p runPlan
	path, err := exec.LookPath(cmd[0])
	if err != nil {
		return p, fmt.Errorf("%s: %w", cmd[0], err)
	}
	if path, err = filepath.Abs(path); err != nil {
		return p, err
	}
	if userName == "" {
		me := plan.Account{Name: strconv.Itoa(os.Getuid()), UID: os.Getuid(), GID: os.Getgid()}
		if u, err := user.Current(); err == nil {
			me.Name = u.Username
		}
		p.cfg = plan.Make(o, runService, me).Config
		p.argv = append([]string{path}, cmd[1:]...)
		p.env = env
		return p, nil
	}
	u, err := user.Lookup(userName)
	if err != nil {
		return p, fmt.Errorf("--user %s: %w", userName, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return p, fmt.Errorf("--user %s: non-numeric uid or gid %q:%q", userName, u.Uid, u.Gid)
	}
	if p.argv, err = asUserArgv(u, path, cmd[1:]); err != nil {
		return p, err
	}
	p.cfg = plan.Make(o, runService, plan.Account{Name: u.Username, UID: uid, GID: gid}).Config
	p.asUser, p.uid = true, uid
	// setpriv --reset-env keeps TERM and sets HOME, SHELL, USER, LOGNAME
	// and PATH for the user, as su does; asUserArgv adds XDG_RUNTIME_DIR.
	p.env = filterEnv(env, "TERM")
	return p, nil
}

// runtimeDirRoot holds each user's runtime directory, /run/user/UID, which
// pam_systemd creates at login and names in XDG_RUNTIME_DIR; systemctl
// --user finds the user manager through it.
var runtimeDirRoot = "/run/user"

// runtimeDir is the runtime directory of uid.
func runtimeDir(uid string) string { return filepath.Join(runtimeDirRoot, uid) }

// envPaths are tried in order for env(1), which sets XDG_RUNTIME_DIR after
// setpriv --reset-env has cleared the environment.
var envPaths = []string{"/usr/bin/env", "/bin/env"}

// firstExisting returns the first of paths that exists, or "".
func firstExisting(paths []string) string {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// asUserArgv is the command line that runs path with args as u, with u's
// groups and a fresh environment, through setpriv(1). When u's runtime
// directory exists, env(1) adds XDG_RUNTIME_DIR as pam_systemd would, so
// that systemctl --user finds the user's manager. setpriv and env exec the
// command, which keeps their PID.
func asUserArgv(u *user.User, path string, args []string) ([]string, error) {
	setpriv := firstExisting(setprivPaths)
	if setpriv == "" {
		return nil, errors.New("--user needs setpriv(1) from util-linux, which is not installed")
	}
	argv := []string{setpriv, "--reuid=" + u.Uid, "--regid=" + u.Gid, "--init-groups", "--reset-env", "--"}
	if dir := runtimeDir(u.Uid); isDir(dir) {
		env := firstExisting(envPaths)
		if env == "" {
			return nil, errors.New("--user needs env(1) from coreutils to set XDG_RUNTIME_DIR, and it is not installed")
		}
		// env takes a command whose name has "=" for an assignment.
		if strings.Contains(path, "=") {
			return nil, fmt.Errorf("%s: a command path with \"=\" cannot be run with --user", path)
		}
		argv = append(argv, env, "XDG_RUNTIME_DIR="+dir)
	}
	return append(append(argv, path), args...), nil
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// filterEnv keeps only the named variables.
func filterEnv(env []string, keep ...string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		for _, n := range keep {
			if k == n {
				out = append(out, kv)
			}
		}
	}
	return out
}

// runIsolated enters a namespace, runs the command as its PID 2, waits for
// it and tears the namespace down. It returns the command's exit status
// (128+N for a signal, as the shell reports it).
func runIsolated(p runPlan, stderr io.Writer) (int, error) {
	// Set up signal forwarding before Enter: the thread that enters may not
	// create threads afterwards, and signal.Notify may need one.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)

	argv, stdio := p.argv, [3]int{-1, -1, -1}
	var term *ownTerminal
	if p.asUser {
		var err error
		if term, err = newOwnTerminal(p.uid); err != nil {
			return 0, err
		}
		defer term.finish()
		argv, stdio = append(slices.Clone(term.argvPrefix), p.argv...), term.stdio
	}

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	s, err := nsinit.Enter(p.cfg)
	if err != nil {
		return 0, fmt.Errorf("entering a new namespace: %w", err)
	}
	pid, err := nsinit.SpawnStdio(argv, p.env, stdio)
	if term != nil {
		term.closeSlave()
		if err == nil {
			term.relay()
		}
	}
	if err != nil {
		endErr := s.End()
		if endErr != nil {
			fmt.Fprintf(stderr, "%s: ending the namespace: %v\n", progName, endErr)
		}
		return 0, fmt.Errorf("starting %s: %w", p.argv[0], err)
	}

	// The terminal sends SIGINT and SIGQUIT to the command as well, unless
	// the command has a session of its own; pass on the signals that the
	// command does not get.
	done := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-sigs:
				if sig == syscall.SIGTERM || sig == syscall.SIGHUP || term != nil {
					unix.Kill(pid, sig.(syscall.Signal))
				}
			case <-done:
				return
			}
		}
	}()

	var ws unix.WaitStatus
	for {
		_, err = unix.Wait4(pid, &ws, 0, nil)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	close(done)
	endErr := s.End()
	if term != nil {
		term.finish() // the last output, before any message of ours
	}
	if err != nil {
		return 0, fmt.Errorf("waiting for %s: %w", p.argv[0], err)
	}
	if endErr != nil {
		fmt.Fprintf(stderr, "%s: ending the namespace: %v\n", progName, endErr)
	}
	return exitStatus(ws), nil
}

// exitStatus turns a wait status into a shell-style exit status.
func exitStatus(ws unix.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return 1
}

// checkEndToEnd runs a probe through "run": it must be PID 2, see its own
// /proc, and see nothing else but PID 1.
func checkEndToEnd(root bool, helper string) check {
	c := check{Name: "isolated session"}
	if !root {
		c.Status, c.Message = statusSkip, "not checked: needs root"
		return c
	}
	if checkOwnership(helper, true) != "" {
		c.Status, c.Message = statusSkip, "not checked: no usable helper at "+helper
		return c
	}
	exe, err := selfExe()
	if err != nil {
		c.Status, c.Message = statusFail, err.Error()
		return c
	}
	out, err := exec.Command(exe, "run", "--options", "helper="+helper, "--", exe, probeInsideCmd).CombinedOutput()
	msg := strings.TrimSpace(string(out))
	if err != nil {
		c.Status, c.Message = statusFail, "a test session failed: "+msg
		if msg == "" {
			c.Message += err.Error()
		}
		return c
	}
	c.Status, c.Message = statusOK, "a test session ran as PID 2 with its own /proc ("+msg+")"
	return c
}

// probeInsideCmd is the hidden command checkEndToEnd runs in the namespace.
const probeInsideCmd = "__probe-inside"

func cmdProbeInside(_ []string, stdout, _ io.Writer) error {
	pid := os.Getpid()
	self, _ := os.Readlink("/proc/self")
	pids, err := procfs.PIDs("/proc")
	if err != nil {
		fmt.Fprintln(stdout, err)
		return exitError(1)
	}
	fmt.Fprintf(stdout, "pid %d, /proc/self -> %s, /proc lists %v", pid, self, pids)
	if pid != 2 || self != "2" || !slices.Equal(pids, []int{1, 2}) {
		fmt.Fprintln(stdout, "; want pid 2, /proc/self -> 2, /proc lists [1 2]")
		return exitError(1)
	}
	return nil
}

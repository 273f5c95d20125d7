package main

// doctor's "systemctl --user" check: does a user's systemd manager answer
// systemctl --user from inside a test session? The manager refuses a peer
// in another PID namespace, so this works only through the helper's relay
// (user_manager=relay, the default).

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/pamconf"
	"github.com/pam-unshare/pam-unshare/pam_unshare/options"
	"github.com/pam-unshare/pam-unshare/pam_unshare/plan"
)

// userManagerCheck is the check's name in the report.
const userManagerCheck = "systemctl --user"

// managerSocket is the socket systemctl --user connects to, under the
// user's runtime directory.
const managerSocket = "systemd/private"

// managerQuery is what the check runs as the user: it needs an answer from
// the manager and changes nothing.
var managerQuery = []string{"--user", "show", "--property=Version", "--value"}

// managerTimeout bounds one systemctl run (systemctl's own method call
// timeout is 25 s): a real manager answers show in milliseconds, and a
// slow or silent one must not hold doctor. The check runs systemctl twice
// at most, each SIGTERMed at the bound and killed managerKillDelay later.
const (
	managerTimeout   = 5 * time.Second
	managerKillDelay = 2 * time.Second
)

// moduleService is a service whose session stack runs the module, with
// the module's arguments there.
type moduleService struct {
	name string
	opts options.Options
}

// moduleServices lists the services whose session stack runs the module
// with valid arguments (invalid ones are the pam.d checks' business).
func moduleServices(r pamconf.Resolver) []moduleService {
	names, _ := r.List()
	var out []moduleService
	for _, n := range names {
		found, p, err := pamconf.CheckStack(r, n)
		if err != nil || !found {
			continue
		}
		if o, err := options.Parse(p.Entry.Args); err == nil {
			out = append(out, moduleService{name: n, opts: o})
		}
	}
	return out
}

// managerRuns reports whether the systemd user manager of uid is running:
// its private socket exists under runRoot/UID and belongs to uid (the
// manager runs as its user and creates it). Nothing is connected to.
func managerRuns(runRoot string, uid int) bool {
	st, err := os.Lstat(filepath.Join(runRoot, strconv.Itoa(uid), managerSocket))
	if err != nil || st.Mode().Type() != fs.ModeSocket {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && int(sys.Uid) == uid
}

// runningManagers lists the UIDs under runRoot whose user manager runs,
// in the order the check prefers them: users before root, lowest UID
// first.
func runningManagers(runRoot string) []int {
	ents, _ := os.ReadDir(runRoot)
	var uids []int
	for _, e := range ents {
		uid, err := strconv.Atoi(e.Name())
		if err != nil || uid < 0 || strconv.Itoa(uid) != e.Name() {
			continue
		}
		if managerRuns(runRoot, uid) {
			uids = append(uids, uid)
		}
	}
	sort.Slice(uids, func(i, j int) bool {
		if (uids[i] == 0) != (uids[j] == 0) {
			return uids[j] == 0
		}
		return uids[i] < uids[j]
	})
	return uids
}

// managerProbe is what the check needs from the system; tests replace the
// commands (and runtimeDirRoot).
type managerProbe struct {
	root        bool
	helper      string          // the helper the test session runs (--helper)
	managerUser string          // --manager-user; "": pick one
	services    []moduleService // the services that run the module
	systemctl   string          // systemctl's path; "": not installed
	// inSession runs this program's "run" with args and returns its
	// combined output.
	inSession func(args []string) (string, error)
	// onHost runs argv outside any session, with its combined output.
	onHost func(argv []string) (string, error)
}

// checkUserManager runs systemctl --user as a user whose manager runs, in
// a test session made like the module's.
func checkUserManager(p managerProbe) check {
	c := check{Name: userManagerCheck}
	var relaying, off []string
	for _, s := range p.services {
		if s.opts.UserManager == options.UserManagerOff {
			off = append(off, s.name)
		} else {
			relaying = append(relaying, s.name)
		}
	}
	offNote := ""
	if len(off) > 0 {
		offNote = fmt.Sprintf("systemctl --user fails in the sessions of %s by choice: "+
			"their pam.d lines say user_manager=off (\"Failed to connect to bus: No data available\")", strings.Join(off, ", "))
	}
	if len(off) > 0 && len(relaying) == 0 {
		c.Status, c.Message = statusWarn, offNote
		c.Details = []string{"to make it work there: drop user_manager=off from those lines"}
		return c
	}
	skip := func(msg string) check {
		c.Status, c.Message = statusSkip, "not checked: "+msg
		if offNote != "" {
			c.Details = append(c.Details, offNote)
		}
		return c
	}
	if !p.root {
		return skip("needs root (the test session runs as another user)")
	}
	if checkOwnership(p.helper, true) != "" {
		return skip("no usable helper at " + p.helper)
	}
	if p.systemctl == "" {
		return skip("systemctl is not installed")
	}
	u, why := pickManagerUser(runtimeDirRoot, p.managerUser)
	if u == nil {
		return skip(why)
	}
	who := fmt.Sprintf("%s (uid %s)", u.Username, u.Uid)

	query := append([]string{p.systemctl}, managerQuery...)
	runArgs := []string{"run", "--user", u.Username, "--options", sessionOptions(p.helper, p.services), "--"}
	runArgs = append(runArgs, query...)
	ran := strings.Join(query, " ")
	out, err := p.inSession(runArgs)
	if err == nil {
		c.Status = statusOK
		c.Message = fmt.Sprintf("a test session as %s ran %s: %s", who, ran, firstLine(out))
		if offNote != "" {
			c.Status, c.Message = statusWarn, c.Message+"; but "+offNote
		}
		return c
	}
	said := out
	if said == "" {
		said = err.Error()
	}
	// Tell a relay that does not work from a manager that does not answer
	// anyone.
	if hostArgv, aerr := asUserArgv(u, p.systemctl, managerQuery); aerr == nil {
		if hostOut, herr := p.onHost(hostArgv); herr != nil {
			if hostOut == "" {
				hostOut = herr.Error()
			}
			return skip(fmt.Sprintf("the user manager of %s does not answer outside a session either: %s", who, firstLine(hostOut)))
		}
	}
	c.Status = statusFail
	c.Message = fmt.Sprintf("a test session as %s ran %s, which failed: %s", who, ran, firstLine(said))
	c.Details = []string{
		"outside a session it works: the helper's relay (user_manager=relay) does not reach the manager",
		"ran: " + progName + " " + shellJoin(runArgs),
	}
	if offNote != "" {
		c.Details = append(c.Details, offNote)
	}
	return c
}

// pickManagerUser returns the user the check runs as: want, if given and
// its manager runs, or the first of runningManagers whose socket is its
// real manager's (managerpeer.go). Otherwise nil and why.
func pickManagerUser(runRoot, want string) (*user.User, string) {
	const howTo = "a user's manager runs while they are logged in, or always after \"loginctl enable-linger USER\""
	if want != "" {
		u, err := user.Lookup(want)
		if err != nil {
			return nil, "--manager-user " + want + ": " + err.Error()
		}
		uid, err := strconv.Atoi(u.Uid)
		if err != nil || !managerRuns(runRoot, uid) {
			return nil, fmt.Sprintf("no systemd user manager runs for %s (no %s owned by uid %s); %s",
				u.Username, filepath.Join(runRoot, u.Uid, managerSocket), u.Uid, howTo)
		}
		path := filepath.Join(runRoot, u.Uid, managerSocket)
		if err := checkManagerPeer(path, uid); err != nil {
			return nil, fmt.Sprintf("%s is not the systemd user manager of %s: %v", path, u.Username, err)
		}
		return u, ""
	}
	var skipped []string
	for _, uid := range runningManagers(runRoot) {
		path := filepath.Join(runRoot, strconv.Itoa(uid), managerSocket)
		if err := checkManagerPeer(path, uid); err != nil {
			skipped = append(skipped, fmt.Sprintf("skipped %s: %v", path, err))
			continue
		}
		if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
			return u, ""
		}
	}
	if len(skipped) > 0 {
		return nil, fmt.Sprintf("found no real systemd user manager (%s); %s, or choose one with --manager-user USER",
			strings.Join(skipped, "; "), howTo)
	}
	return nil, fmt.Sprintf("no systemd user manager runs (no %s owned by its user); %s, or choose one with --manager-user USER",
		filepath.Join(runRoot, "UID", managerSocket), howTo)
}

// sessionOptions are the module arguments of the test session: those of
// the first service that relays (the relay's mount lives in the session's
// mount table, which propagation= shapes), as run takes them
// (plan.RunOptions), with the helper under test, relaying.
func sessionOptions(helper string, services []moduleService) string {
	o, _ := options.Parse(nil) // the defaults
	for _, s := range services {
		if s.opts.UserManager != options.UserManagerOff {
			o = s.opts
			break
		}
	}
	o.Helper, o.UserManager = helper, options.UserManagerRelay
	return plan.RunOptions(o)
}

// shellJoin quotes args that need it, for a command line to copy.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t'\"\\$`*?[]{}()<>|&;#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// runSelf runs this program with args, bounded by managerTimeout: SIGTERM
// first, which run passes on to the command.
func runSelf(args []string) (string, error) {
	exe, err := selfExe()
	if err != nil {
		return "", err
	}
	return runBounded(exe, args)
}

// runOnHost runs argv, bounded by managerTimeout.
func runOnHost(argv []string) (string, error) { return runBounded(argv[0], argv[1:]) }

func runBounded(path string, args []string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), managerTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	// A session of its own: the user's systemctl (run --user, or setpriv
	// here) must never have root's terminal as its controlling terminal.
	// Its stdin is /dev/null and its output a pipe, so run gives it no
	// terminal at all.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = managerKillDelay
	out, err := cmd.CombinedOutput()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("no answer within %v", managerTimeout)
	}
	return strings.TrimSpace(string(out)), err
}

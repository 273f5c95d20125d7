package main

// doctor: checks that this system can isolate sessions and that the pam.d
// files that use the module use it correctly.

import (
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/doctor"
	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/pamconf"
	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/procfs"
	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/pamstack"
	"github.com/pam-unshare/pam-unshare/nsinit"
	"github.com/pam-unshare/pam-unshare/pam_unshare/abi"
	"github.com/pam-unshare/pam-unshare/pam_unshare/options"
	"github.com/pam-unshare/pam-unshare/pam_unshare/policy"
)

// goModulePath is where pam_unshare.so loads the Go library from; the
// Makefile sets it (-X main.goModulePath=$(GO_MODULE)), the same value it
// builds into pam_unshare.so (front/front.c, PU_GO_MODULE).
var goModulePath = "/usr/libexec/pam_unshare/pam_unshare_go.so"

// goModuleABI is the symbol front/front.c checks the Go library by.
const goModuleABI = abi.Symbol

// pamDir is the PAM module directory the module is installed in. The
// Makefile sets it with -ldflags -X from PAMDIR, as it sets
// nsinit.DefaultHelperPath from LIBEXECDIR.
var pamDir = "/usr/lib/security"

func cmdDoctor(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("doctor", stderr)
	pamd := fs.String("pamd", pamconf.DefaultDir, "read PAM service files in `DIR`")
	module := fs.String("module", filepath.Join(pamDir, pamconf.ModuleName), "check the module at `PATH`")
	goModule := fs.String("go-module", goModulePath, "check the Go library pam_unshare.so loads at `PATH`")
	helper := fs.String("helper", nsinit.DefaultHelperPath, "check the PID-1 helper at `PATH`, and run the test session with it")
	managerUser := fs.String("manager-user", "", "run the systemctl --user check as `USER` (default: the first user, by UID, whose systemd user manager runs; root last)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	hostWide := fs.Bool("host-wide", false, "check only the host-wide invariant: live processes, transient units, routes that skip PAM")
	if err := parseFlagsOnly(fs, args, stdout, stderr); err != nil {
		return err
	}
	if *hostWide {
		live, doors := hostWideChecks(*pamd, os.Geteuid() == 0)
		return report(stdout, nil, doors, live, *asJSON)
	}

	var checks []check
	root := os.Geteuid() == 0
	checks = append(checks, checkUnshare(root))
	checks = append(checks, checkPidfd())
	checks = append(checks, checkPropagation(readFileOr("/proc/self/mountinfo")))
	checks = append(checks, checkModule(*module))
	checks = append(checks, checkGoModule(*goModule))
	helpers := []string{*helper}
	pamChecks, extra := checkPamd(pamconf.NewDirResolver(*pamd), *pamd)
	for _, h := range extra {
		if h != *helper {
			helpers = append(helpers, h)
		}
	}
	for _, h := range helpers {
		checks = append(checks, checkHelper(h))
	}
	checks = append(checks, pamChecks...)
	checks = append(checks, checkNames(moduleServices(pamconf.NewDirResolver(*pamd)), policy.System))
	checks = append(checks, checkEndToEnd(root, *helper))
	systemctl, _ := exec.LookPath("systemctl")
	checks = append(checks, checkUserManager(managerProbe{
		root: root, helper: *helper, managerUser: *managerUser,
		services: moduleServices(pamconf.NewDirResolver(*pamd)), systemctl: systemctl,
		inSession: runSelf, onHost: runOnHost,
	}))

	doors := doorChecks(*pamd, root)
	live, hw := hostWideChecks(*pamd, root)
	return report(stdout, checks, append(doors, hw...), live, *asJSON)
}

// report prints the report and returns exit status 1 if any check failed.
func report(stdout io.Writer, checks, doors []check, live []liveDoor, asJSON bool) error {
	ok, err := doctor.Write(stdout, checks, doors, live, asJSON)
	if err == nil && !ok {
		err = exitError(1)
	}
	return err
}

// checkUnshare asks a child process to unshare PID and mount namespaces.
func checkUnshare(root bool) check {
	c := check{Name: "kernel namespaces"}
	if !root {
		c.Status, c.Message = statusSkip, "not checked: needs root (unshare of PID and mount namespaces needs CAP_SYS_ADMIN)"
		return c
	}
	exe, err := selfExe()
	if err != nil {
		c.Status, c.Message = statusFail, "cannot find this program to run the probe: "+err.Error()
		return c
	}
	out, err := exec.Command(exe, probeUnshareCmd).CombinedOutput()
	if err != nil {
		c.Status = statusFail
		c.Message = "unshare(CLONE_NEWPID|CLONE_NEWNS) failed: " + strings.TrimSpace(string(out))
		if len(out) == 0 {
			c.Message += err.Error()
		}
		return c
	}
	c.Status, c.Message = statusOK, "unshare of PID and mount namespaces works"
	return c
}

// probeUnshareCmd is the hidden command checkUnshare runs.
const probeUnshareCmd = "__probe-unshare"

func cmdProbeUnshare(_ []string, stdout, _ io.Writer) error {
	runtime.LockOSThread() // never unlocked: the thread dies with the process
	if err := unix.Unshare(unix.CLONE_NEWPID | unix.CLONE_NEWNS); err != nil {
		fmt.Fprintln(stdout, err)
		return exitError(1)
	}
	return nil
}

// checkPidfd tries pidfd_open on this process.
func checkPidfd() check {
	c := check{Name: "pidfd_open"}
	fd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		c.Status = statusWarn
		c.Message = fmt.Sprintf("pidfd_open failed (%v; needs Linux 5.3 or later): "+
			"the helper polls for the session leader and the host instead of waiting on pidfds", err)
		return c
	}
	unix.Close(fd)
	c.Status, c.Message = statusOK, "pidfd_open works"
	return c
}

// checkPropagation reports how / propagates; the module copes with each.
func checkPropagation(mountinfo string) check {
	c := check{Name: "propagation of /"}
	p := procfs.RootPropagation(mountinfo)
	switch p {
	case "":
		c.Status, c.Message = statusWarn, "cannot read / from /proc/self/mountinfo"
	case "shared", "shared and slave":
		c.Status = statusOK
		c.Message = p + " (as on systemd hosts): the module makes / a slave (propagation=slave, the default) " +
			"or private mount in the session before it replaces /proc, so the host's /proc is never touched"
	default:
		c.Status, c.Message = statusOK, p
	}
	return c
}

// checkModule checks the module file: owner, mode, and that it is a shared
// object for this machine exporting the PAM session entry points. It is not
// loaded: it contains a Go runtime, and this program has its own.
func checkModule(path string) check {
	return checkSharedObject(sharedObject{
		name: "module " + path,
		ok:   "exports pam_sm_open_session and pam_sm_close_session",
	}, path)
}

// checkGoModule checks the Go library the way pam_unshare.so does before
// it loads it: a root-owned shared object of this build's interface.
func checkGoModule(path string) check {
	return checkSharedObject(sharedObject{
		name:      "Go library " + path,
		ok:        "root-owned, not writable by group or others, nor is any directory above it; exports the PAM session entry points",
		ownerNote: " (pam_unshare.so refuses every session with PAM_SYSTEM_ERR)",
		elfNote:   " (not pam_unshare's Go library)",
		symbols:   []string{goModuleABI},
	}, path)
}

// sharedObject is what checkSharedObject says about one kind of shared
// object: its check's name, its message when all is well, the notes added to
// a failed ownership or ELF check, and the symbols it must export besides the
// PAM session entry points.
type sharedObject struct {
	name, ok           string
	ownerNote, elfNote string
	symbols            []string
}

// checkSharedObject checks a shared object file without loading it: owner
// and mode, an ELF file for this machine exporting the PAM session entry
// points and kind.symbols; the libraries it needs go into the details.
func checkSharedObject(kind sharedObject, path string) check {
	c := check{Name: kind.name}
	if msg := checkOwnership(path, false); msg != "" {
		c.Status, c.Message = statusFail, msg+kind.ownerNote
		return c
	}
	f, err := elf.Open(path)
	if err != nil {
		c.Status, c.Message = statusFail, "not a readable ELF file: "+err.Error()
		return c
	}
	defer f.Close()
	if msg := checkELF(f, kind.symbols...); msg != "" {
		c.Status, c.Message = statusFail, msg+kind.elfNote
		return c
	}
	c.Status, c.Message = statusOK, kind.ok
	if libs, err := f.ImportedLibraries(); err == nil {
		c.Details = append(c.Details, "needs "+strings.Join(libs, ", "))
	}
	return c
}

// elfMachine is the ELF machine of this build, to spot a module built for
// another architecture.
func elfMachine() elf.Machine {
	switch runtime.GOARCH {
	case "amd64":
		return elf.EM_X86_64
	case "arm64":
		return elf.EM_AARCH64
	case "386":
		return elf.EM_386
	case "arm":
		return elf.EM_ARM
	case "ppc64le":
		return elf.EM_PPC64
	case "s390x":
		return elf.EM_S390
	case "riscv64":
		return elf.EM_RISCV
	}
	return elf.EM_NONE
}

// checkELF returns "" when f is a shared object for this machine that
// defines both PAM session entry points and the extra functions, or what
// is wrong.
func checkELF(f *elf.File, extra ...string) string {
	if f.Type != elf.ET_DYN {
		return fmt.Sprintf("ELF type %v, want a shared object (ET_DYN)", f.Type)
	}
	if m := elfMachine(); m != elf.EM_NONE && f.Machine != m {
		return fmt.Sprintf("built for %v, this machine is %v", f.Machine, m)
	}
	syms, err := f.DynamicSymbols()
	if err != nil {
		return "no dynamic symbol table: " + err.Error()
	}
	want := map[string]bool{"pam_sm_open_session": false, "pam_sm_close_session": false}
	for _, n := range extra {
		want[n] = false
	}
	for _, s := range syms {
		if _, ok := want[s.Name]; ok && s.Section != elf.SHN_UNDEF && elf.ST_TYPE(s.Info) == elf.STT_FUNC {
			want[s.Name] = true
		}
	}
	var missing []string
	for n, ok := range want {
		if !ok {
			missing = append(missing, n)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		return "does not export " + strings.Join(missing, " and ")
	}
	return ""
}

// checkHelper checks the helper binary the way the module does before it
// runs it: an executable regular file that only root could have put there.
func checkHelper(path string) check {
	c := check{Name: "helper " + path}
	if msg := checkOwnership(path, true); msg != "" {
		c.Status, c.Message = statusFail, msg+" (the module refuses every session with PAM_SYSTEM_ERR)"
		return c
	}
	c.Status, c.Message = statusOK, "root-owned, not writable by group or others, nor is any directory above it"
	return c
}

// checkPamd checks every service whose session stack runs the module. It
// also returns the helper= paths the services name.
func checkPamd(r pamconf.Resolver, pamd string) ([]check, []string) {
	names, err := r.List()
	if err != nil {
		return []check{{Name: "pam.d", Status: statusFail, Message: err.Error()}}, nil
	}
	var checks []check
	var helpers []string
	for _, n := range names {
		found, p, err := pamconf.CheckStack(r, n)
		if err != nil {
			// A file that is not a readable service is not ours to judge,
			// unless it mentions the module.
			if data, rerr := r.Read(n); rerr == nil && strings.Contains(string(data), pamconf.ModuleName) {
				checks = append(checks, check{Name: "service " + n, Status: statusFail, Message: err.Error()})
			}
			continue
		}
		if !found {
			continue
		}
		args := p.Entry.Args
		o, argErr := options.Parse(args)
		if argErr == nil && o.Helper != "" {
			helpers = append(helpers, o.Helper)
		}
		c := stackCheck(p, argErr, fixCommand(pamd, p.Entry.File, args))
		checks = append(checks, c)
	}
	if len(checks) == 0 {
		checks = append(checks, check{Name: "pam.d", Status: statusOK,
			Message: fmt.Sprintf("no service in %s uses %s yet (see \"%s enable\")", pamd, pamconf.ModuleName, progName)})
	}
	return checks, helpers
}

// fixCommand is the enable command that moves the module line of file to
// the end with the same arguments.
func fixCommand(pamd, file string, args []string) string {
	cmd := progName + " enable"
	if pamd != pamconf.DefaultDir {
		cmd += " --pamd " + pamd
	}
	if len(args) > 0 {
		cmd += fmt.Sprintf(" --options '%s'", strings.Join(args, " "))
	}
	return cmd + " " + file
}

// stackCheck turns a service's stack analysis into a report line. argErr is
// the module line's argument error, if any; fix is the command that repairs
// the order.
func stackCheck(p pamconf.StackProblem, argErr error, fix string) check {
	c := check{Name: "service " + p.Service, Status: statusOK}
	where := p.Entry.Where()
	c.Message = fmt.Sprintf("%s is the last session module (%s), and libpam cannot open a session without it", pamconf.ModuleName, where)
	fail := func(msg string) {
		if c.Status == statusOK {
			c.Message = msg
		}
		c.Status = statusFail
	}
	if p.Stack != nil && p.Stack.FromOther {
		c.Details = append(c.Details, fmt.Sprintf("the service has no session lines of its own: libpam runs those of %q", "other"))
	}
	if argErr != nil {
		fail(fmt.Sprintf("%s (%s): %v", pamconf.ModuleName, where, argErr))
		c.Details = append(c.Details, "the module refuses every session of this service with PAM_SYSTEM_ERR")
	}
	rep := p.Report
	const fixControl = "fix: change the control of that line so that it cannot end the stack or jump past " + pamconf.ModuleName +
		" (optional instead of sufficient, ok instead of done, a shorter jump)"
	if f := rep.SkippedOpen; f != nil {
		fail(fmt.Sprintf("%s (%s) can be skipped: the session opens without isolation", pamconf.ModuleName, where))
		c.Details = append(c.Details, stackFinding(f), fixControl)
	}
	if f := rep.ErrorIgnored; f != nil {
		fail(fmt.Sprintf("%s (%s) can fail and the session still opens, without isolation", pamconf.ModuleName, where))
		fix := "fix: " + fix + " (writes \"session required " + pamconf.ModuleName + "\" last)"
		if f.Culprit >= 0 && !pamconf.IsModuleEntry(p.Stack.Entries[f.Culprit]) {
			fix = "fix: remove the reset from that line"
		}
		c.Details = append(c.Details, stackFinding(f), fix)
	}
	if f := rep.SkippedRefused; f != nil {
		fail(fmt.Sprintf("%s (%s) can be jumped over", pamconf.ModuleName, where))
		c.Details = append(c.Details, stackFinding(f)+"; the session is then refused", fixControl)
	}
	if len(p.After) > 0 {
		var mods []string
		for _, e := range p.After {
			mods = append(mods, pamconf.EntryString(e))
		}
		fail(fmt.Sprintf("%s (%s) is not the last session module", pamconf.ModuleName, where))
		c.Details = append(c.Details,
			"these run after it, in the host process, where /proc/self no longer resolves; "+
				"those that read /proc/self or fork fail: "+strings.Join(mods, ", "),
			"fix: "+fix+" (moves the line to the end)")
	}
	if len(p.Dups) > 0 {
		fail(fmt.Sprintf("%s (%s) runs more than once per session", pamconf.ModuleName, where))
		for _, e := range p.Dups {
			c.Details = append(c.Details, fmt.Sprintf("also at %s: the second one fails and the session is refused", e.Where()))
		}
	}
	if c.Status == statusOK && policy.StartedBySystemd(p.Service) {
		c.Status = statusWarn
		c.Message += "; systemd PAMName= services are not isolated (the module returns PAM_IGNORE)"
	}
	return c
}

// stackFinding is one detail line: the culprit line as written, where it
// is, and what libpam does with it.
func stackFinding(f *pamstack.Finding) string { return f.Reason }

package main

// Host-wide: the routes by which a user's processes start without the
// module's session (sshd with UsePAM no, sudo with !pam_session or another
// pam_service, an MTA's pipe delivery), and the transient units whose
// command lines systemd shows to every user.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/pamconf"
)

// ---- sshd -------------------------------------------------------------------

// sshdRoute reads the output of "sshd -T" (lower-case keywords). UsePAM
// cannot appear in a Match block, so the global value is the only one.
func sshdRoute(out string, err error) check {
	c := check{Name: "route sshd"}
	if err != nil {
		c.Status, c.Message = statusSkip, "sshd -T failed: "+err.Error()
		return c
	}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && f[0] == "usepam" {
			if f[1] == "no" {
				c.Status = statusFail
				c.Message = "UsePAM no: ssh logins open no PAM session, so none is isolated"
				c.Details = []string{"fix: UsePAM yes in /etc/ssh/sshd_config (sshd -T shows what sshd uses), then systemctl reload ssh"}
				return c
			}
			c.Status, c.Message = statusOK, "UsePAM yes: ssh logins go through PAM service sshd"
			return c
		}
	}
	c.Status, c.Message = statusWarn, "sshd -T does not say usepam: cannot tell whether ssh logins use PAM"
	return c
}

func liveSshdRoute() check {
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		for _, p := range []string{"/usr/sbin/sshd", "/sbin/sshd"} {
			if _, e := os.Stat(p); e == nil {
				sshd, err = p, nil
			}
		}
	}
	if err != nil {
		return check{Name: "route sshd", Status: statusOK, Message: "no sshd installed"}
	}
	out, err := exec.Command(sshd, "-T").CombinedOutput()
	if err != nil {
		err = fmt.Errorf("%v: %s", err, firstLine(strings.TrimSpace(string(out))))
	}
	return sshdRoute(string(out), err)
}

// ---- sudoers ----------------------------------------------------------------

// sudoersLine is one logical line of a sudoers file (continuations joined).
type sudoersLine struct {
	file string
	line int // of its first physical line
	text string
}

// sudoersFS reads sudoers files; tests replace it.
type sudoersFS struct {
	read    func(path string) ([]byte, error)
	readDir func(dir string) ([]string, error)
}

var liveSudoersFS = sudoersFS{
	read: os.ReadFile,
	readDir: func(dir string) ([]string, error) {
		ents, err := os.ReadDir(dir)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return names, err
	},
}

var includeRe = regexp.MustCompile(`^[#@](include|includedir)\s+(.+)$`)

// readSudoers returns the logical lines of file and of everything it
// includes, in the order sudo reads them: @include and #include read one
// file (relative to the including file's directory), @includedir and
// #includedir every file of a directory whose name neither ends in '~' nor
// contains a '.', in lexical order. depth stops include loops as sudo does.
func readSudoers(fsys sudoersFS, file string, depth int) ([]sudoersLine, []error) {
	if depth > 128 {
		return nil, []error{fmt.Errorf("%s: too many levels of includes", file)}
	}
	data, err := fsys.read(file)
	if err != nil {
		return nil, []error{err}
	}
	var out []sudoersLine
	var errs []error
	phys := strings.Split(string(data), "\n")
	for i := 0; i < len(phys); i++ {
		start := i
		text := phys[i]
		for strings.HasSuffix(text, "\\") && i+1 < len(phys) {
			i++
			text = strings.TrimSuffix(text, "\\") + " " + phys[i]
		}
		text = strings.TrimSpace(text)
		if m := includeRe.FindStringSubmatch(text); m != nil {
			target := strings.Trim(strings.TrimSpace(m[2]), `"`)
			if !filepath.IsAbs(target) {
				target = filepath.Join(filepath.Dir(file), target)
			}
			if m[1] == "include" {
				l, e := readSudoers(fsys, target, depth+1)
				out, errs = append(out, l...), append(errs, e...)
				continue
			}
			names, err := fsys.readDir(target)
			if err != nil && !os.IsNotExist(err) {
				errs = append(errs, err)
			}
			sort.Strings(names)
			for _, n := range names {
				if strings.HasSuffix(n, "~") || strings.Contains(n, ".") {
					continue
				}
				l, e := readSudoers(fsys, filepath.Join(target, n), depth+1)
				out, errs = append(out, l...), append(errs, e...)
			}
			continue
		}
		text = stripSudoersComment(text)
		if text != "" {
			out = append(out, sudoersLine{file: file, line: start + 1, text: text})
		}
	}
	return out, errs
}

// stripSudoersComment removes a comment: '#' at the start or after a
// blank, unless it begins a numeric uid or gid ("#1000", "%#1000").
func stripSudoersComment(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] != '#' || (i > 0 && s[i-1] != ' ' && s[i-1] != '\t' && s[i-1] != ',' && s[i-1] != '%') {
			continue
		}
		if i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
			continue
		}
		return strings.TrimSpace(s[:i])
	}
	return s
}

var defaultsRe = regexp.MustCompile(`^Defaults([:@>!]\S+)?\s+(.*)$`)

// sudoRoutes finds the sudoers settings that start commands without the
// module's session: !pam_session (sudo then opens no PAM session at all),
// and pam_service= or pam_login_service= naming a service whose stack does
// not run the module.
func sudoRoutes(lines []sudoersLine, moduleRuns func(string) bool) []check {
	var out []check
	for _, l := range lines {
		m := defaultsRe.FindStringSubmatch(l.text)
		if m == nil {
			continue
		}
		scope := "every sudo command"
		if m[1] != "" {
			scope = "Defaults" + m[1]
		}
		where := fmt.Sprintf("%s line %d", l.file, l.line)
		for _, param := range strings.Split(m[2], ",") {
			param = strings.TrimSpace(param)
			key, val, hasVal := strings.Cut(param, "=")
			key, val = strings.TrimSpace(key), strings.Trim(strings.TrimSpace(val), `"`)
			switch {
			case key == "!pam_session" || key == "pam_session" && hasVal && (val == "false" || val == "off"):
				out = append(out, check{Name: "route sudo", Status: statusFail,
					Message: fmt.Sprintf("%s: %s (%s): sudo opens no PAM session, so the command sees every process", where, l.text, scope),
					Details: []string{"fix: remove !pam_session from that line"}})
			case (key == "pam_service" || key == "pam_login_service") && hasVal && val != "":
				if moduleRuns(val) {
					continue
				}
				out = append(out, check{Name: "route sudo", Status: statusFail,
					Message: fmt.Sprintf("%s: %s: sudo opens its sessions with PAM service %s, which does not isolate them", where, param, val),
					Details: []string{fmt.Sprintf("fix: %s enable %s, or remove %s", progName, val, param)}})
			}
		}
	}
	return out
}

func liveSudoRoutes(pamd string) []check {
	if _, err := os.Stat("/etc/sudoers"); err != nil {
		return []check{{Name: "route sudo", Status: statusOK, Message: "no /etc/sudoers"}}
	}
	lines, errs := readSudoers(liveSudoersFS, "/etc/sudoers", 0)
	r := pamconf.NewDirResolver(pamd)
	out := sudoRoutes(lines, func(svc string) bool {
		found, p, err := pamconf.CheckStack(r, svc)
		return err == nil && found && p.Sound()
	})
	for _, e := range errs {
		out = append(out, check{Name: "route sudo", Status: statusSkip, Message: "cannot read sudoers: " + e.Error()})
	}
	if len(out) == 0 {
		out = append(out, check{Name: "route sudo", Status: statusOK,
			Message: fmt.Sprintf("no !pam_session and no pam_service= that skips the module (%d sudoers lines read)", len(lines))})
	}
	return out
}

// ---- mail ------------------------------------------------------------------

// mailer is an MTA whose local delivery runs pipes (".forward" and alias
// "|command" lines) as the recipient, with no PAM session: on its unit's
// /proc.
type mailer struct {
	name, binary, unit, forbid string
}

var mailers = []mailer{
	{"exim4", "/usr/sbin/exim4", "exim4.service", "forbid_pipe on the userforward and system_aliases routers"},
	{"postfix", "/usr/sbin/postfix", "postfix@-.service", "allow_mail_to_commands = (empty) in main.cf"},
	{"opensmtpd", "/usr/sbin/smtpd", "opensmtpd.service", "no mda/forward pipes in smtpd.conf"},
	{"sendmail", "/usr/lib/sm.bin/sendmail", "sendmail.service", "smrsh with an empty /etc/mail/smrsh"},
}

// mailRoutes names each installed MTA; exists and guarded are the host.
func mailRoutes(exists func(string) bool, guarded func(string) bool) []check {
	var out []check
	for _, m := range mailers {
		if !exists(m.binary) {
			continue
		}
		c := check{Name: "route mail (" + m.name + ")"}
		if guarded(m.unit) {
			c.Status = statusOK
			c.Message = fmt.Sprintf(".forward and alias pipes run as the recipient without PAM, inside %s, which has the unit guard", m.unit)
		} else {
			c.Status = statusWarn
			c.Message = fmt.Sprintf(".forward and alias pipes run as the recipient without PAM, with %s's /proc: every process while they run", m.unit)
			c.Details = []string{"fix: " + progName + " enable --unit " + m.unit + " --restart, or forbid pipes: " + m.forbid}
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		out = append(out, check{Name: "route mail", Status: statusOK, Message: "no MTA that delivers to pipes is installed"})
	}
	return out
}

func liveMailRoutes() []check {
	return mailRoutes(func(p string) bool {
		_, err := os.Stat(p)
		return err == nil
	}, func(unit string) bool {
		_, err := os.Stat(unitGuardPath(unit))
		return err == nil
	})
}

// ---- transient units ---------------------------------------------------------

// transientDir is where systemd writes the units created over D-Bus
// (systemd-run, run0, machinectl); the files are world-readable.
const transientDir = "/run/systemd/transient"

// transientUnit is what a transient unit file shows every user: its
// Description (systemctl list-units) and ExecStart (systemctl show, a
// public D-Bus property).
type transientUnit struct {
	Name        string `json:"unit"`
	Description string `json:"description"`
	ExecStart   string `json:"exec_start,omitempty"`
	User        string `json:"user,omitempty"`
}

// parseTransient reads one transient unit file.
func parseTransient(name, text string) transientUnit {
	u := transientUnit{Name: name}
	for _, l := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), "=")
		if !ok {
			continue
		}
		switch k {
		case "Description":
			u.Description = v
		case "ExecStart":
			if v != "" {
				u.ExecStart = v
			}
		case "User":
			u.User = v
		}
	}
	return u
}

// showsCommand says what of u's command line every user can read: the
// arguments of ExecStart, and a Description that is the command line
// (systemd-run's default).
func (u transientUnit) showsCommand() []string {
	var out []string
	if words := strings.Fields(u.ExecStart); len(words) > 1 {
		out = append(out, "ExecStart="+u.ExecStart)
	}
	d := u.Description
	if strings.HasPrefix(d, "[systemd-run]") || strings.HasPrefix(d, "/") {
		out = append(out, "Description="+d)
	} else if w := strings.Fields(u.ExecStart); len(w) > 0 {
		prog := filepath.Base(strings.Trim(strings.TrimLeft(w[0], "@-:+!|"), `"`))
		if prog != "" && strings.Contains(d, prog+" ") {
			out = append(out, "Description="+d)
		}
	}
	return out
}

// transientChecks lists each transient unit that shows a command line.
func transientChecks(units []transientUnit) []check {
	var out []check
	for _, u := range units {
		shown := u.showsCommand()
		if len(shown) == 0 {
			continue
		}
		who := "root"
		if u.User != "" {
			who = u.User
		}
		c := check{Name: "transient " + u.Name, Status: statusFail,
			Message: fmt.Sprintf("runs as %s; every user reads its command line (systemctl list-units, systemctl show, %s)", who, transientDir),
			Details: append(shown, "fix: no mechanism hides these from users without breaking systemctl for them; "+
				"stop the unit, and start such jobs with --description=TEXT and without secrets in their arguments "+
				"(a script, or LoadCredential= from a root-only file)")}
		out = append(out, c)
	}
	if len(out) == 0 {
		out = append(out, check{Name: "transient units", Status: statusOK, Message: "no live transient unit shows a command line"})
	}
	return out
}

func liveTransientChecks() []check {
	ents, err := os.ReadDir(transientDir)
	if err != nil && !os.IsNotExist(err) {
		return []check{{Name: "transient units", Status: statusSkip, Message: err.Error()}}
	}
	var units []transientUnit
	for _, e := range ents {
		n := e.Name()
		if !strings.HasSuffix(n, ".service") && !strings.HasSuffix(n, ".scope") {
			continue
		}
		units = append(units, parseTransient(n, readFileOr(filepath.Join(transientDir, n))))
	}
	return transientChecks(units)
}

// ---- doctor's host-wide section ------------------------------------------------

// hostWideChecks is doctor's host-wide section: the live check, the
// transient units and the routes that skip PAM.
func hostWideChecks(pamd string, root bool) ([]liveDoor, []check) {
	live, out := hostWideLive(pamd, root)
	out = append(out, liveTransientChecks()...)
	out = append(out, liveSshdRoute())
	out = append(out, liveSudoRoutes(pamd)...)
	out = append(out, liveMailRoutes()...)
	return live, out
}

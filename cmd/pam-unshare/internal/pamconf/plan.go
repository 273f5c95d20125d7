package pamconf

// Planning enable and disable: which services, in which order, and the new
// contents of each, before anything is written.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DefaultDir is where PAM reads service files.
const DefaultDir = "/etc/pam.d"

// Edit is a planned change to one service file.
type Edit struct {
	Path   string // the file to write (symlinks resolved)
	Shown  string // the path as the user named it
	Before []byte
	Result Result
}

// planEdit reads one service file and computes its new contents.
func planEdit(r pamdResolver, pamd, svc, op string, modArgs []string) (Edit, error) {
	if svc == "" || strings.ContainsRune(svc, '/') || svc == "." || svc == ".." {
		return Edit{}, fmt.Errorf("%q is not a service name (a file name in %s)", svc, pamd)
	}
	shown := filepath.Join(pamd, svc)
	path, err := filepath.EvalSymlinks(shown)
	if errors.Is(err, fs.ErrNotExist) {
		if v := r.vendorFile(svc); v != "" {
			return Edit{}, fmt.Errorf("service %q has no %s, only the distribution's default %s; "+
				"copy it to %s (which then takes its place) and run %s again", svc, shown, v, shown, op)
		}
		return Edit{}, fmt.Errorf("unknown service %q: %s does not exist", svc, shown)
	}
	if err != nil {
		return Edit{}, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Edit{}, err
	}
	var res Result
	if op == "enable" {
		res, err = Enable(r, svc, data, modArgs)
	} else {
		res, err = Disable(r, svc, data)
	}
	if err != nil {
		return Edit{}, err
	}
	return Edit{Path: path, Shown: shown, Before: data, Result: res}, nil
}

// ProcessService is a PAM service through which a user gets processes.
type ProcessService struct {
	Name string
	What string // what runs through it, for messages
	// Auto: enable with no service names enables it. Graphical logins are
	// left to the administrator: a desktop session under the module is
	// untested.
	Auto bool
}

// ProcessServices are the PAM services, on Debian and elsewhere, that start
// processes for a user who asked for them.
var ProcessServices = []ProcessService{
	{"sshd", "ssh sessions", true},
	{"login", "console logins", true},
	{"remote", "telnet and rlogin logins", true},
	{"su", "su sessions", true},
	{"su-l", "su - and su -l sessions", true},
	{"sudo", "sudo commands", true},
	{"sudo-i", "sudo -i shells", true},
	{"doas", "doas commands", true},
	{"cron", "cron jobs", true},
	{"crond", "cron jobs", true},
	{"atd", "at and batch jobs", true},
	{"gdm-password", "graphical sessions", false},
	{"gdm-autologin", "graphical sessions", false},
	{"gdm-fingerprint", "graphical sessions", false},
	{"gdm-smartcard", "graphical sessions", false},
	{"lightdm", "graphical sessions", false},
	{"lightdm-autologin", "graphical sessions", false},
	{"sddm", "graphical sessions", false},
	{"sddm-autologin", "graphical sessions", false},
	{"xdm", "graphical sessions", false},
	{"lxdm", "graphical sessions", false},
	{"xrdp-sesman", "remote desktop sessions", false},
}

// ServiceExists reports whether pamd has a file (or a symlink to one) for
// the service.
func ServiceExists(pamd, name string) bool {
	st, err := os.Stat(filepath.Join(pamd, name))
	return err == nil && st.Mode().IsRegular()
}

// AutoServices returns the services enable enables when given none:
// each auto process service that pamd has.
func AutoServices(pamd string) []string {
	var out []string
	for _, s := range ProcessServices {
		if s.Auto && ServiceExists(pamd, s.Name) {
			out = append(out, s.Name)
		}
	}
	return out
}

// AnyServiceRunsModule reports whether some service's session stack still
// runs the module, and the first such service.
func AnyServiceRunsModule(r Resolver) (string, bool) {
	names, _ := r.List()
	for _, n := range names {
		if found, _, err := CheckStack(r, n); err == nil && found {
			return n, true
		}
	}
	return "", false
}

// pamdResolver is what planEdit needs: service files, and where the
// distribution's defaults are.
type pamdResolver interface {
	Resolver
	vendorFile(name string) string
}

// plannedResolver reads the planned contents of files already planned in
// this run, and the files on disk otherwise.
type plannedResolver struct {
	DirResolver
	planned map[string][]byte
}

func (p plannedResolver) Read(name string) ([]byte, error) {
	if b, ok := p.planned[name]; ok {
		return b, nil
	}
	return p.DirResolver.Read(name)
}

// Plan plans op for each service. A file is planned before the
// files that include it, and each plan sees the planned contents of the
// files before it, so that "enable su su-l" adds the module to su only:
// su-l includes su, and the module must run once per session.
func Plan(base DirResolver, pamd string, services []string, op string, modArgs []string) ([]Edit, []error) {
	r := plannedResolver{DirResolver: base, planned: map[string][]byte{}}
	var edits []Edit
	var errs []error
	for _, svc := range includedFirst(base, services) {
		if op == "enable" {
			if note, ok := isolatedThroughInclude(r, svc); ok {
				edits = append(edits, Edit{Shown: filepath.Join(pamd, svc), Result: Result{Notes: []string{note}}})
				continue
			}
		}
		e, err := planEdit(r, pamd, svc, op, modArgs)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if e.Result.Changed {
			r.planned[svc] = e.Result.Out
		}
		edits = append(edits, e)
	}
	return edits, errs
}

// includedFirst orders services so that one that another listed service
// includes comes before it (su before su-l), keeping the order otherwise.
func includedFirst(r Resolver, services []string) []string {
	included := map[string]bool{}
	for _, s := range services {
		data, err := r.Read(s)
		if err != nil {
			continue
		}
		for _, l := range Parse(data) {
			if l.IsInclude() && (l.Type == "session" || l.Type == "@include") {
				included[l.Module] = true
			}
		}
	}
	var first, rest []string
	for _, s := range services {
		if included[s] {
			first = append(first, s)
		} else {
			rest = append(rest, s)
		}
	}
	return append(first, rest...)
}

// isolatedThroughInclude reports whether service name has no module line
// of its own but runs the module, correctly placed, through a file it
// includes; the note says which.
func isolatedThroughInclude(r Resolver, name string) (string, bool) {
	data, err := r.Read(name)
	if err != nil {
		return "", false
	}
	for _, l := range Parse(data) {
		if IsModuleLine(l) {
			return "", false
		}
	}
	found, p, err := CheckStack(r, name)
	if err != nil || !found || !p.Sound() {
		return "", false
	}
	return fmt.Sprintf("%s: isolated through %s line %d, which it includes (the module runs once per session)",
		name, p.Entry.File, p.Entry.Line), true
}

// FilesUsingModule lists the service files with a session line of the
// module of their own (includes are listed as the files they name).
// Backups and package-manager leftovers are not services (see skipName).
func FilesUsingModule(r Resolver) ([]string, error) {
	names, err := r.List()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		data, err := r.Read(n)
		if err != nil {
			return nil, err
		}
		for _, l := range Parse(data) {
			if IsModuleLine(l) {
				out = append(out, n)
				break
			}
		}
	}
	return out, nil
}

// Package pamconf reads, plans and writes /etc/pam.d service files: where
// the module line goes (Enable, Disable), whether a stack runs the module
// soundly (CheckStack, StackProblem.Sound), the plan for a whole enable or
// disable run (Plan), and the atomic write with its backup (WriteService).
//
// The stack logic works on file contents ([]byte) and on a Resolver that
// returns other service files by name, so tests can run on fixtures; plan.go
// and write.go add the file-system side. It decides; it prints nothing but
// what it is asked to, and it never reads doctor's report.
package pamconf

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/pamstack"
)

// ModuleName is the file name of the PAM module in a pam.d line.
const ModuleName = "pam_unshare.so"

// markerComment is written on the line above the module line by enable and
// removed together with it by disable.
const markerComment = "# Added by pam-unshare enable: isolate the session in its own PID and mount\n" +
	"# namespace. Keep this the last session line; see pam_unshare(8)."

// IsModuleLine reports whether a pam.d line calls pam_unshare.so, by name
// or path.
func IsModuleLine(l pamstack.Line) bool {
	return l.Type == "session" && !l.IsInclude() && filepath.Base(l.Module) == ModuleName
}

// IsModuleEntry reports whether a stack entry calls pam_unshare.so.
func IsModuleEntry(e pamstack.Entry) bool {
	return e.Kind == pamstack.Module && filepath.Base(e.Module) == ModuleName
}

// Parse parses a pam.d file; see pamstack.Parse.
func Parse(data []byte) []pamstack.Line {
	lines, _ := pamstack.Parse(data)
	return lines
}

// Resolver reads pam.d files by service name.
type Resolver interface {
	// Read returns the contents of service file name, or an error wrapping
	// fs.ErrNotExist when there is none.
	pamstack.Reader
	// List returns the names of all service files.
	List() ([]string, error)
}

// vendorPamDirs hold the distribution's default service files on systems
// whose Linux-PAM was built with a vendor directory (openSUSE, for one): a
// file in /etc/pam.d overrides the file of the same name there.
var vendorPamDirs = []string{"/usr/lib/pam.d", "/usr/etc/pam.d"}

// DirResolver reads service files from its first directory that has them.
type DirResolver []string

// NewDirResolver reads pamd and, when pamd is the system's /etc/pam.d, the
// vendor directories after it.
func NewDirResolver(pamd string) DirResolver {
	if filepath.Clean(pamd) == DefaultDir {
		return append(DirResolver{pamd}, vendorPamDirs...)
	}
	return DirResolver{pamd}
}

func (d DirResolver) Read(name string) ([]byte, error) {
	if name == "" || strings.Contains(name, "/") && !filepath.IsAbs(name) {
		return nil, fmt.Errorf("%q: %w", name, fs.ErrNotExist)
	}
	if filepath.IsAbs(name) {
		return os.ReadFile(name)
	}
	var first error
	for _, dir := range d {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			return b, err
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

func (d DirResolver) List() ([]string, error) {
	seen := map[string]bool{}
	var names []string
	for i, dir := range d {
		ents, err := os.ReadDir(dir)
		if err != nil {
			if i > 0 && errors.Is(err, fs.ErrNotExist) {
				continue // no vendor directory here
			}
			return nil, err
		}
		for _, e := range ents {
			n := e.Name()
			if !e.Type().IsRegular() && e.Type()&fs.ModeSymlink == 0 || skipName(n) || seen[n] {
				continue
			}
			seen[n] = true
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

// vendorFile returns the path of service name in a vendor directory, or "".
func (d DirResolver) vendorFile(name string) string {
	for _, dir := range d[1:] {
		if p := filepath.Join(dir, name); fileExistsRegular(p) {
			return p
		}
	}
	return ""
}

func fileExistsRegular(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// skipName reports file names in pam.d that are not services: backups and
// package-manager leftovers.
func skipName(n string) bool {
	for _, suf := range []string{BackupSuffix, ".dpkg-old", ".dpkg-dist", ".dpkg-new", ".rpmnew", ".rpmsave", ".pacnew", ".pacsave", "~", ".tmp", ".bak", ".orig"} {
		if strings.HasSuffix(n, suf) {
			return true
		}
	}
	return strings.HasPrefix(n, ".")
}

// EntryString names a stack entry for messages: "pam_motd.so (sshd line 33)".
func EntryString(e pamstack.Entry) string {
	if e.Kind == pamstack.MustFail {
		return fmt.Sprintf("%q (%s; libpam cannot use it: %s)", e.Text, e.Where(), e.Why)
	}
	return fmt.Sprintf("%s (%s)", filepath.Base(e.Module), e.Where())
}

// sessionEntries returns the session handlers that lines of file add, in
// the order PAM runs them, following "@include" and "session
// include/substack".
func sessionEntries(r Resolver, file string, lines ...pamstack.Line) ([]pamstack.Entry, error) {
	return pamstack.Expand(r, file, lines)
}

// Result describes what enable did to one file.
type Result struct {
	Out     []byte
	Changed bool
	Notes   []string // extra information for the user
}

// moduleLine is the line enable writes.
func moduleLine(args []string) string {
	return strings.Join(append([]string{"session", "required", ModuleName}, args...), " ")
}

// Enable returns the contents of service file name with pam_unshare.so as
// its last session line, with the given module arguments. r resolves
// included files and finds other files that include this one.
func Enable(r Resolver, name string, data []byte, args []string) (Result, error) {
	lines := Parse(data)
	if err := checkIncludes(r, name, lines); err != nil {
		return Result{}, err
	}

	// Drop the existing lines; the new one goes to the right place below.
	var existing []pamstack.Line
	kept := lines[:0:0]
	marks := markerLines(lines)
	for i, l := range lines {
		if IsModuleLine(l) {
			existing = append(existing, l)
			continue
		}
		if marks[i] {
			continue
		}
		kept = append(kept, l)
	}

	// The insertion point: after the last line that adds session handlers.
	at := -1
	for i, l := range kept {
		sub, err := sessionEntries(r, name, l)
		if err != nil {
			return Result{}, err
		}
		if len(sub) > 0 {
			at = i
		}
	}

	if err := checkIncluders(r, name); err != nil {
		return Result{}, err
	}
	if strings.HasPrefix(name, "common-") {
		return Result{}, fmt.Errorf("%s is included by many services, some of which (sshd) run more session "+
			"modules after it, and %s must be the last one; enable it in the services themselves "+
			"(for example \"pam-unshare enable su sshd sudo\")", name, ModuleName)
	}

	// The stack as it will be must not let a session open without the
	// module: no earlier done, sufficient or jump may pass over it.
	newLine := pamstack.Line{Text: moduleLine(args), Type: "session", Control: "required", Module: ModuleName, Args: args}
	planned := append(append(append([]pamstack.Line{}, kept[:at+1]...), newLine), kept[at+1:]...)
	if err := checkPlanned(r, name, planned); err != nil {
		return Result{}, err
	}

	// Unchanged when the only existing line already sits last with the same
	// arguments: keep the administrator's formatting.
	if len(existing) == 1 && existing[0].Control == "required" && slices.Equal(existing[0].Args, args) {
		idx := indexOfLine(lines, existing[0].Num)
		lastSession := -1
		for i, l := range lines {
			if sub, _ := sessionEntries(r, name, l); len(sub) > 0 {
				lastSession = i
			}
		}
		if idx == lastSession {
			return Result{Out: data, Notes: []string{fmt.Sprintf("%s: already enabled (line %d)", name, existing[0].Num)}}, nil
		}
	}

	out := render(kept, at, args)
	res := Result{Out: out, Changed: !bytes.Equal(out, data)}
	if len(existing) > 0 && res.Changed {
		res.Notes = append(res.Notes, fmt.Sprintf("%s: replaced the existing %s line(s)", name, ModuleName))
	}
	return res, nil
}

// checkIncludes refuses a file that already runs the module through a
// file it includes: adding it here would run it twice.
func checkIncludes(r Resolver, name string, lines []pamstack.Line) error {
	for _, l := range lines {
		if !l.IsInclude() || l.Type != "session" && l.Type != "@include" {
			continue
		}
		sub, err := sessionEntries(r, name, l)
		if err != nil {
			return err
		}
		for _, e := range sub {
			if IsModuleEntry(e) {
				return fmt.Errorf("%s line %d includes %s, which already has %s on line %d; "+
					"the module must run only once per session: enable it in one of the two files only",
					name, l.Num, e.File, ModuleName, e.Line)
			}
		}
	}
	return nil
}

// render writes the kept lines with the marker comment and the module line
// after index at, or at the end (after a blank line) when at is -1.
func render(kept []pamstack.Line, at int, args []string) []byte {
	var b strings.Builder
	write := func(l pamstack.Line) { b.WriteString(l.Text); b.WriteByte('\n') }
	insert := func() {
		b.WriteString(markerComment + "\n")
		b.WriteString(moduleLine(args) + "\n")
	}
	if at < 0 {
		for _, l := range kept {
			write(l)
		}
		if len(kept) > 0 && strings.TrimSpace(kept[len(kept)-1].Text) != "" {
			b.WriteByte('\n')
		}
		insert()
	} else {
		for i, l := range kept {
			write(l)
			if i == at {
				insert()
			}
		}
	}
	return []byte(b.String())
}

// checkPlanned refuses a service file, as enable would write it, in which
// libpam could open a session without running the module, or with a jump
// that passes over it.
func checkPlanned(r Resolver, name string, planned []pamstack.Line) error {
	stack, err := pamstack.LoadLines(r, name, planned)
	if err != nil {
		return err
	}
	rep := pamstack.Analyze(stack, IsModuleEntry)
	f := rep.SkippedOpen
	consequence := "the session would open without isolation"
	if f == nil {
		f = rep.ErrorIgnored
	}
	if f == nil && rep.SkippedRefused != nil {
		f, consequence = rep.SkippedRefused, "the session would be refused"
	}
	if f == nil {
		return nil
	}
	if f.Culprit < 0 {
		return fmt.Errorf("%s: %s", name, f.Reason)
	}
	return fmt.Errorf("%s: %s; %s. Change that control so that it cannot end the stack or jump past %s "+
		"(for example optional instead of sufficient, ok instead of done, a shorter jump), then run enable again; "+
		"see pam-unshare(8)", name, f.Reason, consequence, ModuleName)
}

// checkIncluders refuses to enable a file that other service files include
// when they run session modules after the include (common-session in sshd
// is the standard case), or when they already run the module themselves.
func checkIncluders(r Resolver, name string) error {
	names, err := r.List()
	if err != nil {
		return err
	}
	for _, other := range names {
		if other == name {
			continue
		}
		data, err := r.Read(other)
		if err != nil {
			continue
		}
		lines := Parse(data)
		for i, l := range lines {
			if !l.IsInclude() || l.Module != name || l.Type != "session" && l.Type != "@include" {
				continue
			}
			after, err := sessionEntries(r, other, lines[i+1:]...)
			if err != nil {
				return err
			}
			if len(after) == 0 {
				continue
			}
			var mods []string
			for _, e := range after {
				if IsModuleEntry(e) {
					return fmt.Errorf("%s is included by %s (line %d), which already runs %s after it (line %d); "+
						"the module must run only once per session: disable it in %s first, or leave %s alone",
						name, other, l.Num, ModuleName, e.Line, other, name)
				}
				if e.Kind != pamstack.SubstackStart {
					mods = append(mods, EntryString(e))
				}
			}
			return fmt.Errorf("%s is included by %s (line %d), which runs more session modules after it: %s; "+
				"%s must be the last session module, so enable it in the services themselves "+
				"(for example \"pam-unshare enable %s\") rather than in %s",
				name, other, l.Num, strings.Join(mods, ", "), ModuleName, other, name)
		}
	}
	return nil
}

// Disable removes every pam_unshare.so line (and the comment enable wrote
// above it) from a service file.
func Disable(r Resolver, name string, data []byte) (Result, error) {
	lines := Parse(data)
	var b strings.Builder
	removed := 0
	marks := markerLines(lines)
	for i, l := range lines {
		if IsModuleLine(l) {
			removed++
			continue
		}
		if marks[i] {
			continue
		}
		b.WriteString(l.Text)
		b.WriteByte('\n')
	}
	res := Result{Out: data}
	if removed > 0 {
		res.Out = []byte(b.String())
		res.Changed = true
	} else {
		res.Notes = append(res.Notes, fmt.Sprintf("%s: not enabled", name))
	}
	if r != nil {
		if stack, err := sessionEntries(r, name, Parse(res.Out)...); err == nil {
			for _, e := range stack {
				if IsModuleEntry(e) {
					res.Notes = append(res.Notes, fmt.Sprintf("%s still runs %s through an include: %s",
						name, ModuleName, e.Where()))
				}
			}
		}
	}
	return res, nil
}

// markerLines returns the indexes of the comment lines enable writes
// directly above a module line.
func markerLines(lines []pamstack.Line) map[int]bool {
	marker := strings.Split(markerComment, "\n")
	set := map[int]bool{}
	for j, l := range lines {
		if !IsModuleLine(l) || j < len(marker) {
			continue
		}
		match := true
		for k, m := range marker {
			if strings.TrimSpace(lines[j-len(marker)+k].Text) != m {
				match = false
			}
		}
		if match {
			for k := range marker {
				set[j-len(marker)+k] = true
			}
		}
	}
	return set
}

func indexOfLine(lines []pamstack.Line, num int) int {
	for i, l := range lines {
		if l.Num == num {
			return i
		}
	}
	return -1
}

// StackProblem is what doctor finds in one service whose session stack runs
// the module.
type StackProblem struct {
	Service string
	Stack   *pamstack.Stack
	Entry   pamstack.Entry   // the first pam_unshare.so entry
	After   []pamstack.Entry // session handlers that run after it
	Dups    []pamstack.Entry // further pam_unshare.so entries
	Report  pamstack.Report  // how libpam can run the stack without it
}

// CheckStack loads a service's session stack and reports whether the module
// is in it, and if so whether it is the last and only one, and whether
// libpam can open a session without it.
func CheckStack(r Resolver, name string) (found bool, p StackProblem, err error) {
	stack, err := pamstack.Load(r, name)
	if err != nil {
		return false, p, err
	}
	p.Report = pamstack.Analyze(stack, IsModuleEntry)
	if len(p.Report.Targets) == 0 {
		return false, p, nil
	}
	first := p.Report.Targets[0]
	p.Service, p.Stack, p.Entry = name, stack, stack.Entries[first]
	for _, i := range p.Report.Targets[1:] {
		p.Dups = append(p.Dups, stack.Entries[i])
	}
	for _, e := range stack.Entries[first+1:] {
		if !IsModuleEntry(e) && e.Kind != pamstack.SubstackStart {
			p.After = append(p.After, e)
		}
	}
	return true, p, nil
}

// Sound reports whether the stack runs the module as a session needs it:
// libpam cannot open a session without it or jump over it, nothing runs
// after it, and it runs once. enable and the door checks decide by this;
// doctor's report says which of these fails.
func (p StackProblem) Sound() bool {
	r := p.Report
	return r.SkippedOpen == nil && r.ErrorIgnored == nil && r.SkippedRefused == nil &&
		len(p.After) == 0 && len(p.Dups) == 0
}

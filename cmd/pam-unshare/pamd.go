package main

// Reading and editing /etc/pam.d service files.
//
// Everything here works on file contents ([]byte) and on a Resolver that
// returns other service files by name, so tests can run on fixtures and
// the commands only add the file-system plumbing (see enable.go).

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

// moduleName is the file name of the PAM module in a pam.d line.
const moduleName = "pam_unshare.so"

// markerComment is written on the line above the module line by enable and
// removed together with it by disable.
const markerComment = "# Added by pam-unshare enable: isolate the session in its own PID and mount\n" +
	"# namespace. Keep this the last session line; see pam_unshare(8)."

// isModuleLine reports whether a pam.d line calls pam_unshare.so, by name
// or path.
func isModuleLine(l pamstack.Line) bool {
	return l.Type == "session" && !l.IsInclude() && filepath.Base(l.Module) == moduleName
}

// isModuleEntry reports whether a stack entry calls pam_unshare.so.
func isModuleEntry(e pamstack.Entry) bool {
	return e.Kind == pamstack.Module && filepath.Base(e.Module) == moduleName
}

// parsePAM parses a pam.d file; see pamstack.Parse.
func parsePAM(data []byte) []pamstack.Line {
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

// dirResolver reads service files from its first directory that has them.
type dirResolver []string

// newDirResolver reads pamd and, when pamd is the system's /etc/pam.d, the
// vendor directories after it.
func newDirResolver(pamd string) dirResolver {
	if filepath.Clean(pamd) == defaultPamd {
		return append(dirResolver{pamd}, vendorPamDirs...)
	}
	return dirResolver{pamd}
}

func (d dirResolver) Read(name string) ([]byte, error) {
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

func (d dirResolver) List() ([]string, error) {
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
func (d dirResolver) vendorFile(name string) string {
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
	for _, suf := range []string{backupSuffix, ".dpkg-old", ".dpkg-dist", ".dpkg-new", ".rpmnew", ".rpmsave", ".pacnew", ".pacsave", "~", ".tmp", ".bak", ".orig"} {
		if strings.HasSuffix(n, suf) {
			return true
		}
	}
	return strings.HasPrefix(n, ".")
}

// entryString names a stack entry for messages: "pam_motd.so (sshd line 33)".
func entryString(e pamstack.Entry) string {
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

// enableResult describes what enable did to one file.
type enableResult struct {
	out     []byte
	changed bool
	notes   []string // extra information for the user
}

// moduleLine is the line enable writes.
func moduleLine(args []string) string {
	return strings.Join(append([]string{"session", "required", moduleName}, args...), " ")
}

// enablePAM returns the contents of service file name with pam_unshare.so as
// its last session line, with the given module arguments. r resolves
// included files and finds other files that include this one.
func enablePAM(r Resolver, name string, data []byte, args []string) (enableResult, error) {
	lines := parsePAM(data)

	// Already pulled in through an include: adding it here would run it twice.
	for _, l := range lines {
		if !l.IsInclude() || l.Type != "session" && l.Type != "@include" {
			continue
		}
		sub, err := sessionEntries(r, name, l)
		if err != nil {
			return enableResult{}, err
		}
		for _, e := range sub {
			if isModuleEntry(e) {
				return enableResult{}, fmt.Errorf("%s line %d includes %s, which already has %s on line %d; "+
					"the module must run only once per session: enable it in one of the two files only",
					name, l.Num, e.File, moduleName, e.Line)
			}
		}
	}

	// Drop the existing lines; the new one goes to the right place below.
	var existing []pamstack.Line
	kept := lines[:0:0]
	marks := markerLines(lines)
	for i, l := range lines {
		if isModuleLine(l) {
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
			return enableResult{}, err
		}
		if len(sub) > 0 {
			at = i
		}
	}

	if err := checkIncluders(r, name); err != nil {
		return enableResult{}, err
	}
	if strings.HasPrefix(name, "common-") {
		return enableResult{}, fmt.Errorf("%s is included by many services, some of which (sshd) run more session "+
			"modules after it, and %s must be the last one; enable it in the services themselves "+
			"(for example \"pam-unshare enable su sshd sudo\")", name, moduleName)
	}

	// The stack as it will be must not let a session open without the
	// module: no earlier done, sufficient or jump may pass over it.
	newLine := pamstack.Line{Text: moduleLine(args), Type: "session", Control: "required", Module: moduleName, Args: args}
	planned := append(append(append([]pamstack.Line{}, kept[:at+1]...), newLine), kept[at+1:]...)
	if err := checkPlanned(r, name, planned); err != nil {
		return enableResult{}, err
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
			return enableResult{out: data, notes: []string{fmt.Sprintf("%s: already enabled (line %d)", name, existing[0].Num)}}, nil
		}
	}

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
	out := []byte(b.String())
	res := enableResult{out: out, changed: !bytes.Equal(out, data)}
	if len(existing) > 0 && res.changed {
		res.notes = append(res.notes, fmt.Sprintf("%s: replaced the existing %s line(s)", name, moduleName))
	}
	return res, nil
}

// checkPlanned refuses a service file, as enable would write it, in which
// libpam could open a session without running the module, or with a jump
// that passes over it.
func checkPlanned(r Resolver, name string, planned []pamstack.Line) error {
	stack, err := pamstack.LoadLines(r, name, planned)
	if err != nil {
		return err
	}
	rep := pamstack.Analyze(stack, isModuleEntry)
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
		"see pam-unshare(8)", name, f.Reason, consequence, moduleName)
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
		lines := parsePAM(data)
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
				if isModuleEntry(e) {
					return fmt.Errorf("%s is included by %s (line %d), which already runs %s after it (line %d); "+
						"the module must run only once per session: disable it in %s first, or leave %s alone",
						name, other, l.Num, moduleName, e.Line, other, name)
				}
				if e.Kind != pamstack.SubstackStart {
					mods = append(mods, entryString(e))
				}
			}
			return fmt.Errorf("%s is included by %s (line %d), which runs more session modules after it: %s; "+
				"%s must be the last session module, so enable it in the services themselves "+
				"(for example \"pam-unshare enable %s\") rather than in %s",
				name, other, l.Num, strings.Join(mods, ", "), moduleName, other, name)
		}
	}
	return nil
}

// disablePAM removes every pam_unshare.so line (and the comment enable wrote
// above it) from a service file.
func disablePAM(r Resolver, name string, data []byte) (enableResult, error) {
	lines := parsePAM(data)
	var b strings.Builder
	removed := 0
	marks := markerLines(lines)
	for i, l := range lines {
		if isModuleLine(l) {
			removed++
			continue
		}
		if marks[i] {
			continue
		}
		b.WriteString(l.Text)
		b.WriteByte('\n')
	}
	res := enableResult{out: data}
	if removed > 0 {
		res.out = []byte(b.String())
		res.changed = true
	} else {
		res.notes = append(res.notes, fmt.Sprintf("%s: not enabled", name))
	}
	if r != nil {
		if stack, err := sessionEntries(r, name, parsePAM(res.out)...); err == nil {
			for _, e := range stack {
				if isModuleEntry(e) {
					res.notes = append(res.notes, fmt.Sprintf("%s still runs %s through an include: %s",
						name, moduleName, e.Where()))
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
		if !isModuleLine(l) || j < len(marker) {
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

// stackProblem is what doctor finds in one service whose session stack runs
// the module.
type stackProblem struct {
	service string
	stack   *pamstack.Stack
	entry   pamstack.Entry   // the first pam_unshare.so entry
	after   []pamstack.Entry // session handlers that run after it
	dups    []pamstack.Entry // further pam_unshare.so entries
	report  pamstack.Report  // how libpam can run the stack without it
}

// checkStack loads a service's session stack and reports whether the module
// is in it, and if so whether it is the last and only one, and whether
// libpam can open a session without it.
func checkStack(r Resolver, name string) (found bool, p stackProblem, err error) {
	stack, err := pamstack.Load(r, name)
	if err != nil {
		return false, p, err
	}
	p.report = pamstack.Analyze(stack, isModuleEntry)
	if len(p.report.Targets) == 0 {
		return false, p, nil
	}
	first := p.report.Targets[0]
	p.service, p.stack, p.entry = name, stack, stack.Entries[first]
	for _, i := range p.report.Targets[1:] {
		p.dups = append(p.dups, stack.Entries[i])
	}
	for _, e := range stack.Entries[first+1:] {
		if !isModuleEntry(e) && e.Kind != pamstack.SubstackStart {
			p.after = append(p.after, e)
		}
	}
	return true, p, nil
}

// Sound reports whether the stack runs the module as a session needs it:
// libpam cannot open a session without it or jump over it, nothing runs
// after it, and it runs once. enable and the door checks decide by this;
// doctor's report says which of these fails.
func (p stackProblem) Sound() bool {
	r := p.report
	return r.SkippedOpen == nil && r.ErrorIgnored == nil && r.SkippedRefused == nil &&
		len(p.after) == 0 && len(p.dups) == 0
}

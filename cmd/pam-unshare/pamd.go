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
	"strconv"
	"strings"
)

// moduleName is the file name of the PAM module in a pam.d line.
const moduleName = "pam_unshare.so"

// markerComment is written on the line above the module line by enable and
// removed together with it by disable.
const markerComment = "# Added by pam-unshare enable: isolate the session in its own PID and mount\n" +
	"# namespace. Keep this the last session line; see pam_unshare(8)."

// maxIncludeDepth bounds include recursion (Linux-PAM itself stops at a
// similar depth); deeper nesting is reported as an error.
const maxIncludeDepth = 16

// pamLine is one logical line of a pam.d file: physical lines joined where a
// line ends with a backslash.
type pamLine struct {
	num  int    // 1-based number of the first physical line
	text string // the physical lines, newline-joined, without the final newline

	// Parsed fields; typ is "" for blank and comment-only lines.
	typ     string // "session", "auth", ... or "@include"
	dash    bool   // "-session": do not log if the module is missing
	control string // "required", "[default=1]", "include", ...
	module  string // module path, or the included file for include lines
	args    []string
}

// isModule reports whether the line calls pam_unshare.so, by name or path.
func (l *pamLine) isModule() bool {
	return l.typ == "session" && !l.isInclude() && filepath.Base(l.module) == moduleName
}

// isInclude reports whether the line pulls in another file: "@include X",
// "TYPE include X" or "TYPE substack X".
func (l *pamLine) isInclude() bool {
	return l.typ == "@include" || l.control == "include" || l.control == "substack"
}

// parsePAM splits a pam.d file into logical lines. It never fails: lines it
// cannot make sense of keep their text and an empty typ, the same way
// Linux-PAM skips them with a log message.
func parsePAM(data []byte) []pamLine {
	phys := strings.Split(string(data), "\n")
	if len(phys) > 0 && phys[len(phys)-1] == "" {
		phys = phys[:len(phys)-1]
	}
	var out []pamLine
	for i := 0; i < len(phys); i++ {
		l := pamLine{num: i + 1, text: phys[i]}
		joined := phys[i]
		for strings.HasSuffix(joined, "\\") && i+1 < len(phys) {
			i++
			l.text += "\n" + phys[i]
			joined = strings.TrimSuffix(joined, "\\") + " " + phys[i]
		}
		parseFields(&l, joined)
		out = append(out, l)
	}
	return out
}

// parseFields fills the parsed fields of l from one joined line.
func parseFields(l *pamLine, s string) {
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s = s[:i] // Linux-PAM: a comment runs from '#' to the end of the line
	}
	toks := tokenize(s)
	if len(toks) == 0 {
		return
	}
	if toks[0] == "@include" {
		if len(toks) >= 2 {
			l.typ, l.module = "@include", toks[1]
		}
		return
	}
	if len(toks) < 3 {
		return
	}
	t := strings.ToLower(toks[0])
	if strings.HasPrefix(t, "-") {
		l.dash, t = true, t[1:]
	}
	l.typ, l.control, l.module, l.args = t, toks[1], toks[2], toks[3:]
}

// tokenize splits on blanks, keeping "[...]" groups (controls and bracketed
// arguments such as "[default=bad]" or "[a b]") as one token.
func tokenize(s string) []string {
	var toks []string
	for {
		s = strings.TrimLeft(s, " \t\r")
		if s == "" {
			return toks
		}
		end := strings.IndexAny(s, " \t\r")
		if j := strings.IndexByte(s, '['); j >= 0 && (end < 0 || j < end) {
			if k := strings.IndexByte(s[j:], ']'); k >= 0 {
				rest := s[j+k+1:]
				if e := strings.IndexAny(rest, " \t\r"); e >= 0 {
					end = j + k + 1 + e
				} else {
					end = -1
				}
			}
		}
		if end < 0 {
			return append(toks, s)
		}
		toks = append(toks, s[:end])
		s = s[end:]
	}
}

// Resolver reads pam.d files by service name.
type Resolver interface {
	// Read returns the contents of service file name, or an error wrapping
	// fs.ErrNotExist when there is none.
	Read(name string) ([]byte, error)
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

// mapResolver serves files from memory (tests).
type mapResolver map[string]string

func (m mapResolver) Read(name string) ([]byte, error) {
	s, ok := m[name]
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	}
	return []byte(s), nil
}

func (m mapResolver) List() ([]string, error) {
	var names []string
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// stackEntry is one module in the expanded session stack of a service.
type stackEntry struct {
	file    string // service file the line is in
	line    int    // its line number
	module  string // module path as written
	control string // "required", "[success=1 default=ignore]", ...
	missing string // set instead of module when an include target does not exist
}

// maxJump returns the largest jump of a bracketed control
// ("[success=2 default=ignore]" jumps over the next 2 modules), or 0.
func (e stackEntry) maxJump() int {
	if !strings.HasPrefix(e.control, "[") {
		return 0
	}
	n := 0
	for _, kv := range strings.Fields(strings.Trim(e.control, "[]")) {
		_, v, _ := strings.Cut(kv, "=")
		if j, err := strconv.Atoi(v); err == nil && j > n {
			n = j
		}
	}
	return n
}

// jumpsOver returns the entries of stack[:at] whose jumps skip the module
// at position at.
func jumpsOver(stack []stackEntry, at int) []stackEntry {
	var out []stackEntry
	for i, e := range stack[:at] {
		if i+e.maxJump() >= at {
			out = append(out, e)
		}
	}
	return out
}

func (e stackEntry) String() string {
	if e.missing != "" {
		return fmt.Sprintf("missing include %q (%s line %d)", e.missing, e.file, e.line)
	}
	return fmt.Sprintf("%s (%s line %d)", filepath.Base(e.module), e.file, e.line)
}

func (e stackEntry) isModule() bool { return e.missing == "" && filepath.Base(e.module) == moduleName }

// sessionStack expands the session modules of file name, in the order PAM
// runs them, following "@include" and "session include/substack".
func sessionStack(r Resolver, name string) ([]stackEntry, error) {
	data, err := r.Read(name)
	if err != nil {
		return nil, err
	}
	return expandLines(r, name, parsePAM(data), 0)
}

// expandLines expands the session entries of already-parsed lines of file.
func expandLines(r Resolver, file string, lines []pamLine, depth int) ([]stackEntry, error) {
	if depth > maxIncludeDepth {
		return nil, fmt.Errorf("%s: includes nested deeper than %d levels (a loop?)", file, maxIncludeDepth)
	}
	var out []stackEntry
	for _, l := range lines {
		sub, err := expandLine(r, file, l, depth)
		if err != nil {
			return nil, err
		}
		out = append(out, sub...)
	}
	return out, nil
}

// expandLine returns the session entries one line contributes.
func expandLine(r Resolver, file string, l pamLine, depth int) ([]stackEntry, error) {
	switch {
	case l.typ != "session" && l.typ != "@include":
		return nil, nil
	case !l.isInclude():
		return []stackEntry{{file: file, line: l.num, module: l.module, control: l.control}}, nil
	}
	data, err := r.Read(l.module)
	if errors.Is(err, fs.ErrNotExist) {
		return []stackEntry{{file: file, line: l.num, missing: l.module}}, nil
	}
	if err != nil {
		return nil, err
	}
	return expandLines(r, l.module, parsePAM(data), depth+1)
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
		if !l.isInclude() || l.typ != "session" && l.typ != "@include" {
			continue
		}
		sub, err := expandLine(r, name, l, 0)
		if err != nil {
			return enableResult{}, err
		}
		for _, e := range sub {
			if e.isModule() {
				return enableResult{}, fmt.Errorf("%s line %d includes %s, which already has %s on line %d; "+
					"the module must run only once per session: enable it in one of the two files only",
					name, l.num, e.file, moduleName, e.line)
			}
		}
	}

	// Drop the existing lines; the new one goes to the right place below.
	var existing []pamLine
	kept := lines[:0:0]
	marks := markerLines(lines)
	for i, l := range lines {
		if l.isModule() {
			existing = append(existing, l)
			continue
		}
		if marks[i] {
			continue
		}
		kept = append(kept, l)
	}

	// The insertion point: after the last line that adds session modules.
	at := -1
	for i, l := range kept {
		sub, err := expandLine(r, name, l, 0)
		if err != nil {
			return enableResult{}, err
		}
		if len(sub) > 0 {
			at = i
		}
	}
	if at >= 0 {
		if sub, _ := expandLine(r, name, kept[at], 0); len(sub) == 1 && sub[0].missing != "" {
			return enableResult{}, fmt.Errorf("%s line %d: %q includes %q, which does not exist, so it is not "+
				"known whether it adds session modules after %s (they would break: see pam_unshare(8)); "+
				"create the file or remove the line, then run enable again",
				name, kept[at].num, strings.TrimSpace(kept[at].text), sub[0].missing, moduleName)
		}
	}

	// A jump that reaches past the end of the stack would skip the module.
	before, err := expandLines(r, name, kept[:at+1], 0)
	if err != nil {
		return enableResult{}, err
	}
	if j := jumpsOver(before, len(before)); len(j) > 0 {
		return enableResult{}, fmt.Errorf("%s line %d: control %s of %s jumps past the end of the session stack, "+
			"so %s added after it would be skipped whenever that jump is taken; "+
			"rewrite the control so that it jumps no further than the last module, then run enable again",
			j[0].file, j[0].line, j[0].control, filepath.Base(j[0].module), moduleName)
	}

	if err := checkIncluders(r, name); err != nil {
		return enableResult{}, err
	}
	if strings.HasPrefix(name, "common-") {
		return enableResult{}, fmt.Errorf("%s is included by many services, some of which (sshd) run more session "+
			"modules after it, and %s must be the last one; enable it in the services themselves "+
			"(for example \"pam-unshare enable su sshd sudo\")", name, moduleName)
	}

	// Unchanged when the only existing line already sits last with the same
	// arguments: keep the administrator's formatting.
	if len(existing) == 1 && existing[0].control == "required" && slices.Equal(existing[0].args, args) {
		idx := indexOfLine(lines, existing[0].num)
		lastSession := -1
		for i, l := range lines {
			if sub, _ := expandLine(r, name, l, 0); len(sub) > 0 {
				lastSession = i
			}
		}
		if idx == lastSession {
			return enableResult{out: data, notes: []string{fmt.Sprintf("%s: already enabled (line %d)", name, existing[0].num)}}, nil
		}
	}

	var b strings.Builder
	write := func(l pamLine) { b.WriteString(l.text); b.WriteByte('\n') }
	insert := func() {
		b.WriteString(markerComment + "\n")
		b.WriteString(moduleLine(args) + "\n")
	}
	if at < 0 {
		for _, l := range kept {
			write(l)
		}
		if len(kept) > 0 && strings.TrimSpace(kept[len(kept)-1].text) != "" {
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
			if !l.isInclude() || l.module != name || l.typ != "session" && l.typ != "@include" {
				continue
			}
			after, err := expandLines(r, other, lines[i+1:], 0)
			if err != nil {
				return err
			}
			if len(after) == 0 {
				continue
			}
			var mods []string
			for _, e := range after {
				if e.isModule() {
					return fmt.Errorf("%s is included by %s (line %d), which already runs %s after it (line %d); "+
						"the module must run only once per session: disable it in %s first, or leave %s alone",
						name, other, l.num, moduleName, e.line, other, name)
				}
				mods = append(mods, e.String())
			}
			return fmt.Errorf("%s is included by %s (line %d), which runs more session modules after it: %s; "+
				"%s must be the last session module, so enable it in the services themselves "+
				"(for example \"pam-unshare enable %s\") rather than in %s",
				name, other, l.num, strings.Join(mods, ", "), moduleName, other, name)
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
		if l.isModule() {
			removed++
			continue
		}
		if marks[i] {
			continue
		}
		b.WriteString(l.text)
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
		if stack, err := expandLines(r, name, parsePAM(res.out), 0); err == nil {
			for _, e := range stack {
				if e.isModule() {
					res.notes = append(res.notes, fmt.Sprintf("%s still runs %s through an include: %s line %d",
						name, moduleName, e.file, e.line))
				}
			}
		}
	}
	return res, nil
}

// markerLines returns the indexes of the comment lines enable writes
// directly above a module line.
func markerLines(lines []pamLine) map[int]bool {
	marker := strings.Split(markerComment, "\n")
	set := map[int]bool{}
	for j, l := range lines {
		if !l.isModule() || j < len(marker) {
			continue
		}
		match := true
		for k, m := range marker {
			if strings.TrimSpace(lines[j-len(marker)+k].text) != m {
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

func indexOfLine(lines []pamLine, num int) int {
	for i, l := range lines {
		if l.num == num {
			return i
		}
	}
	return -1
}

// stackProblem is what doctor reports about one service whose session stack
// contains the module.
type stackProblem struct {
	service string
	entry   stackEntry   // the pam_unshare.so line
	after   []stackEntry // session modules that run after it
	dups    []stackEntry // further pam_unshare.so lines
	jumps   []stackEntry // earlier modules whose jumps skip it
}

// checkStack expands a service's session stack and reports whether the module
// is in it, and if so whether it is the last and only one.
func checkStack(r Resolver, name string) (found bool, p stackProblem, err error) {
	stack, err := sessionStack(r, name)
	if err != nil {
		return false, p, err
	}
	first := -1
	for i, e := range stack {
		if e.isModule() {
			if first < 0 {
				first = i
			} else {
				p.dups = append(p.dups, e)
			}
		}
	}
	if first < 0 {
		return false, p, nil
	}
	p.service, p.entry = name, stack[first]
	p.jumps = jumpsOver(stack, first)
	for _, e := range stack[first+1:] {
		if !e.isModule() {
			p.after = append(p.after, e)
		}
	}
	return true, p, nil
}

// moduleArgs returns the arguments of the first pam_unshare.so line in a
// service's session stack.
func moduleArgs(r Resolver, e stackEntry) []string {
	data, err := r.Read(e.file)
	if err != nil {
		return nil
	}
	for _, l := range parsePAM(data) {
		if l.num == e.line {
			return l.args
		}
	}
	return nil
}

package pamstack

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// Reader returns pam.d files by name: a service name, or the file an
// include names (Debian's libpam looks a relative one up in /etc/pam.d
// whatever directory the service came from).
type Reader interface {
	// Read returns the file's contents, or an error wrapping
	// fs.ErrNotExist when there is none.
	Read(name string) ([]byte, error)
}

// OtherService is the file libpam falls back to (PAM_DEFAULT_SERVICE).
const OtherService = "other"

// maxSubstackLevel is PAM_SUBSTACK_MAX_LEVEL: libpam refuses to nest
// substacks deeper.
const maxSubstackLevel = 16

// maxIncludeDepth bounds include recursion. libpam itself has no limit for
// include and @include: a loop recurses until it runs out of file
// descriptors. Deeper nesting is reported as an error.
const maxIncludeDepth = 16

// errTooDeep ends the expansion: the service cannot be judged.
var errTooDeep = fmt.Errorf("includes nested deeper than %d levels (a loop?)", maxIncludeDepth)

// Kind is what libpam installs for a stack entry.
type Kind int

const (
	// Module calls a module's pam_sm_open_session. A module that cannot
	// be loaded returns PAM_MODULE_UNKNOWN.
	Module Kind = iota
	// SubstackStart is the handler a "substack" line installs: the
	// dispatcher passes over it, and a jump counts it and the substack's
	// modules as one module.
	SubstackStart
	// MustFail is the handler libpam installs for a line it could not
	// use (no module, an include of a file it cannot read, an unknown
	// type in an included file): it returns PAM_PERM_DENIED.
	MustFail
)

// Entry is one handler of a service's session stack.
type Entry struct {
	File    string   // the file the line is in
	Line    int      // its line number (0 for a line that is not in a file yet)
	Text    string   // the line as written
	Level   int      // substack depth: 0 for the service's own stack
	Kind    Kind     // what libpam does with it
	Module  string   // module path as written (Module), or the file (SubstackStart, MustFail of an include)
	Args    []string // module arguments
	Control string   // the control as written
	Actions Actions  // what each return value does
	Why     string   // for MustFail: why libpam could not use the line
}

// Where is "FILE line N", or "new line in FILE".
func (e Entry) Where() string {
	if e.Line == 0 {
		return "new line in " + e.File
	}
	return fmt.Sprintf("%s line %d", e.File, e.Line)
}

// Stack is the session stack libpam runs for a service at
// pam_open_session.
type Stack struct {
	Service string
	Entries []Entry
	// FromOther is set when the service file has no session lines (or
	// does not exist), so that libpam runs the session lines of "other".
	FromOther bool
}

// Load expands the session stack of a service. An error means libpam
// cannot load the service at all (pam_start or the first PAM call fails):
// a file that ends inside a continued line, a missing @include in a
// service file, include nesting deeper than maxIncludeDepth.
func Load(r Reader, service string) (*Stack, error) {
	data, err := r.Read(service)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return loadOther(r, service, nil)
	case err != nil:
		return nil, err
	}
	lines, complete := Parse(data)
	if !complete {
		return nil, incompleteError(service)
	}
	return LoadLines(r, service, lines)
}

// LoadLines is Load with the service file already parsed, for a service
// file that is about to be written.
func LoadLines(r Reader, service string, lines []Line) (*Stack, error) {
	conf, err := Expand(r, service, lines)
	if err != nil {
		return nil, err
	}
	return loadOther(r, service, conf)
}

// Expand returns the session handlers that lines of a service file add, in
// the order libpam runs them, without the fallback to "other".
func Expand(r Reader, file string, lines []Line) ([]Entry, error) {
	ex := expander{r: r}
	if err := ex.file(file, lines, false, 0, 0); err != nil {
		return nil, err
	}
	return ex.out, nil
}

// loadOther reads "other", which libpam always parses, and returns the
// stack: conf when it has entries, else other's session entries.
func loadOther(r Reader, service string, conf []Entry) (*Stack, error) {
	s := &Stack{Service: service, Entries: conf}
	var ex expander
	ex.r = r
	data, err := r.Read(OtherService)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if conf == nil {
			return nil, fmt.Errorf("%s: %w, and there is no %q to fall back to", service, fs.ErrNotExist, OtherService)
		}
	case err != nil:
		return nil, err
	default:
		lines, complete := Parse(data)
		if !complete {
			return nil, incompleteError(OtherService)
		}
		if err := ex.file(OtherService, lines, false, 0, 0); err != nil {
			return nil, err
		}
	}
	if len(conf) == 0 {
		s.Entries, s.FromOther = ex.out, true
	}
	return s, nil
}

func incompleteError(file string) error {
	return fmt.Errorf("%s ends with a backslash-continued line: libpam rejects the whole file", file)
}

// expander builds a stack as _pam_parse_conf_file and _pam_add_handler do.
type expander struct {
	r   Reader
	out []Entry
}

// file adds the session handlers of one parsed file. sessionOnly is libpam's
// requested module type: false (PAM_T_ANY) for a service file and what it
// pulls in with @include, true for files pulled in by "session include"
// and "session substack".
func (ex *expander) file(name string, lines []Line, sessionOnly bool, level, depth int) error {
	if depth > maxIncludeDepth {
		return fmt.Errorf("%s: %w", name, errTooDeep)
	}
	for _, l := range lines {
		if err := ex.line(name, l, sessionOnly, level, depth); err != nil {
			return err
		}
	}
	return nil
}

func (ex *expander) line(file string, l Line, sessionOnly bool, level, depth int) error {
	e := Entry{File: file, Line: l.Num, Text: strings.TrimSpace(l.Text), Level: level, Control: l.Control,
		Module: l.Module, Args: l.Args}
	switch l.Type {
	case "":
		return nil
	case "@include":
		// Debian's @include: the file's lines of the requested type, at
		// this level, with no handler of its own.
		if err := ex.include(l.Module, sessionOnly, level, depth); err != nil {
			if !sessionOnly || errors.Is(err, errTooDeep) {
				return fmt.Errorf("%s line %d: %q: %v: libpam rejects the whole service", file, l.Num, e.Text, err)
			}
			e.Kind, e.Actions, e.Why = MustFail, allBadActions(), err.Error()
			ex.out = append(ex.out, e)
		}
		return nil
	case "session":
	case "auth", "account", "password":
		return nil
	default:
		// An unknown type: in a service file libpam files the line under
		// auth; in an included file under the type requested, so it
		// becomes a session handler that always fails.
		if !sessionOnly {
			return nil
		}
		e.Kind, e.Why = MustFail, fmt.Sprintf("unknown type %q", l.Type)
		e.Actions, _ = ParseControl(l.Control)
		ex.out = append(ex.out, e)
		return nil
	}

	if l.IsInclude() {
		sub := 0
		if l.IsSubstack() {
			if level+1 >= maxSubstackLevel {
				e.Kind, e.Actions, e.Why = MustFail, allBadActions(), "substacks nested too deep"
				ex.out = append(ex.out, e)
				return nil
			}
			start := e
			start.Kind, start.Actions = SubstackStart, allBadActions()
			ex.out = append(ex.out, start)
			sub = 1
		}
		if err := ex.include(l.Module, true, level+sub, depth); err != nil {
			if errors.Is(err, errTooDeep) {
				return err
			}
			e.Kind, e.Actions, e.Why = MustFail, allBadActions(), err.Error()
			ex.out = append(ex.out, e)
		}
		return nil
	}

	as, ok := ParseControl(l.Control)
	switch {
	case !ok:
		e.Kind, e.Actions, e.Why = MustFail, allBadActions(), "no control"
	case l.Module == "":
		e.Kind, e.Actions, e.Why = MustFail, as, "no module"
	default:
		e.Kind, e.Actions = Module, as
	}
	ex.out = append(ex.out, e)
	return nil
}

// include adds the session lines of an included file. On an error the
// lines read before it stay, as in libpam, and the caller adds the failing
// handler.
func (ex *expander) include(name string, sessionOnly bool, level, depth int) error {
	if name == "" {
		return errors.New("no file named")
	}
	data, err := ex.r.Read(name)
	if err != nil {
		return fmt.Errorf("cannot read included file %q: %w", name, err)
	}
	lines, complete := Parse(data)
	if err := ex.file(name, lines, sessionOnly, level, depth+1); err != nil {
		return err // only errTooDeep
	}
	if !complete {
		return incompleteError(name)
	}
	return nil
}

func allBadActions() Actions {
	var as Actions
	allBad(&as)
	return as
}

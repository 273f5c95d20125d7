package pamstack

import (
	"fmt"
	"strconv"
	"strings"
)

// Invalid stands for a return value outside 0..NumReturns-1, which libpam
// turns into PAM_PERM_DENIED with the action bad.
const Invalid = -1

// Step is one handler the dispatcher ran.
type Step struct {
	Entry  int    // index in Stack.Entries
	Return int    // what it returned (Invalid: out of range)
	Action Action // what libpam did with it
}

// Run is one way the stack can run.
type Run struct {
	Steps  []Step
	Result int // what pam_open_session returns
}

// Finding is a run in which the target is skipped or its error is lost.
type Finding struct {
	Run     Run
	Culprit int    // index of the entry that causes it
	Reason  string // what happens, in a sentence, naming files and lines
}

// Report answers, for one target module, every way the stack can end:
// what libpam does when each other module returns any value (a module that
// is missing returns PAM_MODULE_UNKNOWN, which is one of them).
type Report struct {
	// Targets are the indexes of the entries that call the target.
	Targets []int
	// SkippedOpen: pam_open_session returns PAM_SUCCESS without running
	// the target.
	SkippedOpen *Finding
	// ErrorIgnored: the target returns an error (anything but PAM_SUCCESS
	// or PAM_IGNORE) and pam_open_session still returns PAM_SUCCESS.
	ErrorIgnored *Finding
	// SkippedRefused: a jump can pass over the target, and the session is
	// then refused. Not a hole, but a stack that refuses sessions whenever
	// that jump is taken (a requisite or die before the target that
	// refuses the session is not reported: that is what it is for).
	SkippedRefused *Finding
}

// FailsOpen reports whether a session can open without the target's
// consent.
func (r Report) FailsOpen() bool { return r.SkippedOpen != nil || r.ErrorIgnored != nil }

// impression is the dispatcher's running verdict (_PAM_UNDEF, _POSITIVE,
// _NEGATIVE).
type impression int8

const (
	undef impression = iota
	positive
	negative
)

// verdict is an impression with its status, as libpam keeps them for the
// stack and for each substack level (struct _pam_substack_state).
type verdict struct {
	imp    impression
	status int
}

// state is everything the dispatcher's loop carries from one handler to the
// next, plus what the target did.
type state struct {
	next      int // the entry to run next
	cur       verdict
	prevLevel int
	levels    [maxSubstackLevel]verdict
	ran       bool // a target ran
	failed    bool // a target returned an error
	jumped    bool // a jump passed over a target
}

// key identifies a state for the search; substack states above prevLevel
// are overwritten before they are read.
func (s *state) key() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %d %d %d %t %t %t", s.next, s.cur.imp, s.cur.status, s.prevLevel, s.ran, s.failed, s.jumped)
	for i := 0; i <= s.prevLevel && i < maxSubstackLevel; i++ {
		fmt.Fprintf(&b, " %d:%d", s.levels[i].imp, s.levels[i].status)
	}
	return b.String()
}

// Analyze explores every run of the stack, as _pam_dispatch_aux runs
// pam_open_session, in which the entries for which isTarget is true return
// any value and every other module returns any value, and reports the
// runs in which the target is skipped or its error lost.
func Analyze(s *Stack, isTarget func(Entry) bool) Report {
	a := analyzer{s: s, isTarget: isTarget, seen: map[string]bool{}}
	for i, e := range s.Entries {
		if e.Kind == Module && isTarget(e) {
			a.rep.Targets = append(a.rep.Targets, i)
		}
	}
	if len(s.Entries) == 0 {
		return a.rep // libpam: "no modules loaded", PAM_PERM_DENIED
	}
	st := state{cur: verdict{undef, PermDenied}}
	st.levels[0] = st.cur
	a.walk(st)
	return a.rep
}

// Simulate runs the stack once as libpam runs pam_open_session, with the
// value each module entry returns given by ret (its index in Entries), and
// returns what pam_open_session returns.
func Simulate(s *Stack, ret func(entry int) int) int {
	if len(s.Entries) == 0 {
		return PermDenied
	}
	a := analyzer{s: s, isTarget: func(Entry) bool { return false }}
	st := state{cur: verdict{undef, PermDenied}}
	st.levels[0] = st.cur
	for st.next < len(s.Entries) {
		e := s.Entries[st.next]
		if st.prevLevel < e.Level {
			st.levels[e.Level] = st.cur
		}
		retval, action := PermDenied, ActBad
		switch e.Kind {
		case SubstackStart:
			st.prevLevel, st.next = e.Level, st.next+1
			continue
		case MustFail:
			action = e.Actions[PermDenied]
		default:
			if v := ret(st.next); v == Incomplete {
				return Incomplete
			} else if v >= 0 && v < NumReturns {
				retval, action = v, e.Actions[v]
			}
		}
		a.step(&st, e.Level, retval, action)
	}
	if st.cur.status == Success && st.cur.imp != positive {
		return PermDenied
	}
	return st.cur.status
}

type analyzer struct {
	s        *Stack
	isTarget func(Entry) bool
	seen     map[string]bool
	steps    []Step
	rep      Report
}

// otherReturns is the order in which the search tries the values a
// module can return: success first, so that the example a report shows
// is the plain one.
var otherReturns, targetReturns []int

func init() {
	otherReturns = append(otherReturns, Success)
	targetReturns = append(targetReturns, SystemErr, SessionErr, Success, Ignore)
	for v := 1; v < NumReturns; v++ {
		otherReturns = append(otherReturns, v)
		if v != SystemErr && v != SessionErr && v != Ignore {
			targetReturns = append(targetReturns, v)
		}
	}
	otherReturns = append(otherReturns, Invalid)
}

func (a *analyzer) walk(st state) {
	if a.done() {
		return
	}
	k := st.key()
	if a.seen[k] {
		return
	}
	a.seen[k] = true
	if st.next >= len(a.s.Entries) {
		a.finish(st)
		return
	}
	e := a.s.Entries[st.next]
	level := e.Level
	if st.prevLevel < level {
		st.levels[level] = st.cur
	}
	var returns []int
	target := false
	switch {
	case e.Kind == SubstackStart:
		st.prevLevel, st.next = level, st.next+1
		a.walk(st)
		return
	case e.Kind == MustFail:
		returns = []int{PermDenied}
	case a.isTarget(e):
		returns, target = targetReturns, true
	default:
		returns = otherReturns
	}
	for _, ret := range returns {
		n := st
		if target {
			n.ran = true
			if ret != Success && ret != Ignore {
				n.failed = true
			}
		}
		if ret == Incomplete {
			// pam_open_session returns PAM_INCOMPLETE at once; the
			// application calls it again later to resume here.
			a.push(Step{st.next, ret, ActIgnore})
			a.finishWith(n, Incomplete)
			a.pop()
			continue
		}
		retval, action := ret, ActBad
		if ret == Invalid {
			retval = PermDenied
		} else {
			action = e.Actions[ret]
		}
		a.push(Step{st.next, ret, action})
		a.step(&n, level, retval, action)
		a.walk(n)
		a.pop()
	}
}

func (a *analyzer) push(s Step) { a.steps = append(a.steps, s) }
func (a *analyzer) pop()        { a.steps = a.steps[:len(a.steps)-1] }

// done reports whether every question has an example already.
func (a *analyzer) done() bool {
	return a.rep.SkippedOpen != nil && a.rep.ErrorIgnored != nil && a.rep.SkippedRefused != nil
}

// step applies one handler's action, as the switch in _pam_dispatch_aux
// does for pam_open_session (a chain that is being frozen, so the cached
// return value is this one).
func (a *analyzer) step(st *state, level, retval int, action Action) {
	entries := a.s.Entries
	h := st.next
	switch {
	case action == ActReset:
		st.cur = st.levels[level]
	case action == ActOK || action == ActDone:
		if st.cur.imp == undef || st.cur.imp == positive && st.cur.status == Success {
			st.cur = verdict{positive, retval}
		}
		if st.cur.imp == positive && action == ActDone {
			h = decide(entries, h, level)
		}
	case action == ActBad || action == ActDie:
		if st.cur.imp != negative {
			st.cur.imp, st.cur.status = negative, retval
			if retval == Ignore {
				st.cur.status = PermDenied
			}
		}
		if action == ActDie {
			h = decide(entries, h, level)
		}
	case action == ActIgnore:
	default:
		left := int(action)
		for h+1 < len(entries) && entries[h+1].Level >= level && left > 0 {
			h++
			for h+1 < len(entries) && entries[h+1].Level > level {
				h++
			}
			left--
		}
		if left > 0 { // "bad jump in stack"
			st.cur = verdict{negative, PermDenied}
		}
		for t := st.next + 1; t <= h; t++ {
			if a.isTargetEntry(t) {
				st.jumped = true
			}
		}
	}
	st.prevLevel, st.next = level, h+1
}

// decide is decision_made: skip the rest of this level (the whole stack at
// level 0, the rest of the substack inside one).
func decide(entries []Entry, h, level int) int {
	for h+1 < len(entries) && entries[h+1].Level >= level {
		h++
	}
	return h
}

func (a *analyzer) finish(st state) {
	result := st.cur.status
	if result == Success && st.cur.imp != positive {
		result = PermDenied // libpam's sanity check
	}
	a.finishWith(st, result)
}

func (a *analyzer) finishWith(st state, result int) {
	run := func() Run { return Run{Steps: append([]Step(nil), a.steps...), Result: result} }
	switch {
	case result == Success && !st.ran && a.rep.SkippedOpen == nil:
		f := a.explainSkip(run())
		a.rep.SkippedOpen = &f
	case result == Success && st.failed && a.rep.ErrorIgnored == nil:
		f := a.explainIgnored(run())
		a.rep.ErrorIgnored = &f
	case result != Success && !st.ran && st.jumped && a.rep.SkippedRefused == nil:
		f := a.explainSkip(run())
		a.rep.SkippedRefused = &f
	}
}

// explainSkip finds the step that passed over a target: a done or die that
// ended the stack (or a substack) before it, or a jump over it.
func (a *analyzer) explainSkip(r Run) Finding {
	f := Finding{Run: r, Culprit: -1}
	for i, s := range r.Steps {
		end := len(a.s.Entries)
		if i+1 < len(r.Steps) {
			end = r.Steps[i+1].Entry
		}
		for t := s.Entry + 1; t < end; t++ {
			if a.isTargetEntry(t) {
				f.Culprit = s.Entry
				f.Reason = a.describe(s, fmt.Sprintf("skips %s (%s)", a.targetName(t), a.s.Entries[t].Where()))
			}
		}
	}
	if f.Culprit < 0 {
		f.Reason = "the stack does not run the module"
		if len(a.rep.Targets) == 0 {
			f.Reason = "the module is not in the stack"
		}
	}
	return f
}

// explainIgnored finds why a target's error did not refuse the session:
// its own control, or a later reset.
func (a *analyzer) explainIgnored(r Run) Finding {
	f := Finding{Run: r, Culprit: -1}
	for i, s := range r.Steps {
		if !a.isTargetEntry(s.Entry) || s.Return == Success || s.Return == Ignore {
			continue
		}
		if s.Action != ActBad && s.Action != ActDie {
			f.Culprit = s.Entry
			f.Reason = a.describe(s, "lets the session open although the module failed")
			return f
		}
		for _, later := range r.Steps[i+1:] {
			if later.Action == ActReset {
				f.Culprit = later.Entry
				f.Reason = a.describe(later, fmt.Sprintf("which forgets that %s (%s) returned %s",
					a.targetName(s.Entry), a.s.Entries[s.Entry].Where(), ReturnName(s.Return)))
				return f
			}
		}
	}
	f.Reason = "the session opens although the module failed"
	// (not reached: an error is lost only through the module's own
	// control or a later reset)
	return f
}

func (a *analyzer) isTargetEntry(i int) bool {
	e := a.s.Entries[i]
	return e.Kind == Module && a.isTarget(e)
}

func (a *analyzer) targetName(i int) string { return baseName(a.s.Entries[i].Module) }

// describe says what one step did: `"session sufficient pam_permit.so"
// (su line 3) can return PAM_SUCCESS, for which "sufficient" means done
// (end the stack), which ...`.
func (a *analyzer) describe(s Step, what string) string {
	e := a.s.Entries[s.Entry]
	line := fmt.Sprintf("%q (%s)", e.Text, e.Where())
	if e.Kind == MustFail {
		line += ", which libpam cannot use (" + e.Why + "),"
	}
	act := s.Action.String()
	switch {
	case s.Action > 0:
		act = "jump over the next " + strconv.Itoa(int(s.Action))
	case s.Action == ActDone && e.Level > 0:
		act = "done (end the substack)"
	case s.Action == ActDone:
		act = "done (end the stack)"
	}
	return fmt.Sprintf("%s can return %s, for which %q means %s, which %s", line, ReturnName(s.Return), e.Control, act, what)
}

func baseName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

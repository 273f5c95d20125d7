package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/pamstack"
)

// debian12 loads the Debian 12 pam.d files in testdata/debian12 (copied
// from a system with login, util-linux, sudo and openssh-server installed),
// plus any extra files.
func debian12(t *testing.T, extra ...string) pamstack.Files {
	t.Helper()
	r := pamstack.Files{}
	if err := r.Load("testdata/debian12"); err != nil {
		t.Fatal(err)
	}
	if len(extra) > 0 {
		if err := r.Load("testdata/fixtures", extra...); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func TestParsePAM(t *testing.T) {
	r := debian12(t, "continued", "dash-session")
	lines := parsePAM([]byte(r["continued"]))
	if len(lines) != 3 {
		t.Fatalf("continued: %d logical lines, want 3", len(lines))
	}
	if l := lines[1]; l.Num != 3 || l.Module != "pam_succeed_if.so" || !reflect.DeepEqual(l.Args, []string{"quiet", "user", "ingroup", "nopasswdlogin"}) {
		t.Errorf("continued line: %+v", l)
	}
	lines = parsePAM([]byte(r["dash-session"]))
	if l := lines[3]; !l.Dash || l.Type != "session" || l.Module != "pam_systemd.so" {
		t.Errorf("-session line: %+v", l)
	}
	// sshd: comments after '#' are not arguments.
	for _, l := range parsePAM([]byte(r["sshd"])) {
		if l.Module == "pam_mail.so" && !reflect.DeepEqual(l.Args, []string{"standard", "noenv"}) {
			t.Errorf("pam_mail args %q", l.Args)
		}
	}
}

// lastSessionModule returns the last module of a service's session stack.
func lastSessionModule(t *testing.T, r Resolver, name string) pamstack.Entry {
	t.Helper()
	stack, err := pamstack.Load(r, name)
	if err != nil {
		t.Fatal(err)
	}
	if len(stack.Entries) == 0 {
		t.Fatalf("%s: empty session stack", name)
	}
	return stack.Entries[len(stack.Entries)-1]
}

// removeLines deletes the lines of b that contain any of the needles.
func removeLines(b []byte, needles ...string) string {
	var out []string
	for _, l := range strings.SplitAfter(string(b), "\n") {
		keep := true
		for _, n := range needles {
			if strings.Contains(l, n) {
				keep = false
			}
		}
		if keep {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

func TestEnableDebian12(t *testing.T) {
	for _, svc := range []string{"su", "sshd", "sudo", "sudo-i", "login", "runuser"} {
		t.Run(svc, func(t *testing.T) {
			r := debian12(t)
			orig := r[svc]
			res, err := enablePAM(r, svc, []byte(orig), []string{"exempt_groups=wheel"})
			if err != nil {
				t.Fatal(err)
			}
			if !res.changed {
				t.Fatal("not changed")
			}
			// Only the module line and its comment were added.
			if got := removeLines(res.out, moduleName, "# Added by pam-unshare", "# namespace. Keep this"); got != orig {
				t.Errorf("other lines changed:\n%s", unifiedDiff("a", "b", []byte(orig), []byte(got)))
			}
			if !strings.Contains(string(res.out), "\nsession required pam_unshare.so exempt_groups=wheel\n") {
				t.Errorf("module line missing:\n%s", res.out)
			}
			r[svc] = string(res.out)
			if e := lastSessionModule(t, r, svc); !isModuleEntry(e) || e.File != svc {
				t.Errorf("last session module is %v", e)
			}
			found, p, err := checkStack(r, svc)
			if err != nil || !found || len(p.after) > 0 || len(p.dups) > 0 {
				t.Errorf("checkStack: found=%v %+v %v", found, p, err)
			}

			// Enabling again changes nothing.
			again, err := enablePAM(r, svc, res.out, []string{"exempt_groups=wheel"})
			if err != nil || again.changed {
				t.Errorf("second enable: changed=%v err=%v", again.changed, err)
			}
			// Other options replace the line in place.
			other, err := enablePAM(r, svc, res.out, []string{"debug"})
			if err != nil || !other.changed || strings.Count(string(other.out), moduleName) != 1 ||
				!strings.Contains(string(other.out), "session required pam_unshare.so debug\n") {
				t.Errorf("enable with other options: err=%v\n%s", err, other.out)
			}
			// Disable restores the original byte for byte.
			dis, err := disablePAM(r, svc, res.out)
			if err != nil || !dis.changed || string(dis.out) != orig {
				t.Errorf("disable: changed=%v err=%v\n%s", dis.changed, err, unifiedDiff("orig", "disabled", []byte(orig), dis.out))
			}
		})
	}
}

func TestEnableSSHDBeforePasswordInclude(t *testing.T) {
	r := debian12(t)
	res, err := enablePAM(r, "sshd", []byte(r["sshd"]), nil)
	if err != nil {
		t.Fatal(err)
	}
	out := string(res.out)
	mod := strings.Index(out, "session required pam_unshare.so\n")
	selinux := strings.Index(out, "pam_selinux.so open")
	password := strings.Index(out, "@include common-password")
	if !(selinux < mod && mod < password) {
		t.Errorf("want the module after pam_selinux.so open and before @include common-password:\n%s", out)
	}
}

func TestEnableTrailingIncludes(t *testing.T) {
	r := debian12(t, "trailing-includes")
	_, err := enablePAM(r, "trailing-includes", []byte(r["trailing-includes"]), nil)
	if err == nil || !strings.Contains(err.Error(), `"@include site-session-extra"`) || !strings.Contains(err.Error(), "rejects the whole service") {
		t.Fatalf("want an error about the missing include, got %v", err)
	}
	// Once the included file exists, the module goes after it and before
	// the password include.
	r["site-session-extra"] = "session optional pam_mail.so\n"
	res, err := enablePAM(r, "trailing-includes", []byte(r["trailing-includes"]), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "@include site-session-extra\n" + markerComment + "\nsession required pam_unshare.so\n@include common-password\n"
	if !strings.HasSuffix(string(res.out), want) {
		t.Errorf("got:\n%s", res.out)
	}
	// A file whose includes add no session modules gets the line after its
	// last own session line.
	r["site-session-extra"] = "auth optional pam_permit.so\n"
	res, err = enablePAM(r, "trailing-includes", []byte(r["trailing-includes"]), nil)
	if err != nil {
		t.Fatal(err)
	}
	want = "@include common-session\n" + markerComment + "\nsession required pam_unshare.so\n@include site-session-extra\n"
	if !strings.Contains(string(res.out), want) {
		t.Errorf("got:\n%s", res.out)
	}
}

func TestEnableDashSession(t *testing.T) {
	r := debian12(t, "dash-session")
	res, err := enablePAM(r, "dash-session", []byte(r["dash-session"]), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "-session optional pam_systemd.so\n" + markerComment + "\nsession required pam_unshare.so\npassword include  common-password\n"
	if !strings.HasSuffix(string(res.out), want) {
		t.Errorf("got:\n%s", res.out)
	}
}

func TestEnableRefusesIncludedFiles(t *testing.T) {
	r := debian12(t)
	_, err := enablePAM(r, "common-session", []byte(r["common-session"]), nil)
	if err == nil || !strings.Contains(err.Error(), "runs more session modules after it: pam_motd.so (sshd line 33)") {
		t.Errorf("common-session: want a refusal naming sshd's modules, got %v", err)
	}
	_, err = enablePAM(r, "common-session-noninteractive", []byte(r["common-session-noninteractive"]), nil)
	if err == nil || !strings.Contains(err.Error(), "included by many services") {
		t.Errorf("common-session-noninteractive: want a refusal, got %v", err)
	}
}

func TestEnableTwiceThroughInclude(t *testing.T) {
	r := debian12(t)
	res, err := enablePAM(r, "su", []byte(r["su"]), nil)
	if err != nil {
		t.Fatal(err)
	}
	r["su"] = string(res.out)
	// su-l includes su: the module would run twice.
	if _, err := enablePAM(r, "su-l", []byte(r["su-l"]), nil); err == nil || !strings.Contains(err.Error(), "only once") {
		t.Errorf("su-l: want a refusal, got %v", err)
	}
	// And the other way round.
	r = debian12(t)
	r["su-l"] += "session required pam_unshare.so\n"
	if _, err := enablePAM(r, "su", []byte(r["su"]), nil); err == nil || !strings.Contains(err.Error(), "already runs pam_unshare.so") {
		t.Errorf("su: want a refusal, got %v", err)
	}
}

func TestEnableMovesMisplacedLine(t *testing.T) {
	r := debian12(t, "misplaced")
	res, err := enablePAM(r, "misplaced", []byte(r["misplaced"]), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.changed || strings.Count(string(res.out), moduleName) != 1 {
		t.Fatalf("got:\n%s", res.out)
	}
	r["misplaced"] = string(res.out)
	if e := lastSessionModule(t, r, "misplaced"); !isModuleEntry(e) {
		t.Errorf("last session module is %v", e)
	}
}

func TestEnableEmptyAndNoSession(t *testing.T) {
	r := pamstack.Files{"x": "auth required pam_permit.so\n", "empty": ""}
	res, err := enablePAM(r, "x", []byte(r["x"]), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "auth required pam_permit.so\n\n" + markerComment + "\nsession required pam_unshare.so\n"
	if string(res.out) != want {
		t.Errorf("got %q", res.out)
	}
	res, err = enablePAM(r, "empty", nil, nil)
	if err != nil || string(res.out) != markerComment+"\nsession required pam_unshare.so\n" {
		t.Errorf("empty: %q %v", res.out, err)
	}
}

func TestEnableIncludeLoop(t *testing.T) {
	r := pamstack.Files{"a": "@include b\n", "b": "@include a\n"}
	if _, err := enablePAM(r, "a", []byte(r["a"]), nil); err == nil || !strings.Contains(err.Error(), "loop") {
		t.Errorf("want an include-loop error, got %v", err)
	}
}

func TestDisableKeepsForeignComments(t *testing.T) {
	r := pamstack.Files{}
	in := "session required pam_limits.so\n# my own comment\nsession required /lib/security/pam_unshare.so debug\n"
	res, err := disablePAM(r, "x", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if want := "session required pam_limits.so\n# my own comment\n"; string(res.out) != want {
		t.Errorf("got %q, want %q", res.out, want)
	}
	res, err = disablePAM(r, "x", res.out)
	if err != nil || res.changed || len(res.notes) == 0 {
		t.Errorf("second disable: %+v %v", res, err)
	}
}

func TestDisableNotesInclude(t *testing.T) {
	r := debian12(t)
	r["su"] += "session required pam_unshare.so\n"
	res, err := disablePAM(r, "su-l", []byte(r["su-l"]))
	if err != nil {
		t.Fatal(err)
	}
	if res.changed || !strings.Contains(strings.Join(res.notes, "\n"), "su-l still runs pam_unshare.so through an include: su line") {
		t.Errorf("notes: %q", res.notes)
	}
}

// The shapes of issue 9: enable refuses a stack in which libpam could skip
// the module, naming the line, and doctor fails on each.
func TestEnableRefusesSkippableStacks(t *testing.T) {
	for _, tc := range []struct{ name, file, culprit string }{
		{"sufficient", "session required pam_unix.so\nsession sufficient pam_permit.so\n", "x line 2"},
		{"done", "session required pam_unix.so\nsession [success=done default=ignore] pam_permit.so\n", "x line 2"},
		{"jump past the end", "session required pam_unix.so\nsession [success=1 default=ignore] pam_succeed_if.so quiet user ingroup admins\n", "x line 2"},
		{"jump past the end, nothing before", "session [success=1 default=ignore] pam_succeed_if.so quiet user ingroup admins\n", "x line 1"},
		{"sufficient in an included file", "session include inc\n", "inc line 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := pamstack.Files{"x": tc.file, "inc": "session sufficient pam_permit.so\n"}
			_, err := enablePAM(r, "x", []byte(tc.file), nil)
			if err == nil || !strings.Contains(err.Error(), "("+tc.culprit+") can return") {
				t.Errorf("want a refusal naming %s, got %v", tc.culprit, err)
			}
			// The same stack with the module already at its end: doctor.
			r["x"] += "session required pam_unshare.so\n"
			c := stackCheck(mustStack(t, r, "x"), nil, "")
			if c.Status != statusFail || !strings.Contains(strings.Join(c.Details, "\n"), "("+tc.culprit+") can return") {
				t.Errorf("doctor: %+v", c)
			}
		})
	}
	// A jump that lands inside the stack is fine.
	r := pamstack.Files{"ok": "session [success=1 default=ignore] pam_succeed_if.so quiet\nsession required pam_limits.so\nsession required pam_env.so\n"}
	if _, err := enablePAM(r, "ok", []byte(r["ok"]), nil); err != nil {
		t.Error(err)
	}
	r["ok"] += "session required pam_unshare.so\n"
	if c := stackCheck(mustStack(t, r, "ok"), nil, ""); c.Status != statusOK {
		t.Errorf("%+v", c)
	}
}

// enable replaces an optional or [default=ignore] module line with a
// required one; doctor fails on them.
func TestEnableFixesModuleControl(t *testing.T) {
	for _, control := range []string{"optional", "[default=ignore]", "sufficient"} {
		in := "session required pam_unix.so\nsession " + control + " pam_unshare.so\n"
		r := pamstack.Files{"x": in}
		c := stackCheck(mustStack(t, r, "x"), nil, "")
		if c.Status != statusFail || !strings.Contains(strings.Join(c.Details, "\n"), "(x line 2) can return") {
			t.Errorf("%s: doctor: %+v", control, c)
		}
		res, err := enablePAM(r, "x", []byte(in), nil)
		if err != nil || !strings.HasSuffix(string(res.out), "\nsession required pam_unshare.so\n") {
			t.Errorf("%s: enable: %v\n%s", control, err, res.out)
		}
	}
}

func mustStack(t *testing.T, r Resolver, name string) stackProblem {
	t.Helper()
	found, p, err := checkStack(r, name)
	if err != nil || !found {
		t.Fatalf("%s: found=%v err=%v", name, found, err)
	}
	return p
}

package pamstack

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// debian12 is the pam.d of a Debian 12 system with login, util-linux, sudo
// and openssh-server installed.
func debian12(t *testing.T) Files {
	t.Helper()
	f := Files{}
	if err := f.Load("../testdata/debian12"); err != nil {
		t.Fatal(err)
	}
	return f
}

func isUnshare(e Entry) bool { return baseName(e.Module) == "pam_unshare.so" }

const mod = "session required pam_unshare.so\n"

func TestAnalyze(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files Files // service "s"
		// Culprit lines ("file:line") of each finding, "" for none.
		skippedOpen, errorIgnored, skippedRefused string
	}{
		// The four shapes of issue 9, and their fixed forms.
		{name: "optional", files: Files{"s": "session required pam_unix.so\nsession optional pam_unshare.so\n"},
			errorIgnored: "s:2"},
		{name: "sufficient before", files: Files{"s": "session sufficient pam_permit.so\n" + mod},
			skippedOpen: "s:1"},
		{name: "done before", files: Files{"s": "session [success=done default=ignore] pam_permit.so\n" + mod},
			skippedOpen: "s:1"},
		{name: "default=ignore on the module", files: Files{"s": "session required pam_unix.so\nsession [default=ignore] pam_unshare.so\n"},
			errorIgnored: "s:2"},
		{name: "required, last", files: Files{"s": "session required pam_unix.so\nsession optional pam_systemd.so\n" + mod}},
		{name: "requisite", files: Files{"s": "session required pam_unix.so\nsession requisite pam_unshare.so\n"}},
		{name: "bracketed required", files: Files{"s": "session optional pam_permit.so\nsession [success=ok ignore=ignore default=bad] pam_unshare.so\n"}},
		{name: "die on everything but success", files: Files{"s": "session optional pam_permit.so\nsession [success=ok ignore=ignore default=die] pam_unshare.so\n"}},
		{name: "only system_err is bad", files: Files{"s": "session optional pam_permit.so\nsession [success=ok system_err=bad default=ignore] pam_unshare.so\n"},
			errorIgnored: "s:2"},
		{name: "keyword in brackets", files: Files{"s": "session optional pam_permit.so\nsession [optional] pam_unshare.so\n"},
			errorIgnored: "s:2"},
		{name: "misspelt control is all bad", files: Files{"s": "session optinal pam_permit.so\n" + mod}},
		// done on an error makes the error the stack's result.
		{name: "error with done", files: Files{"s": "session optional pam_permit.so\nsession [success=ok default=done] pam_unshare.so\n"}},

		// Jumps.
		{name: "jump over the module", files: Files{"s": "session required pam_unix.so\nsession [success=1 default=ignore] pam_succeed_if.so user ingroup admins\n" + mod},
			skippedOpen: "s:2", skippedRefused: "s:2"},
		{name: "jump past the end, nothing succeeded before", files: Files{"s": "session [success=1 default=ignore] pam_succeed_if.so quiet\n" + mod},
			skippedRefused: "s:1"},
		{name: "jump that lands on the module", files: Files{"s": "session [success=1 default=ignore] pam_succeed_if.so quiet\nsession required pam_limits.so\n" + mod}},
		{name: "jump too far is a bad jump", files: Files{"s": "session required pam_unix.so\nsession [success=5 default=ignore] pam_permit.so\n" + mod},
			skippedRefused: "s:2"},
		{name: "debian default=1 dance", files: Files{"s": "session [default=1] pam_permit.so\nsession requisite pam_deny.so\nsession required pam_permit.so\n" + mod}},

		// Later lines.
		{name: "reset after the module", files: Files{"s": mod + "session [default=reset] pam_permit.so\nsession required pam_permit.so\n"},
			errorIgnored: "s:2"},
		{name: "sufficient after the module", files: Files{"s": "session optional pam_permit.so\n" + mod + "session sufficient pam_permit.so\n"}},

		// include splices, substack scopes.
		{name: "sufficient in an included file", files: Files{"s": "session include inc\n" + mod, "inc": "session sufficient pam_permit.so\n"},
			skippedOpen: "inc:1"},
		{name: "done in an @included file", files: Files{"s": "@include inc\n" + mod, "inc": "session [success=done default=ignore] pam_permit.so\n"},
			skippedOpen: "inc:1"},
		{name: "sufficient in a substack ends only the substack", files: Files{"s": "session substack inc\n" + mod, "inc": "session sufficient pam_permit.so\nsession required pam_limits.so\n"}},
		{name: "jump out of a substack is a bad jump", files: Files{"s": "session required pam_unix.so\nsession substack inc\n" + mod, "inc": "session [success=1 default=ignore] pam_permit.so\n"}},
		{name: "jump over a substack counts it as one", files: Files{"s": "session required pam_unix.so\nsession [success=1 default=ignore] pam_permit.so\nsession substack inc\n" + mod,
			"inc": "session required pam_limits.so\nsession required pam_env.so\n"}},
		{name: "jump of 2 over a substack reaches the module", files: Files{"s": "session required pam_unix.so\nsession [success=2 default=ignore] pam_permit.so\nsession substack inc\n" + mod,
			"inc": "session required pam_limits.so\nsession required pam_env.so\n"},
			skippedOpen: "s:2", skippedRefused: "s:2"},
		{name: "module in a substack, optional inside", files: Files{"s": "session required pam_unix.so\nsession substack inc\n", "inc": "session optional pam_unshare.so\n"},
			errorIgnored: "inc:1"},
		{name: "module in a substack, done before it inside", files: Files{"s": "session required pam_unix.so\nsession substack inc\n", "inc": "session sufficient pam_permit.so\n" + mod},
			skippedOpen: "inc:1"},
		{name: "reset inside a substack keeps the outer verdict", files: Files{"s": mod + "session substack inc\n", "inc": "session [default=reset] pam_permit.so\nsession required pam_permit.so\n"}},
		{name: "reset at the top after a substack", files: Files{"s": "session substack inc\nsession [default=reset] pam_permit.so\nsession required pam_permit.so\n", "inc": mod},
			errorIgnored: "s:2"},

		// Broken lines and missing files.
		{name: "include of a missing file fails", files: Files{"s": "session sufficient pam_permit.so\nsession include nothere\n" + mod},
			skippedOpen: "s:1"},
		{name: "missing include alone", files: Files{"s": "session include nothere\n" + mod}},
		{name: "-session of the module is still required", files: Files{"s": "session optional pam_permit.so\n-session required pam_unshare.so\n"}},
		{name: "no session lines: other", files: Files{"s": "auth required pam_permit.so\n", "other": "session optional pam_permit.so\nsession optional pam_unshare.so\n"},
			errorIgnored: "other:2"},
		{name: "not enabled", files: Files{"s": "session required pam_unix.so\n"},
			skippedOpen: "-"},
		{name: "reset before the module", files: Files{"s": "session required pam_unix.so\nsession [default=reset] pam_permit.so\n" + mod}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Load(tc.files, "s")
			if err != nil {
				t.Fatal(err)
			}
			rep := Analyze(s, isUnshare)
			check := func(what string, f *Finding, want string) {
				t.Helper()
				got := ""
				if f != nil {
					got = "-"
					if f.Culprit >= 0 {
						e := s.Entries[f.Culprit]
						got = fmt.Sprintf("%s:%d", e.File, e.Line)
					}
				}
				if got != want {
					reason := ""
					if f != nil {
						reason = f.Reason
					}
					t.Errorf("%s: culprit %q, want %q (%s)", what, got, want, reason)
				}
			}
			check("skipped open", rep.SkippedOpen, tc.skippedOpen)
			check("error ignored", rep.ErrorIgnored, tc.errorIgnored)
			check("skipped refused", rep.SkippedRefused, tc.skippedRefused)
			if (tc.skippedOpen != "" || tc.errorIgnored != "") != rep.FailsOpen() {
				t.Errorf("FailsOpen() = %v", rep.FailsOpen())
			}
		})
	}
}

// The Debian 12 services with the module as their last line are safe; with
// "optional" they are not; a "sufficient" line added to common-session
// makes every service that includes it skip the module.
func TestAnalyzeDebian12(t *testing.T) {
	for _, svc := range []string{"su", "su-l", "sudo", "sudo-i", "sshd", "login", "runuser", "runuser-l"} {
		t.Run(svc, func(t *testing.T) {
			f := debian12(t)
			f[svc] += mod
			if rep := analyze(t, f, svc); rep.FailsOpen() || rep.SkippedRefused != nil || len(rep.Targets) != 1 {
				t.Errorf("required: %+v", rep)
			}
			f = debian12(t)
			f[svc] += "session optional pam_unshare.so\n"
			if rep := analyze(t, f, svc); rep.ErrorIgnored == nil || !strings.Contains(rep.ErrorIgnored.Reason, "PAM_SYSTEM_ERR") {
				t.Errorf("optional: %+v", rep)
			}
			if strings.HasPrefix(svc, "runuser") {
				return // runuser does not include common-session
			}
			f = debian12(t)
			f[svc] += mod
			f["common-session"] = strings.Replace(f["common-session"], "session\trequired\tpam_unix.so",
				"session\tsufficient\tpam_unix.so", 1)
			f["common-session-noninteractive"] = strings.Replace(f["common-session-noninteractive"], "session\trequired\tpam_unix.so",
				"session\tsufficient\tpam_unix.so", 1)
			rep := analyze(t, f, svc)
			if rep.SkippedOpen == nil || !strings.Contains(rep.SkippedOpen.Reason, "pam_unix.so\" (common-session") {
				t.Errorf("sufficient in common-session: %+v", rep)
			}
		})
	}
}

func analyze(t *testing.T, f Files, svc string) Report {
	t.Helper()
	s, err := Load(f, svc)
	if err != nil {
		t.Fatal(err)
	}
	return Analyze(s, isUnshare)
}

func TestReasonNamesLineAndValue(t *testing.T) {
	rep := analyze(t, Files{"s": "session sufficient pam_permit.so\n" + mod}, "s")
	want := `"session sufficient pam_permit.so" (s line 1) can return PAM_SUCCESS, for which "sufficient" means done (end the stack), which skips pam_unshare.so (s line 2)`
	if rep.SkippedOpen == nil || rep.SkippedOpen.Reason != want {
		t.Errorf("got %+v\nwant %s", rep.SkippedOpen, want)
	}
	rep = analyze(t, Files{"s": "session optional pam_permit.so\nsession optional pam_unshare.so\n"}, "s")
	want = `"session optional pam_unshare.so" (s line 2) can return PAM_SYSTEM_ERR, for which "optional" means ignore, which lets the session open although the module failed`
	if rep.ErrorIgnored == nil || rep.ErrorIgnored.Reason != want {
		t.Errorf("got %+v\nwant %s", rep.ErrorIgnored, want)
	}
}

func TestLoadDebian12SSHD(t *testing.T) {
	s, err := Load(debian12(t), "sshd")
	if err != nil {
		t.Fatal(err)
	}
	var mods []string
	for _, e := range s.Entries {
		mods = append(mods, baseName(e.Module))
	}
	want := "pam_selinux.so pam_loginuid.so pam_keyinit.so pam_permit.so pam_deny.so pam_permit.so pam_unix.so pam_systemd.so " +
		"pam_motd.so pam_motd.so pam_mail.so pam_limits.so pam_env.so pam_env.so pam_selinux.so"
	if got := strings.Join(mods, " "); got != want {
		t.Errorf("sshd session stack:\n got %s\nwant %s", got, want)
	}
}

func TestLoadErrors(t *testing.T) {
	for name, f := range map[string]Files{
		"missing @include":  {"s": "@include nothere\n"},
		"include loop":      {"s": "@include a\n", "a": "@include s\n"},
		"dangling continue": {"s": "session required pam_unix.so \\\n"},
		"no service":        {},
	} {
		if _, err := Load(f, "s"); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// A missing included file in a "session include" is a handler that
	// fails, not an error.
	s, err := Load(Files{"s": "session include nothere\n"}, "s")
	if err != nil || len(s.Entries) != 1 || s.Entries[0].Kind != MustFail {
		t.Errorf("%+v %v", s, err)
	}
}

func TestParse(t *testing.T) {
	in := "# comment\n" +
		"session [success=1 default=ignore] pam_succeed_if.so \\\n" +
		"\n" +
		"   quiet user ingroup x  # trailing\n" +
		"-Session optional pam_systemd.so\n" +
		"session optional pam_x.so [a b\\] c] d\n" +
		"@include common-session\n"
	lines, complete := Parse([]byte(in))
	if !complete || len(lines) != 5 {
		t.Fatalf("%d lines, complete=%v: %+v", len(lines), complete, lines)
	}
	if l := lines[1]; l.Num != 2 || l.Control != "[success=1 default=ignore]" || l.Module != "pam_succeed_if.so" ||
		!reflect.DeepEqual(l.Args, []string{"quiet", "user", "ingroup", "x"}) || strings.Count(l.Text, "\n") != 2 {
		t.Errorf("continued: %+v", l)
	}
	if l := lines[2]; !l.Dash || l.Type != "session" || l.Module != "pam_systemd.so" {
		t.Errorf("-Session: %+v", l)
	}
	if l := lines[3]; !reflect.DeepEqual(l.Args, []string{`[a b\] c]`, "d"}) {
		t.Errorf("bracketed argument: %q", l.Args)
	}
	if l := lines[4]; l.Type != "@include" || l.Module != "common-session" || !l.IsInclude() {
		t.Errorf("@include: %+v", l)
	}
	// A backslash before a '#' does not continue the line.
	if lines, _ := Parse([]byte("session required a.so \\ # x\nsession required b.so\n")); len(lines) != 2 || lines[0].Args[0] != `\` {
		t.Errorf("%+v", lines)
	}
}

func TestParseControl(t *testing.T) {
	for _, tc := range []struct {
		control string
		want    map[int]Action // values not listed must be def
		def     Action
	}{
		{"required", map[int]Action{Success: ActOK, NewAuthtok: ActOK, Ignore: ActIgnore}, ActBad},
		{"Requisite", map[int]Action{Success: ActOK, NewAuthtok: ActOK, Ignore: ActIgnore}, ActDie},
		{"sufficient", map[int]Action{Success: ActDone, NewAuthtok: ActDone}, ActIgnore},
		{"optional", map[int]Action{Success: ActOK, NewAuthtok: ActOK}, ActIgnore},
		{"[success=ok new_authtok_reqd=ok ignore=ignore default=bad]", map[int]Action{Success: ActOK, NewAuthtok: ActOK, Ignore: ActIgnore}, ActBad},
		{"[default=ignore success=2]", map[int]Action{Success: 2}, ActIgnore},
		{"[success=done]", map[int]Action{Success: ActDone}, ActBad},
		{"[default=die default=ok]", nil, ActDie},
		{"[system_err=reset]", map[int]Action{SystemErr: ActReset}, ActBad},
		{"[success=0]", nil, ActBad},
		{"[sucess=ok default=ignore]", nil, ActBad},
		{"[success=okay]", nil, ActBad},
		{"[success = ok default = ignore]", map[int]Action{Success: ActOK}, ActIgnore},
		{"[authtok_recover_err=1 default=ignore]", map[int]Action{21: 1}, ActIgnore},
	} {
		as, _ := ParseControl(tc.control)
		for v := 0; v < NumReturns; v++ {
			want, ok := tc.want[v]
			if !ok {
				want = tc.def
			}
			if as[v] != want {
				t.Errorf("%s: %s -> %v, want %v", tc.control, returnNames[v], as[v], want)
			}
		}
	}
}

// TestAgainstLibpam checks the model against the real libpam: random
// stacks of pam_debug.so lines, each returning a chosen value, with random
// controls, includes and substacks, run by build/pamhost (pam_start_confdir
// with the files in a temporary directory). What pam_open_session returns
// must be what Simulate says.
func TestAgainstLibpam(t *testing.T) {
	host, err := filepath.Abs("../../../build/pamhost")
	if err == nil {
		_, err = os.Stat(host)
	}
	if err != nil {
		t.Skip("build/pamhost is not built (make build)")
	}
	if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/security/pam_debug.so"); err != nil {
		if _, err := os.Stat("/lib/security/pam_debug.so"); err != nil {
			t.Skip("pam_debug.so is not installed")
		}
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(9, 1))
	values := []int{Success, Success, Success, Ignore, SessionErr, SystemErr, PermDenied, NewAuthtok, 28, 26}
	controls := []string{"required", "requisite", "sufficient", "optional", "include", "substack",
		"[success=ok default=ignore]", "[success=done default=ignore]", "[default=1]", "[success=2 default=ignore]",
		"[success=ok ignore=ignore default=die]", "[default=reset]", "[success=1 new_authtok_reqd=done default=bad]",
		"[session_err=ignore success=ok default=bad]", "[ignore=ok default=ignore]", "[success=done ignore=reset default=1]"}
	dir := t.TempDir()
	names := map[int]string{} // return value -> pam_debug's name for it
	for v, n := range returnNames[:NumReturns] {
		names[v] = n
	}
	for round := 0; round < 300; round++ {
		files := Files{}
		inc := 0
		var gen func(name string, n, depth int)
		gen = func(name string, n, depth int) {
			var b strings.Builder
			for i := 0; i < n; i++ {
				c := controls[rnd.IntN(len(controls))]
				if (c == "include" || c == "substack") && depth < 2 {
					inc++
					sub := fmt.Sprintf("inc%d", inc)
					gen(sub, 1+rnd.IntN(3), depth+1)
					fmt.Fprintf(&b, "session %s %s\n", c, filepath.Join(dir, sub))
					continue
				}
				if c == "include" || c == "substack" {
					c = "required"
				}
				v := values[rnd.IntN(len(values))]
				fmt.Fprintf(&b, "session %s pam_debug.so open_session=%s\n", c, names[v])
			}
			files[filepath.Join(dir, name)] = b.String()
			files[name] = b.String()
		}
		gen("svc", 1+rnd.IntN(5), 0)
		for name, text := range files {
			if filepath.IsAbs(name) {
				if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		s, err := Load(files, "svc")
		if err != nil {
			t.Fatal(err)
		}
		want := Simulate(s, func(i int) int {
			for _, a := range s.Entries[i].Args {
				if v, ok := strings.CutPrefix(a, "open_session="); ok {
					for r, n := range names {
						if n == v {
							return r
						}
					}
				}
			}
			return Invalid
		})
		out, _ := exec.Command(host, "-c", dir, "-s", "svc", "-u", u.Username, "-m", "nofork").CombinedOutput()
		if !strings.Contains(string(out), "open="+ReturnName(want)+" ") {
			var all strings.Builder
			for name, text := range files {
				if !filepath.IsAbs(name) {
					fmt.Fprintf(&all, "== %s\n%s", name, text)
				}
			}
			t.Fatalf("round %d: model says %s, libpam:\n%s\nstack:\n%s", round, ReturnName(want), out, all.String())
		}
	}
}

package main

import (
	"debug/elf"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/doctor"
	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/pamconf"
	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/pamstack"
)

func TestCheckPropagation(t *testing.T) {
	if c := checkPropagation(""); c.Status != statusWarn {
		t.Errorf("empty mountinfo: %+v", c)
	}
}

func findCheck(t *testing.T, checks []check, name string) check {
	t.Helper()
	for _, c := range checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in %+v", name, checks)
	return check{}
}

func TestCheckPamd(t *testing.T) {
	r := debian12(t, "sshd-enabled-wrong", "twice", "bad-options", "good")
	// Enable su properly: su and su-l (which includes su) are both fine.
	res, err := pamconf.Enable(r, "su", []byte(r["su"]), nil)
	if err != nil {
		t.Fatal(err)
	}
	r["su"] = string(res.Out)

	checks, helpers := checkPamd(r, "/etc/pam.d")
	if c := findCheck(t, checks, "service su"); c.Status != statusOK {
		t.Errorf("su: %+v", c)
	}
	if c := findCheck(t, checks, "service su-l"); c.Status != statusOK || !strings.Contains(c.Message, "(su line 62)") {
		t.Errorf("su-l: %+v", c)
	}
	c := findCheck(t, checks, "service sshd-enabled-wrong")
	if c.Status != statusFail || !strings.Contains(c.Message, "is not the last session module") ||
		!strings.Contains(strings.Join(c.Details, "\n"), "pam_unix.so (common-session line 23), pam_systemd.so (common-session line 24), pam_motd.so (sshd-enabled-wrong line 8)") {
		t.Errorf("sshd-enabled-wrong: %+v", c)
	}
	if !strings.Contains(strings.Join(c.Details, "\n"), "fix: pam-unshare enable --options 'exempt_groups=wheel' sshd-enabled-wrong") {
		t.Errorf("sshd-enabled-wrong fix: %+v", c.Details)
	}
	if c := findCheck(t, checks, "service twice"); c.Status != statusFail || !strings.Contains(strings.Join(c.Details, "\n"), "also at twice line 3") {
		t.Errorf("twice: %+v", c)
	}
	if c := findCheck(t, checks, "service bad-options"); c.Status != statusFail || !strings.Contains(c.Message, `bad module argument "grace=forever"`) {
		t.Errorf("bad-options: %+v", c)
	}
	if len(helpers) != 1 || helpers[0] != "/opt/pam_unshare/init" {
		t.Errorf("helpers %q", helpers)
	}
	for _, c := range checks {
		if c.Name == "service sshd" || c.Name == "service sudo" {
			t.Errorf("unexpected check for a service without the module: %+v", c)
		}
	}

	// Nothing enabled: one informative line.
	checks, _ = checkPamd(debian12(t), "/etc/pam.d")
	if len(checks) != 1 || checks[0].Status != statusOK || !strings.Contains(checks[0].Message, "no service") {
		t.Errorf("%+v", checks)
	}
}

func TestCheckELF(t *testing.T) {
	// Any Linux-PAM module exports the two session entry points.
	found, _ := filepath.Glob("/usr/lib*/*/security/pam_permit.so")
	more, _ := filepath.Glob("/lib*/security/pam_permit.so")
	if found = append(found, more...); len(found) == 0 {
		t.Skip("pam_permit.so not installed")
	}
	pamPermit := found[0]
	if msg := checkELFFile(t, pamPermit); msg != "" {
		t.Errorf("pam_permit.so: %s", msg)
	}
	// pam_rootok.so has authentication and account entry points only.
	if p := filepath.Join(filepath.Dir(pamPermit), "pam_rootok.so"); fileExists(p) {
		if msg := checkELFFile(t, p); !strings.Contains(msg, "does not export pam_sm_close_session and pam_sm_open_session") {
			t.Errorf("pam_rootok.so: %q", msg)
		}
	}
	// An executable is not a module.
	exe, _ := os.Executable()
	if f, err := elf.Open(exe); err == nil {
		defer f.Close()
		if msg := checkELF(f); msg == "" {
			t.Error("the test binary passed as a module")
		}
	}
	if c := checkModule(filepath.Join(t.TempDir(), "nothing.so")); c.Status != statusFail || c.Message != "missing" {
		t.Errorf("%+v", c)
	}
}

func TestCheckBuiltModule(t *testing.T) {
	path := "../../build/pam_unshare.so"
	if !fileExists(path) {
		t.Skip("build/pam_unshare.so not built (make build)")
	}
	if msg := checkELFFile(t, path); msg != "" {
		t.Error(msg)
	}
}

func TestCheckBuiltGoModule(t *testing.T) {
	path := "../../build/pam_unshare_go.so"
	if !fileExists(path) {
		t.Skip("build/pam_unshare_go.so not built (make build)")
	}
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if msg := checkELF(f, goModuleABI); msg != "" {
		t.Error(msg)
	}
	// The front module is not the Go library.
	if msg := checkELFFile(t, "../../build/pam_unshare.so"); msg != "" {
		t.Error(msg)
	} else if f2, err := elf.Open("../../build/pam_unshare.so"); err == nil {
		defer f2.Close()
		if msg := checkELF(f2, goModuleABI); !strings.Contains(msg, "does not export "+goModuleABI) {
			t.Errorf("front module as the Go library: %q", msg)
		}
	}
}

// TestBuiltExports pins the version scripts: the module pam.d names
// exports the two PAM entry points and nothing else, and the Go library
// adds only the interface check the module calls.
func TestBuiltExports(t *testing.T) {
	for path, want := range map[string][]string{
		"../../build/pam_unshare.so":    {"pam_sm_close_session", "pam_sm_open_session"},
		"../../build/pam_unshare_go.so": {"pam_sm_close_session", "pam_sm_open_session", goModuleABI},
	} {
		f, err := elf.Open(path)
		if err != nil {
			t.Skipf("%s not built (make build): %v", path, err)
		}
		syms, err := f.DynamicSymbols()
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range syms {
			if s.Section != elf.SHN_UNDEF && elf.ST_BIND(s.Info) == elf.STB_GLOBAL {
				got = append(got, s.Name)
			}
		}
		sort.Strings(got)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s exports %v, want %v", path, got, want)
		}
	}
}

// checkELFFile opens path as ELF and returns what checkELF says of it.
func checkELFFile(t *testing.T, path string) string {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return checkELF(f)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func TestOwnership(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "helper")
	os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755)
	if os.Geteuid() == 0 {
		if msg := checkOwnership(p, true); msg != "" {
			t.Errorf("0755 root file: %s", msg)
		}
		if c := checkHelper(p); c.Status == statusFail {
			t.Errorf("%+v", c)
		}
	} else if msg := checkOwnership(p, true); !strings.Contains(msg, "must be owned by root") {
		t.Errorf("non-root file: %q", msg)
	}
	os.Chmod(p, 0o775)
	if msg := checkOwnership(p, true); msg == "" {
		t.Error("group-writable file passed")
	}
	os.Chmod(p, 0o644)
	if os.Geteuid() == 0 {
		if msg := checkOwnership(p, true); !strings.Contains(msg, "not executable") {
			t.Errorf("%q", msg)
		}
	}
	if msg := checkOwnership(dir, false); msg != "not a regular file" && !strings.Contains(msg, "owned") {
		t.Errorf("directory: %q", msg)
	}
	if c := checkHelper(filepath.Join(dir, "none")); c.Status != statusFail || !strings.Contains(c.Message, "missing") {
		t.Errorf("%+v", c)
	}
}

func TestCmdDoctor(t *testing.T) {
	dir := copyPamd(t)
	// A module that exists but is not one, so the report has a failure
	// whatever this machine has installed.
	code, out, errs := run("doctor", "--pamd", dir, "--module", "/etc/hostname", "--json")
	if code != 1 {
		t.Errorf("exit %d, want 1; stderr %s", code, errs)
	}
	var rep doctor.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.OK {
		t.Error("ok with a bad module")
	}
	c := findCheck(t, rep.Checks, "module /etc/hostname")
	if c.Status != statusFail {
		t.Errorf("%+v", c)
	}
	findCheck(t, rep.Checks, "propagation of /")
	findCheck(t, rep.Checks, "pidfd_open")
	findCheck(t, rep.Checks, userManagerCheck)

	code, out, _ = run("doctor", "--pamd", dir, "--module", "/etc/hostname")
	if code != 1 || !strings.Contains(out, "✗ module /etc/hostname: ") || !strings.Contains(out, "problem(s) found") {
		t.Errorf("exit %d:\n%s", code, out)
	}
	if code, _, _ := run("doctor", "extra"); code != 2 {
		t.Errorf("extra argument: exit %d", code)
	}
}

// doctor warns, and does not fail, for the services the module steps aside
// for.
func TestStackCheckSystemd(t *testing.T) {
	for service, want := range map[string]string{"systemd-user": statusWarn, "systemd-run0": statusWarn, "su": statusOK} {
		c := stackCheck(pamconf.StackProblem{Service: service, Entry: pamstack.Entry{File: service, Line: 3}}, nil, "")
		if c.Status != want || want == statusWarn && !strings.Contains(c.Message, "not isolated") {
			t.Errorf("%s: %+v, want %s", service, c, want)
		}
	}
}

// enable and the door checks decide by StackProblem.Sound; doctor's report
// on the same stack fails exactly when Sound is false.
func TestSoundAgreesWithDoctor(t *testing.T) {
	stacks := map[string]string{
		"last":        "session required pam_unix.so\nsession required pam_unshare.so\n",
		"sufficient":  "session sufficient pam_permit.so\nsession required pam_unshare.so\n",
		"done":        "session [success=done default=ignore] pam_permit.so\nsession required pam_unshare.so\n",
		"jump":        "session [success=1 default=ignore] pam_succeed_if.so quiet\nsession required pam_unshare.so\n",
		"inner jump":  "session [success=1 default=ignore] pam_succeed_if.so quiet\nsession required pam_limits.so\nsession required pam_unshare.so\n",
		"optional":    "session required pam_unix.so\nsession optional pam_unshare.so\n",
		"ignored":     "session required pam_unix.so\nsession [default=ignore] pam_unshare.so\n",
		"not last":    "session required pam_unshare.so\nsession required pam_unix.so\n",
		"twice":       "session required pam_unshare.so\nsession required pam_unshare.so\n",
		"via include": "session include inc\n",
	}
	sound := 0
	for name, file := range stacks {
		r := pamstack.Files{"x": file, "inc": "session required pam_unshare.so\n"}
		p := mustStack(t, r, "x")
		doctorOK := stackCheck(p, nil, "").Status != statusFail
		if p.Sound() != doctorOK {
			t.Errorf("%s: Sound %v, doctor passes %v", name, p.Sound(), doctorOK)
		}
		if doctorOK {
			sound++
		}
	}
	if sound != 3 {
		t.Errorf("%d sound stacks, want 3 (last, inner jump, via include)", sound)
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
			_, err := pamconf.Enable(r, "x", []byte(tc.file), nil)
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
	if _, err := pamconf.Enable(r, "ok", []byte(r["ok"]), nil); err != nil {
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
		res, err := pamconf.Enable(r, "x", []byte(in), nil)
		if err != nil || !strings.HasSuffix(string(res.Out), "\nsession required pam_unshare.so\n") {
			t.Errorf("%s: enable: %v\n%s", control, err, res.Out)
		}
	}
}

func mustStack(t *testing.T, r pamconf.Resolver, name string) pamconf.StackProblem {
	t.Helper()
	found, p, err := pamconf.CheckStack(r, name)
	if err != nil || !found {
		t.Fatalf("%s: found=%v err=%v", name, found, err)
	}
	return p
}

// debian12 loads the Debian 12 pam.d files in testdata/debian12, plus
// extra files from testdata/fixtures (as internal/pamconf's tests do).
func debian12(t *testing.T, extra ...string) pamstack.Files {
	t.Helper()
	r := pamstack.Files{}
	err := r.Load("testdata/debian12")
	if err == nil && len(extra) > 0 {
		err = r.Load("testdata/fixtures", extra...)
	}
	if err != nil {
		t.Fatal(err)
	}
	return r
}

package main

import (
	"os"
	"strings"
	"testing"
)

// TestMain lets doctor's probes, which run this program again with a hidden
// command, run the test binary instead.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case probeUnshareCmd, probeInsideCmd, "run":
			os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
		}
	}
	os.Exit(m.Run())
}

func TestUsage(t *testing.T) {
	code, _, errs := run()
	if code != 2 || !strings.Contains(errs, "Usage: pam-unshare COMMAND") {
		t.Errorf("no arguments: %d %q", code, errs)
	}
	code, _, errs = run("frobnicate")
	if code != 2 || !strings.HasPrefix(errs, `pam-unshare: unknown command "frobnicate"`) || !strings.Contains(errs, "Commands:") {
		t.Errorf("unknown command: %d %q", code, errs)
	}
	code, out, _ := run("--help")
	if code != 0 || !strings.Contains(out, "enable") || strings.Contains(out, "__probe") {
		t.Errorf("--help: %d %q", code, out)
	}
	for _, cmd := range []string{"enable", "disable", "doctor", "status", "run"} {
		for _, h := range []string{"--help", "-h"} {
			code, out, errs := run(cmd, h)
			if code != 0 || !strings.HasPrefix(out, "Usage: pam-unshare "+cmd+" ") || errs != "" {
				t.Errorf("%s %s: exit %d stdout %q stderr %q", cmd, h, code, out, errs)
			}
		}
	}
	// --help after other arguments still prints help.
	if code, out, _ := run("enable", "su", "--help"); code != 0 || !strings.Contains(out, "--dry-run") {
		t.Errorf("enable su --help: %d %q", code, out)
	}
}

func TestVersion(t *testing.T) {
	for _, a := range []string{"--version", "version"} {
		code, out, errs := run(a)
		if code != 0 || out != "pam-unshare "+version+"\n" || errs != "" {
			t.Errorf("%s: exit %d stdout %q stderr %q", a, code, out, errs)
		}
	}
}

func TestParseInterspersed(t *testing.T) {
	fs := newFlags("enable", os.Stderr)
	dry := fs.Bool("dry-run", false, "")
	pamd := fs.String("pamd", "", "")
	pos, err := parseInterspersed(fs, []string{"su", "--dry-run", "sshd", "--pamd", "/x", "--", "--odd"}, os.Stdout)
	if err != nil || !*dry || *pamd != "/x" || strings.Join(pos, " ") != "su sshd --odd" {
		t.Errorf("pos %q dry %v pamd %q err %v", pos, *dry, *pamd, err)
	}
}

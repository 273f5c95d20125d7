package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// What the packages' removal scripts see: the files that would break
// without the module, and nothing else.
func TestInUse(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"su":                 "auth sufficient pam_rootok.so\nsession required pam_unix.so\nsession required pam_unshare.so\n",
		"sshd":               "-session   optional /usr/lib/security/pam_unshare.so debug\n",
		"login":              "session required pam_unix.so\n# session required pam_unshare.so\n",
		"sudo":               "@include su\nauth required pam_unshare.so\n",
		"su.pam-unshare.bak": "session required pam_unshare.so\n",
		"sshd.dpkg-old":      "session required pam_unshare.so\n",
		"cron.rpmsave":       "session required pam_unshare.so\n",
	} {
		writeFile(t, filepath.Join(dir, name), text)
	}
	code, out, errs := run(inUseCmd, "--pamd", dir)
	want := "pam-unshare: pam_unshare.so is still enabled in:\n    " + filepath.Join(dir, "sshd") + "\n    " + filepath.Join(dir, "su") + "\n"
	if code != 1 || out != "" || !strings.HasPrefix(errs, want) || !strings.Contains(errs, `run "pam-unshare disable SERVICE..."`) {
		t.Errorf("in use: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if code, out, errs := run(inUseCmd, "--pamd", t.TempDir()); code != 0 || out != "" || errs != "" {
		t.Errorf("not in use: exit %d, %q, %q", code, out, errs)
	}
	if code, _, errs := run(inUseCmd, "--pamd", filepath.Join(dir, "missing")); code != 1 || !strings.Contains(errs, "no such file") {
		t.Errorf("unreadable pam.d: exit %d, %q", code, errs)
	}
}

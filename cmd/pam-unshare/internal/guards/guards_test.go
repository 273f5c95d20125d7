package guards

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// warnTo collects warnings as the command prints them, one a line.
func warnTo(b *strings.Builder) Warn {
	return func(msg string) { fmt.Fprintf(b, "pam-unshare: %s\n", msg) }
}

// dbus-daemon drops a whole policy file in which a rule names a member but
// no interface; each rule must also name the destination, so the file
// touches nothing but systemd's calls.
func TestDBusGuardRules(t *testing.T) {
	var doc struct {
		Policies []struct {
			Context string `xml:"context,attr"`
			User    string `xml:"user,attr"`
			Rules   []struct {
				XMLName   xml.Name
				Dest      string `xml:"send_destination,attr"`
				Interface string `xml:"send_interface,attr"`
				Member    string `xml:"send_member,attr"`
			} `xml:",any"`
		} `xml:"policy"`
	}
	d := xml.NewDecoder(strings.NewReader(dbusGuard()))
	d.Strict = true
	if err := d.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	denied := map[string]bool{}
	for _, p := range doc.Policies {
		for _, r := range p.Rules {
			if r.Dest != "org.freedesktop.systemd1" || r.Interface == "" || r.Member == "" {
				t.Errorf("rule %+v: needs destination, interface and member", r)
			}
			if r.XMLName.Local == "deny" {
				if p.Context != "default" {
					t.Errorf("deny outside the default context: %+v", p)
				}
				denied[r.Interface+"."+r.Member] = true
			} else if p.User != "root" {
				t.Errorf("allow for %q", p.User)
			}
		}
	}
	for _, m := range []string{"Manager.GetUnitProcesses", "Service.GetProcesses", "Scope.GetProcesses",
		"Slice.GetProcesses", "Socket.GetProcesses", "Mount.GetProcesses", "Swap.GetProcesses"} {
		if !denied["org.freedesktop.systemd1."+m] {
			t.Errorf("%s not denied", m)
		}
	}
}

// Install and Remove on a system tree other than this one
// write and delete the files, and leave the drop-in directory only while
// it holds something.
func TestGuardFiles(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"etc/systemd", "usr/share/dbus-1"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "usr/share/dbus-1/system.conf"), []byte("<busconfig/>"), 0o644)
	h := Host{Root: root}
	var out, errs strings.Builder
	if err := Install(h, &out, warnTo(&errs)); err != nil {
		t.Fatal(err, errs.String())
	}
	userManagerGuardPath, dbusGuardPath := Lookup(UserManager).Path, Lookup(DBus).Path
	um, err := os.ReadFile(filepath.Join(root, userManagerGuardPath))
	if err != nil || !strings.Contains(string(um), "\n[Service]\nProtectProc=invisible\n") {
		t.Errorf("%s %v", um, err)
	}
	if st, err := os.Stat(filepath.Join(root, dbusGuardPath)); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("%v %v", st, err)
	}
	if err := Remove(h, &out, warnTo(&errs)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{userManagerGuardPath, filepath.Dir(userManagerGuardPath), dbusGuardPath} {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			t.Errorf("%s left behind", p)
		}
	}

	// Without systemd or D-Bus, nothing is installed and each is named.
	bare := Host{Root: t.TempDir()}
	errs.Reset()
	if err := Install(bare, &out, warnTo(&errs)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errs.String(), "user-manager guard not installed: no /etc/systemd") ||
		!strings.Contains(errs.String(), "D-Bus guard not installed: no D-Bus") {
		t.Errorf("%s", errs.String())
	}
}

// Each guard is found by its name, and only by it.
func TestLookup(t *testing.T) {
	for _, g := range All() {
		if Lookup(g.Name).Path != g.Path {
			t.Errorf("%s: %s", g.Name, Lookup(g.Name).Path)
		}
	}
	if Lookup(UserManager).Path == Lookup(DBus).Path {
		t.Error("two guards share a path")
	}
	defer func() {
		if recover() == nil {
			t.Error("no panic for an unknown guard")
		}
	}()
	Lookup("no such guard")
}

package main

import (
	"os"
	"strings"
	"testing"

	"github.com/pam-unshare/pam-unshare/pam_unshare/options"
)

// The man pages document every module option and every command.
func TestManPages(t *testing.T) {
	module, err := os.ReadFile("../../doc/pam_unshare.8")
	if err != nil {
		t.Skip("doc/pam_unshare.8 not found:", err)
	}
	page := strings.ReplaceAll(string(module), `\-`, "-")
	opts := page[strings.Index(page, ".SH OPTIONS"):strings.Index(page, ".SH \"MODULE TYPES PROVIDED\"")]
	for _, o := range options.Known {
		name := o.Name
		if o.Value != "" {
			name += "="
		}
		if !strings.Contains(opts, "\n.TP\n.B "+name) && !strings.Contains(opts, "\n.TP\n.BI "+name) && !strings.Contains(opts, "\n.TP\n.BR "+name) {
			t.Errorf("pam_unshare.8: option %s is not an OPTIONS entry", name)
		}
	}
	for _, sec := range []string{"DESCRIPTION", "OPTIONS", `"MODULE TYPES PROVIDED"`, `"RETURN VALUES"`, "FILES", "EXAMPLES", `"SEE ALSO"`} {
		if !strings.Contains(page, "\n.SH "+sec+"\n") {
			t.Errorf("pam_unshare.8: no section %s", sec)
		}
	}
	for _, rc := range []string{"PAM_SUCCESS", "PAM_IGNORE", "PAM_SYSTEM_ERR", "PAM_USER_UNKNOWN", "PAM_SESSION_ERR"} {
		if !strings.Contains(page, "\n.B "+rc+"\n") {
			t.Errorf("pam_unshare.8: %s not listed", rc)
		}
	}

	cli, err := os.ReadFile("../../doc/pam-unshare.8")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range commands {
		if !c.hidden && !strings.Contains(string(cli), "\n.SS "+c.name) && !strings.Contains(string(cli), "\n.SS \""+c.name) {
			t.Errorf("pam-unshare.8: command %s has no section", c.name)
		}
	}
}

package doctor

import (
	"strings"
	"testing"

	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/result"
)

func TestSanitize(t *testing.T) {
	for in, want := range map[string]string{
		"plain ✓ text":                "plain ✓ text",
		"\x1b]0;owned\x07title":       `\x1b]0;owned\x07title`,
		"red \x1b[31mtext\x1b[0m":     `red \x1b[31mtext\x1b[0m`,
		"line\r\nnext":                `line\x0d\x0anext`,
		"tab\there":                   "tab here",
		"c1 \u009b2J csi":             `c1 \x9b2J csi`,
		"del\x7f":                     `del\x7f`,
		"bad \xff utf-8":              `bad \xff utf-8`,
		"rtl \u202etxt.exe":           `rtl \u202etxt.exe`,
		"":                            "",
		"only\x00nul":                 `only\x00nul`,
		"mixed é and \x1bc reset, 日本": `mixed é and \x1bc reset, 日本`,
	} {
		if got := sanitize(in); got != want {
			t.Errorf("sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSanitizeChecks(t *testing.T) {
	checks := []result.Check{{Name: "a\x1b", Message: "b\x07", Details: []string{"c\x1b[2J", "d"}}}
	sanitizeChecks(checks)
	var out strings.Builder
	Print(&out, checks, nil)
	for _, r := range out.String() {
		if r != '\n' && unsafeRune(r) {
			t.Fatalf("control character %q printed: %q", r, out.String())
		}
	}
	if !strings.Contains(out.String(), `c\x1b[2J`) {
		t.Errorf("printed: %q", out.String())
	}
}

package doctor

// doctor prints text that comes from elsewhere: what systemctl said (and
// through it a user's manager, or whatever a user planted at its socket),
// pam.d lines, file names, error messages. A user who controls any of it
// must not control root's terminal: escape sequences can rewrite what is
// on the screen, set the window title, or on some terminals answer back
// as input. sanitize is the one filter every check passes through before
// it is printed, as text or as JSON.

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/result"
)

// sanitize makes s safe to print on a terminal: each control character
// (C0, DEL, C1), each invisible format character that reorders text
// (bidirectional overrides and isolates) and each byte that is not UTF-8
// becomes a visible escape such as \x1b or \u202e. Tabs become a space.
func sanitize(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || unsafeRune(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\t':
			b.WriteByte(' ')
		case r < 0x100 && unsafeRune(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)
}

// sanitizeChecks applies sanitize to everything a check prints.
func sanitizeChecks(checks []result.Check) {
	for i := range checks {
		c := &checks[i]
		c.Name, c.Message = sanitize(c.Name), sanitize(c.Message)
		for j := range c.Details {
			c.Details[j] = sanitize(c.Details[j])
		}
	}
}

// sanitizeLive applies sanitize to what the whole-host check prints about
// live processes: their command lines, executables and units (a user
// names the cgroups below her own manager) are all hers to choose.
func sanitizeLive(live []result.LiveDoor) {
	for i := range live {
		d := &live[i]
		d.Group = sanitize(d.Group)
		d.Unit = sanitize(d.Unit)
		d.Example = sanitize(d.Example)
		d.Fix = sanitize(d.Fix)
		d.GuardUnit = sanitize(d.GuardUnit)
		for j := range d.Users {
			d.Users[j] = sanitize(d.Users[j])
		}
	}
}

// Package pamstack reads PAM service files and answers questions about the
// session stack libpam builds from them, exactly as Linux-PAM 1.5
// (libpam/pam_handlers.c and pam_dispatch.c, with Debian's @include patch)
// builds and runs it.
//
// It has one parser for pam.d files (Parse), one expansion of a service's
// session stack with include, substack, @include and the "other" fallback
// (Load), and one model of libpam's dispatcher (Analyze) that explores every
// way the stack can run when each module may return any value. pam-unshare's
// enable and doctor use it to find stacks in which pam_unshare.so can be
// skipped, or its error ignored, while the session still opens.
package pamstack

import "strings"

// Line is one logical line of a pam.d file as _pam_assemble_line reads it:
// physical lines joined where one ends with a backslash.
type Line struct {
	Num  int    // 1-based number of the first physical line
	Text string // the physical lines, newline-joined, without the final newline

	// Parsed fields; Type is "" for blank and comment-only lines.
	Type    string   // "session", "auth", "account", "password", "@include", or another word (an illegal type)
	Dash    bool     // "-session": libpam does not log a module that fails to load
	Control string   // "required", "include", or a bracketed control without its brackets' contents changed: "[default=1]"
	Module  string   // module path, or the included file for include, substack and @include lines
	Args    []string // module arguments
}

// IsInclude reports whether the line pulls in another file: "@include X",
// "TYPE include X" or "TYPE substack X".
func (l Line) IsInclude() bool {
	c := controlWord(l.Control)
	return l.Type == "@include" || strings.EqualFold(c, "include") || strings.EqualFold(c, "substack")
}

// IsSubstack reports whether the line is "TYPE substack X".
func (l Line) IsSubstack() bool {
	return l.Type != "@include" && strings.EqualFold(controlWord(l.Control), "substack")
}

// Parse splits a pam.d file into logical lines. complete is false when the
// file ends inside a continued line, which makes libpam reject the whole
// file. Lines that libpam cannot make sense of keep their text; Type tells
// what libpam does with them.
//
// As in _pam_assemble_line: a '#' anywhere starts a comment that ends the
// logical line, even after a backslash; a line that ends with a backslash
// (before trailing blanks) continues on the next line that is not blank or
// a comment, and those skipped lines belong to the logical line.
func Parse(data []byte) (lines []Line, complete bool) {
	phys := strings.Split(string(data), "\n")
	if len(phys) > 0 && phys[len(phys)-1] == "" {
		phys = phys[:len(phys)-1]
	}
	var cur *Line
	var joined strings.Builder
	for i, p := range phys {
		content := strings.TrimLeft(p, " \t")
		if cur == nil {
			lines = append(lines, Line{Num: i + 1, Text: p})
			cur = &lines[len(lines)-1]
			joined.Reset()
		} else {
			cur.Text += "\n" + p
		}
		if content == "" || content[0] == '#' {
			if joined.Len() == 0 {
				cur = nil // a blank or comment line on its own
			}
			continue
		}
		if j := strings.IndexByte(content, '#'); j >= 0 {
			joined.WriteString(content[:j])
		} else if c := strings.TrimRight(content, " \t"); strings.HasSuffix(c, "\\") {
			joined.WriteString(strings.TrimSuffix(c, "\\") + " ")
			continue
		} else {
			joined.WriteString(content)
		}
		parseFields(cur, joined.String())
		cur = nil
	}
	return lines, cur == nil
}

// parseFields fills the parsed fields of l from one assembled line, as
// _pam_parse_conf_file splits it with _pam_StrTok.
func parseFields(l *Line, s string) {
	toks := Tokenize(s)
	if len(toks) == 0 {
		return
	}
	t := toks[0]
	if strings.HasPrefix(t, "-") {
		l.Dash, t = true, t[1:]
	}
	l.Type = strings.ToLower(t)
	if l.Type == "@include" {
		// Debian's 031_pam_include: the next word is the file, and there
		// is no control.
		if len(toks) > 1 {
			l.Module = toks[1]
		}
		return
	}
	if len(toks) > 1 {
		l.Control = toks[1]
	}
	if len(toks) > 2 {
		l.Module = toks[2]
	}
	if len(toks) > 3 {
		l.Args = toks[3:]
	}
}

// Tokenize splits an assembled line the way _pam_StrTok does: on spaces,
// tabs and newlines, except that a word starting with '[' runs to the first
// ']' and keeps its brackets here (libpam strips them; a "\]" inside stands
// for ']'). Other characters, carriage returns included, are part of words.
func Tokenize(s string) []string {
	var toks []string
	for {
		s = strings.TrimLeft(s, " \t\n")
		if s == "" {
			return toks
		}
		if s[0] == '[' {
			end := 1
			for end < len(s) && s[end] != ']' {
				if s[end] == '\\' && end+1 < len(s) && s[end+1] == ']' {
					end++
				}
				end++
			}
			if end < len(s) {
				end++ // the ']'
			}
			toks = append(toks, s[:end])
			s = s[end:] // the next word may start right after the ']'
			continue
		}
		end := strings.IndexAny(s, " \t\n")
		if end < 0 {
			return append(toks, s)
		}
		toks = append(toks, s[:end])
		s = s[end:]
	}
}

// controlWord returns a control as _pam_StrTok hands it to the parser: the
// text inside a bracketed word, with "\]" turned into "]", or the word.
func controlWord(tok string) string {
	if !strings.HasPrefix(tok, "[") {
		return tok
	}
	s := strings.TrimSuffix(tok[1:], "]")
	return strings.ReplaceAll(s, "\\]", "]")
}

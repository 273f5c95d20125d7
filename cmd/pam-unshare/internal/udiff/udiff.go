// Package udiff writes the unified diff that "enable --dry-run" prints.
package udiff

import (
	"fmt"
	"strings"
)

// diffContext is the number of unchanged lines shown around each change.
const diffContext = 3

// Unified returns a unified diff from a to b ("" when they are equal).
// pam.d files are short, so a plain LCS table is fast enough.
func Unified(nameA, nameB string, a, b []byte) string {
	x, y := splitLines(string(a)), splitLines(string(b))
	ops := diffOps(x, y)
	if len(ops) == 0 {
		return ""
	}
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", nameA, nameB)

	// Group the edit script into hunks with diffContext lines around changes.
	all := ops
	i := 0
	for i < len(all) {
		// Find the next change.
		for i < len(all) && all[i].kind == ' ' {
			i++
		}
		if i == len(all) {
			break
		}
		start := max(i-diffContext, 0)
		end := i
		for {
			for end < len(all) && all[end].kind != ' ' {
				end++
			}
			// Look ahead: another change within 2*context joins this hunk.
			k := end
			for k < len(all) && all[k].kind == ' ' && k-end < 2*diffContext {
				k++
			}
			if k < len(all) && all[k].kind != ' ' {
				end = k
				continue
			}
			end = min(end+diffContext, len(all))
			break
		}
		na, nb := 0, 0
		for _, l := range all[start:end] {
			if l.kind != '+' {
				na++
			}
			if l.kind != '-' {
				nb++
			}
		}
		fmt.Fprintf(&out, "@@ -%s +%s @@\n", hunkRange(all[start].ai, na), hunkRange(all[start].bi, nb))
		for _, l := range all[start:end] {
			out.WriteByte(l.kind)
			out.WriteString(l.text)
			out.WriteByte('\n')
		}
		i = end
	}
	return out.String()
}

// hunkRange formats "start,count" the way diff -u does (1-based; an empty
// range names the line before it).
func hunkRange(start, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", start)
	}
	if n == 1 {
		return fmt.Sprintf("%d", start+1)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

type diffOp struct {
	kind   byte
	text   string
	ai, bi int // positions in x and y before this line
}

// diffOps returns the full edit script (context lines included), or nil when
// x and y are equal.
func diffOps(x, y []string) []diffOp {
	n, m := len(x), len(y)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var ops []diffOp
	changed := false
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && x[i] == y[j]:
			ops = append(ops, diffOp{' ', x[i], i, j})
			i++
			j++
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, diffOp{'-', x[i], i, j})
			i++
			changed = true
		default:
			ops = append(ops, diffOp{'+', y[j], i, j})
			j++
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return ops
}

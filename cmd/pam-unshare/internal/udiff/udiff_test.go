package udiff

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestUnifiedDiff(t *testing.T) {
	if d := Unified("a", "b", []byte("x\ny\n"), []byte("x\ny\n")); d != "" {
		t.Errorf("equal inputs: %q", d)
	}
	a := "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n15\n"
	b := "1\n2\nthree\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n15\nsixteen\n"
	got := Unified("a", "b", []byte(a), []byte(b))
	want := `--- a
+++ b
@@ -1,6 +1,6 @@
 1
 2
-3
+three
 4
 5
 6
@@ -11,5 +11,5 @@
 11
 12
 13
-14
 15
+sixteen
`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	// Insertion into an empty file.
	if got := Unified("a", "b", nil, []byte("x\n")); got != "--- a\n+++ b\n@@ -0,0 +1 @@\n+x\n" {
		t.Errorf("from empty: %q", got)
	}
	// Same hunks as diff(1), where it is installed.
	if _, err := exec.LookPath("diff"); err == nil {
		dir := t.TempDir()
		if os.WriteFile(dir+"/a", []byte(a), 0o644) != nil || os.WriteFile(dir+"/b", []byte(b), 0o644) != nil {
			t.Fatal("cannot write the files to compare")
		}
		out, _ := exec.Command("diff", "-u", dir+"/a", dir+"/b").Output()
		gotHunks := got[strings.Index(got, "@@"):]
		if wantHunks := string(out[strings.Index(string(out), "@@"):]); gotHunks != wantHunks {
			t.Errorf("diff -u says:\n%s", wantHunks)
		}
	}
}

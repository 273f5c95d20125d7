package pamstack

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// Files serves pam.d files from memory, by name (tests and fixtures).
type Files map[string]string

// Read returns the file called name, or an error wrapping fs.ErrNotExist.
func (f Files) Read(name string) ([]byte, error) {
	s, ok := f[name]
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	}
	return []byte(s), nil
}

// List returns the names of the files, sorted.
func (f Files) List() ([]string, error) {
	var names []string
	for n := range f {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// Load adds the files called names in dir, or every file in dir when no
// names are given, each under its base name.
func (f Files) Load(dir string, names ...string) error {
	if len(names) == 0 {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range ents {
			names = append(names, e.Name())
		}
	}
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		f[name] = string(b)
	}
	return nil
}

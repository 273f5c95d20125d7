// Package atomicfile replaces a file so that a reader sees the old contents
// or the new, never a part: pam.d service files, their backups and the
// guards are written through it.
package atomicfile

import (
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Write writes data to path through a temporary file, with the mode
// and owner of like.
func Write(path string, data []byte, like os.FileInfo) (err error) {
	dir, base := filepath.Dir(path), filepath.Base(path)
	f, err := os.CreateTemp(dir, "."+base+".tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(like.Mode().Perm()); err != nil {
		return err
	}
	if sys, ok := like.Sys().(*syscall.Stat_t); ok {
		if err = f.Chown(int(sys.Uid), int(sys.Gid)); err != nil && os.Geteuid() == 0 {
			return err
		}
		err = nil // not root: the file keeps our own ids, which is all we can do
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Mode is an os.FileInfo that carries only a mode, for Write when the
// file is new.
type Mode os.FileMode

func (m Mode) Name() string       { return "" }
func (m Mode) Size() int64        { return 0 }
func (m Mode) Mode() os.FileMode  { return os.FileMode(m) }
func (m Mode) ModTime() time.Time { return time.Time{} }
func (m Mode) IsDir() bool        { return false }
func (m Mode) Sys() any           { return nil }

// Package fsutil holds the file operations shared by the CLI and hostd.
package fsutil

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// CopyFile copies src to dst (mode 0600) through a temporary file beside
// it, synced and renamed into place: dst is never left half written.
func CopyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return WriteFile(dst, in, 0o600, nil)
}

// WriteFile writes what r holds to path through a temporary file beside
// it (path.tmp), synced; check, when set, may read the temporary file and
// refuse it; then it is renamed into place and the directory synced. path
// is never left half written, and a refused or failed write leaves no
// temporary file.
func WriteFile(path string, r io.Reader, mode os.FileMode, check func(tmp string) error) error {
	tmp := path + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, r)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && check != nil {
		err = check(tmp)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	SyncDir(filepath.Dir(path))
	return nil
}

// SyncDir flushes a directory's entries (a rename, a removal) to the
// medium, as far as the filesystem lets it.
func SyncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// CopyDir replaces the directory dst with a copy of src, whose entries
// must be regular files (a swtpm state directory): the copy is made
// beside dst and swapped in, so dst is either the old or the new one.
func CopyDir(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	tmp := dst + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			os.RemoveAll(tmp)
			return fmt.Errorf("copy %s: %s is not a regular file", src, e.Name())
		}
		if err := CopyFile(filepath.Join(src, e.Name()), filepath.Join(tmp, e.Name())); err != nil {
			os.RemoveAll(tmp)
			return err
		}
	}
	old := dst + ".old"
	if err := os.RemoveAll(old); err != nil {
		return err
	}
	if err := os.Rename(dst, old); err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	return os.RemoveAll(old)
}

package guestdrive

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
)

// WriteISO writes files (flat names) as an ISO 9660 image with Joliet
// names at path, labelled Label: what Windows shows as the THINHOST CD.
// A CD, not a USB disk: Windows setup numbers disks, and the answer
// file's "disk 0" must be the guest's own disk, never the helper; setup
// reads autounattend.xml from the root of any CD.
func WriteISO(path string, files map[string]string) error {
	work, err := os.MkdirTemp(filepath.Dir(path), ".iso-")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.RemoveAll(work)
	names := make([]string, 0, len(files))
	for name := range files {
		if name == "" || name != filepath.Base(name) || name[0] == '.' {
			return fmt.Errorf("write %s: %q is not a plain file name", path, name)
		}
		names = append(names, name)
	}
	sort.Strings(names)
	tmp := path + ".new"
	// 0600: in install mode it holds the one-time setup password and the
	// share password (QEMU, which reads it, runs as root).
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp)
	fs, err := iso9660.Create(file.New(f, false), 0, 0, 2048, work)
	if err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	for _, name := range names {
		w, err := fs.OpenFile("/"+name, os.O_CREATE|os.O_RDWR)
		if err == nil {
			_, err = w.Write([]byte(files[name]))
			if cerr := w.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			f.Close()
			return fmt.Errorf("write %s: %s: %w", path, name, err)
		}
	}
	if err := fs.Finalize(iso9660.FinalizeOptions{Joliet: true, VolumeIdentifier: Label}); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

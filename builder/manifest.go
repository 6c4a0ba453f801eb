package builder

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/thinhost/thinhost/images"
	"github.com/thinhost/thinhost/images/layout"
)

// manifestLock names the lock file a build took its packages from.
type manifestLock struct {
	Path     string `json:"path"`
	SHA256   string `json:"sha256"`
	Packages int    `json:"packages"`
}

// bootEntry is one file of the ESP's boot slot in the manifest.
type bootEntry struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Packages are the Debian packages (name and version) it is made
	// from.
	Packages []string `json:"packages,omitempty"`
}

// bootManifest describes the boot slot's kernel, initramfs and early
// microcode initrd.
func bootManifest(kern *Kernel, initrd, microcodePath string, mc *Microcode, ukiPath string) ([]bootEntry, error) {
	files := []struct {
		path, src string
		pkgs      []string
	}{
		{layout.KernelPath("a"), kern.Image, nil},
		{layout.InitrdPath("a"), initrd, nil},
	}
	if kern.Package != "" {
		files[0].pkgs = []string{kern.Package}
	}
	if ukiPath != "" {
		// One signed file holds them all.
		files = files[:1]
		files[0].path, files[0].src = layout.UKIPath("a"), ukiPath
		if mc != nil {
			files[0].pkgs = append(files[0].pkgs, mc.Packages...)
		}
	} else if mc != nil {
		files = append(files, struct {
			path, src string
			pkgs      []string
		}{layout.MicrocodePath("a"), microcodePath, mc.Packages})
	}
	var out []bootEntry
	for _, f := range files {
		sum, err := fileSHA256(f.src)
		if err != nil {
			return nil, fmt.Errorf("hash %s for the manifest: %w", f.path, err)
		}
		fi, err := os.Stat(f.src)
		if err != nil {
			return nil, fmt.Errorf("hash %s for the manifest: %w", f.path, err)
		}
		out = append(out, bootEntry{Path: "/" + f.path, Size: fi.Size(), SHA256: sum, Packages: f.pkgs})
	}
	return out, nil
}

// writeManifest writes the image's manifest as JSON, atomically: the lock
// file, the boot slot's files on the ESP, the system image's files.
func writeManifest(path string, lock *manifestLock, boot []bootEntry, entries []images.ManifestEntry) error {
	b, err := json.MarshalIndent(struct {
		Version int                    `json:"version"`
		Lock    *manifestLock          `json:"lock,omitempty"`
		Boot    []bootEntry            `json:"boot"`
		Files   []images.ManifestEntry `json:"files"`
	}{1, lock, boot, entries}, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write manifest %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write manifest %s: %w", path, err)
	}
	return nil
}

// buildManifest writes the image's manifest beside it (IMAGE.manifest.json)
// and returns its path.
func buildManifest(output string, hp *hostPackages, kern *Kernel, initrd *initrdArtifact, sys *systemArtifact, disk *diskArtifact) (string, error) {
	manifest := output + ".manifest.json"
	var lockRef *manifestLock
	if hp != nil {
		lockRef = &manifestLock{Path: filepath.Base(hp.LockPath), SHA256: hp.LockSHA256, Packages: len(hp.Lock.Packages)}
	}
	bootFiles, err := bootManifest(kern, initrd.Path, sys.MicrocodePath, sys.Microcode, disk.UKI)
	if err != nil {
		return "", err
	}
	if err := writeManifest(manifest, lockRef, bootFiles, disk.Manifest); err != nil {
		return "", err
	}
	return manifest, nil
}

package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/cavaliergopher/grab/v3"
	"pault.ag/go/debian/deb"

	"github.com/thinhost/thinhost/builder/cache"
)

// ErrGone means the archive no longer serves a locked package version.
var ErrGone = errors.New("no longer served by the archive")

// FetchDeb makes p's .deb available in c (sha256 from the signed index or
// the lock file) and returns its path.
func FetchDeb(ctx context.Context, c *cache.Cache, p *Package) (string, error) {
	file, err := c.Fetch(ctx, cache.Request{URL: p.DebURL(), SHA256: p.SHA256, Label: "fetch " + p.Name})
	var sc grab.StatusCodeError
	var ce *cache.ChecksumError
	switch {
	case errors.As(err, &sc) && (int(sc) == http.StatusNotFound || int(sc) == http.StatusGone):
		return "", fmt.Errorf("fetch package %s %s (%s): %w (%s answered %d): run thinhost lock PROFILE to move to what the archive serves now",
			p.Name, p.Version, p.Suite, ErrGone, p.DebURL(), int(sc))
	case errors.As(err, &ce):
		return "", fmt.Errorf("fetch package %s %s (%s): %w; nothing was cached", p.Name, p.Version, p.Suite, err)
	case err != nil:
		return "", fmt.Errorf("fetch package %s %s: %w", p.Name, p.Version, err)
	}
	return file, nil
}

// Unpacked is a .deb's data unpacked in the cache.
type Unpacked struct {
	// Dir holds the package's files at their paths ("usr/sbin/smbd").
	Dir string
}

// Unpack extracts the data of the .deb at file (whose sha256 is sum) into
// DIR/debs/<sum>/ of c, once: later calls reuse it. Directories, regular
// files, symbolic links (kept as the package writes them, relative or
// absolute: they are resolved inside the host's tree, never on the build
// machine) and hard links are extracted; no entry may leave the package's
// root, and device nodes are refused.
func Unpack(ctx context.Context, c *cache.Cache, file, sum string) (*Unpacked, error) {
	dest := filepath.Join(c.Dir, "debs", sum)
	if fi, err := os.Stat(dest); err == nil && fi.IsDir() {
		return &Unpacked{Dir: dest}, nil
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return nil, fmt.Errorf("unpack %s: %w", file, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dest), sum+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("unpack %s: %w", file, err)
	}
	defer os.RemoveAll(tmp)
	fh, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("unpack %s: %w", file, err)
	}
	defer fh.Close()
	d, err := deb.Load(fh, file)
	if err != nil {
		return nil, fmt.Errorf("read Debian package %s: %w", file, err)
	}
	defer d.Close()
	if err := Extract(ctx, d.Data, tmp, nil); err != nil {
		return nil, fmt.Errorf("unpack %s (%s %s): %w", file, d.Control.Package, d.Control.Version, err)
	}
	if err := os.Rename(tmp, dest); err != nil && !os.IsExist(err) {
		if fi, serr := os.Stat(dest); serr != nil || !fi.IsDir() {
			return nil, fmt.Errorf("unpack %s: %w", file, err)
		}
	}
	return &Unpacked{Dir: dest}, nil
}

// Extract writes a package's data (a tar stream) under dest, the entries
// keep accepts (all when nil), by Unpack's rules.
func Extract(ctx context.Context, tr *tar.Reader, dest string, keep func(name string) bool) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name, err := entryPath(h.Name)
		if err != nil {
			return err
		}
		if name == "." || (keep != nil && !keep(name)) {
			continue
		}
		target := filepath.Join(dest, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		// Directories within the tree are never links (a package cannot
		// plant a link and then write through it).
		if err := noLinkParents(dest, name); err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_EXCL, os.FileMode(h.Mode&0o755)|0o200)
			if err != nil {
				return fmt.Errorf("entry %s: %w", h.Name, err)
			}
			if _, err := io.Copy(out, tr); err != nil {
				out.Close()
				return err
			}
			if err := out.Close(); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if h.Linkname == "" || strings.ContainsRune(h.Linkname, 0) {
				return fmt.Errorf("entry %s: bad link target", h.Name)
			}
			if err := os.Symlink(h.Linkname, target); err != nil {
				return fmt.Errorf("entry %s: %w", h.Name, err)
			}
		case tar.TypeLink:
			src, err := entryPath(h.Linkname)
			if err != nil {
				return err
			}
			if err := noLinkParents(dest, src); err != nil {
				return err
			}
			if err := os.Link(filepath.Join(dest, filepath.FromSlash(src)), target); err != nil {
				return fmt.Errorf("entry %s: %w", h.Name, err)
			}
		default:
			return fmt.Errorf("entry %s: type %q is not unpacked (devices and FIFOs have no place in a host image)", h.Name, h.Typeflag)
		}
	}
}

// entryPath cleans a tar entry's name ("./usr/sbin/smbd") and refuses one
// that leaves the root.
func entryPath(n string) (string, error) {
	rel := strings.TrimPrefix(n, "./")
	if strings.ContainsRune(n, 0) {
		return "", fmt.Errorf("entry %q has a NUL in its name", n)
	}
	for _, part := range strings.Split(rel, "/") {
		if part == ".." {
			return "", fmt.Errorf("entry %q leaves the package root", n)
		}
	}
	clean := path.Clean("/" + rel)
	if clean == "/" {
		return ".", nil
	}
	return clean[1:], nil
}

// noLinkParents refuses a path whose parent directories inside dest are
// symbolic links.
func noLinkParents(dest, name string) error {
	dir := path.Dir(name)
	for dir != "." && dir != "/" {
		fi, err := os.Lstat(filepath.Join(dest, filepath.FromSlash(dir)))
		if err == nil && fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("entry %s goes through the symbolic link %s", name, dir)
		}
		dir = path.Dir(dir)
	}
	return nil
}

package builder

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/thinhost/thinhost"
)

// Source is where hostd and u-root's commands are compiled from.
type Source struct {
	Dir string
	// Embedded is set when Dir holds this thinhost's own source, written
	// out from the binary (no checkout was found).
	Embedded bool
}

// findSource locates the thinhost module source tree: dir when given;
// else the checkout the working directory is in, then $THINHOST_SRC; else
// the source this thinhost carries, written out under cacheDir.
func findSource(dir, cacheDir string) (Source, error) {
	var candidates []string
	if dir != "" {
		candidates = append(candidates, dir)
	} else {
		if wd, err := os.Getwd(); err == nil {
			for d := wd; ; d = filepath.Dir(d) {
				candidates = append(candidates, d)
				if filepath.Dir(d) == d {
					break
				}
			}
		}
		if env := os.Getenv("THINHOST_SRC"); env != "" {
			candidates = append(candidates, env)
		}
	}
	for _, d := range candidates {
		if modulePathOf(filepath.Join(d, "go.mod")) == ModulePath {
			abs, err := filepath.Abs(d)
			return Source{Dir: abs}, err
		}
	}
	if dir != "" {
		return Source{}, fmt.Errorf("find thinhost source: %s has no go.mod for %s", dir, ModulePath)
	}
	d, err := writeSource(thinhost.Source, filepath.Join(cacheDir, "source"))
	if err != nil {
		return Source{}, err
	}
	return Source{Dir: d, Embedded: true}, nil
}

// writeSource writes src into a directory under root named by its
// content's hash, once: a later build with the same thinhost finds it
// there. The directory appears whole or not at all.
func writeSource(src fs.FS, root string) (string, error) {
	h := sha256.New()
	err := fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(src, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %d\n", p, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("read thinhost's own source: %w", err)
	}
	dir := filepath.Join(root, hex.EncodeToString(h.Sum(nil))[:24])
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return dir, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("write thinhost's own source: %w", err)
	}
	tmp, err := os.MkdirTemp(root, ".partial-")
	if err != nil {
		return "", fmt.Errorf("write thinhost's own source: %w", err)
	}
	defer os.RemoveAll(tmp)
	err = fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(tmp, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		in, err := src.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		return "", fmt.Errorf("write thinhost's own source into %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another build wrote it first.
		if fi, statErr := os.Stat(dir); statErr == nil && fi.IsDir() {
			return dir, nil
		}
		return "", fmt.Errorf("write thinhost's own source: %w", err)
	}
	return dir, nil
}

func modulePathOf(gomod string) string {
	f, err := os.Open(gomod)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// Package thinhost carries thinhost's own source tree, so that an
// installed thinhost (go install, a copied binary) builds images outside
// a checkout: the builder writes it out into its cache and compiles there
// what a checkout's working tree gives otherwise — hostd and u-root's
// commands for the host, and thinhost.exe for Windows guests. It lives at
// the module's root because go:embed reaches no parent directory.
package thinhost

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Source holds SourceRoots: go.mod and go.sum (which pin u-root and
// every other dependency, fetched through the module cache) and the
// directories the host's programs and thinhost itself are built from,
// with their embedded assets (the host's page). TestSourceCoversPrograms
// keeps the list whole as the imports change.
//
//go:embed go.mod go.sum cmd/hostd cmd/modprobe cmd/thinhost hostd images internal profiles
var Source embed.FS

// SourceRoots are Source's top-level entries, as the go:embed line names
// them.
var SourceRoots = []string{"go.mod", "go.sum", "cmd/hostd", "cmd/modprobe", "cmd/thinhost", "hostd", "images", "internal", "profiles"}

// HostSourceRoots are what the host's programs (hostd, the image's
// modprobe) are compiled from: the initramfs's cache key hashes these, so
// a change to the CLI does not rebuild them.
var HostSourceRoots = []string{"go.mod", "go.sum", "cmd/hostd", "cmd/modprobe", "hostd", "images/layout", "internal"}

// SourceKey identifies what a build compiles from dir, for a cache: what
// names the build, then the Go toolchain's settings (as go env reports
// them in dir), the extra lines, and each file under roots that the build
// reads. The same key means the same bytes: the builds are reproducible.
func SourceKey(ctx context.Context, dir string, roots []string, what string, extra ...string) (string, error) {
	h := sha256.New()
	fmt.Fprintln(h, what)
	goenv := exec.CommandContext(ctx, "go", "env", "GOVERSION", "GOEXPERIMENT", "GOFLAGS", "GOAMD64", "GOROOT")
	goenv.Dir = dir
	out, err := goenv.Output()
	if err != nil {
		return "", fmt.Errorf("read the Go toolchain's settings: %w", err)
	}
	h.Write(out)
	for _, e := range extra {
		fmt.Fprintln(h, e)
	}
	if err := hashSource(h, dir, roots); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashSource writes to h a line for each file under roots in dir that a
// build reads: Go files and what they embed, not tests or their data.
func hashSource(h io.Writer, dir string, roots []string) error {
	for _, root := range roots {
		err := filepath.WalkDir(filepath.Join(dir, filepath.FromSlash(root)), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			name := d.Name()
			if d.IsDir() {
				if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" {
					return filepath.SkipDir
				}
				return nil
			}
			if strings.HasSuffix(name, "_test.go") || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
				return nil
			}
			rel, _ := filepath.Rel(dir, p)
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			fh := sha256.New()
			if _, err := io.Copy(fh, f); err != nil {
				return err
			}
			fmt.Fprintf(h, "%s %x\n", filepath.ToSlash(rel), fh.Sum(nil))
			return nil
		})
		if err != nil {
			return fmt.Errorf("hash the sources in %s: %w", dir, err)
		}
	}
	return nil
}

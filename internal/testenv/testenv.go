// Package testenv decides what tests may rely on. Tests that need a tool
// from Debian's packages (sgdisk, fsck.vfat, qemu-system-x86_64...) or a
// real build and boot call these helpers: in a plain `go test ./...` a
// missing tool skips the test, but with THINHOST_E2E=1 — as the README's
// test command and CI run — a missing tool fails it, so CI can never pass
// by skipping.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// E2E reports whether the full suite was asked for (THINHOST_E2E=1).
func E2E() bool { return os.Getenv("THINHOST_E2E") == "1" }

// NeedE2E skips t unless THINHOST_E2E=1.
func NeedE2E(t testing.TB) {
	t.Helper()
	if !E2E() {
		t.Skip("image build and boot test: set THINHOST_E2E=1 (see README)")
	}
}

// NeedTool returns the path of a program, skipping t when it is missing
// (failing it under THINHOST_E2E=1).
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if c := filepath.Join(dir, name); isExec(c) {
			return c
		}
	}
	Missing(t, "%s is not installed (run examples/setup-debian.sh)", name)
	return ""
}

// NeedFile skips t when path is missing (fails it under THINHOST_E2E=1).
func NeedFile(t testing.TB, path, why string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		Missing(t, "%s: %v (%s)", path, err, why)
	}
}

// Missing skips t, or fails it under THINHOST_E2E=1.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if E2E() {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// RepoRoot is the root of the thinhost checkout.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// NeedRoot skips t unless it runs as root (fails it under THINHOST_E2E=1):
// loop devices and mounts need root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "needs root (loop devices, mounts)")
	}
}

// SharedCache gives t a thinhost cache of its own (THINHOST_CACHE, which
// it returns) whose subdirectories named in shared are the same for every
// test of every package: content-addressed parts such as verified
// downloads ("sha256", "partial"), unpacked packages ("debs") and signed
// indexes ("inrelease"), fetched once per machine rather than per test.
func SharedCache(t testing.TB, shared ...string) string {
	t.Helper()
	store := filepath.Join(os.TempDir(), "thinhost-test-cache")
	dir := filepath.Join(t.TempDir(), "cache")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, sub := range shared {
		if err := os.MkdirAll(filepath.Join(store, sub), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(store, sub), filepath.Join(dir, sub)); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("THINHOST_CACHE", dir)
	return dir
}

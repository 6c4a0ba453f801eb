package testguest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/thinhost/thinhost/internal/testenv"
)

// ForTest gives a test the Linux test guest: the kernel
// examples/qemu-test.hcl boots, from Debian's archive as it is today (a
// lock file of the test's own, the shared download cache), and an
// initramfs built for it in the test's temporary directory.
func ForTest(t testing.TB) (kernel, initrd string) {
	t.Helper()
	ctx := context.Background()
	cache := testenv.SharedCache(t, "sha256", "partial", "debs", "inrelease")
	k, err := Kernel(ctx, testenv.RepoRoot(), cache, filepath.Join(t.TempDir(), "guest.lock"), false)
	if err != nil {
		t.Fatal(err)
	}
	initrd = filepath.Join(t.TempDir(), "initrd.cpio")
	if err := Build(ctx, testenv.RepoRoot(), k, initrd); err != nil {
		t.Fatal(err)
	}
	return k.Image, initrd
}

package smb

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/thinhost/thinhost/internal/testenv"
)

// TestForgetACLs: the Windows ACL goes from every file and folder under
// the shares, nothing else of theirs does, and a symlink's target outside
// them keeps its own.
func TestForgetACLs(t *testing.T) {
	testenv.NeedRoot(t) // security.* attributes
	dir := t.TempDir()
	shares := filepath.Join(dir, "shares")
	outside := filepath.Join(dir, "outside.txt")
	os.MkdirAll(filepath.Join(shares, "files", "sub"), 0o755)
	for _, p := range []string{outside, filepath.Join(shares, "files", "a.txt"), filepath.Join(shares, "files", "sub", "b.txt")} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink(outside, filepath.Join(shares, "files", "link"))
	acl := []byte{4, 0, 4, 0}
	with := []string{outside, filepath.Join(shares, "files"), filepath.Join(shares, "files", "a.txt"), filepath.Join(shares, "files", "sub", "b.txt")}
	for _, p := range with {
		if err := unix.Setxattr(p, "security.NTACL", acl, 0); err != nil {
			t.Skipf("no security attributes here: %v", err)
		}
	}
	if err := unix.Setxattr(filepath.Join(shares, "files", "a.txt"), "user.DosStream.Zone.Identifier:$DATA", []byte("zone"), 0); err != nil {
		t.Fatal(err)
	}
	n, err := ForgetACLs(shares)
	if err != nil || n != 3 {
		t.Fatalf("ForgetACLs = %d, %v; want 3", n, err)
	}
	for _, p := range with[1:] {
		if _, err := unix.Getxattr(p, "security.NTACL", nil); !errors.Is(err, unix.ENODATA) {
			t.Errorf("%s still has its ACL: %v", p, err)
		}
	}
	if _, err := unix.Getxattr(outside, "security.NTACL", nil); err != nil {
		t.Errorf("the symlink's target outside the shares lost its ACL: %v", err)
	}
	if _, err := unix.Getxattr(filepath.Join(shares, "files", "a.txt"), "user.DosStream.Zone.Identifier:$DATA", nil); err != nil {
		t.Errorf("a file's stream went with its ACL: %v", err)
	}
	if n, err := ForgetACLs(shares); err != nil || n != 0 {
		t.Errorf("again: %d, %v", n, err)
	}
	if n, err := ForgetACLs(filepath.Join(dir, "absent")); err != nil || n != 0 {
		t.Errorf("no shares folder: %d, %v", n, err)
	}
}

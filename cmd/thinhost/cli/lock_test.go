package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thinhost/thinhost/builder/archive"
	"github.com/thinhost/thinhost/builder/archive/archivetest"
)

// lockArchive is what a profile without guests or shares needs, plus
// "hello" for its extra packages.
func lockArchive(helloVersion string) []archivetest.Suite {
	return []archivetest.Suite{
		{Suite: "bookworm-updates", Components: map[string][]archivetest.Pkg{"main": {{Name: "tzdata", Version: "2026a-0+deb12u1", Arch: "all"}}}},
		{Suite: "bookworm", Components: map[string][]archivetest.Pkg{"main": {
			{Name: "libc6", Version: "2.36-9+deb12u13"},
			{Name: "e2fsprogs", Version: "1.47.0-2", PreDepends: "libc6 (>= 2.34), libext2fs2 (= 1.47.0-2)"},
			{Name: "libext2fs2", Version: "1.47.0-2", Depends: "libc6"},
			{Name: "systemd-boot-efi", Version: "252.39-1~deb12u1", Arch: "amd64"},
			{Name: "linux-image-amd64", Version: "6.1.192-1", Depends: "linux-image-6.1.0-56-amd64 (= 6.1.192-1)"},
			{Name: "linux-image-6.1.0-56-amd64", Version: "6.1.192-1"},
			{Name: "hello", Version: helloVersion, Depends: "libc6 (>= 2.34)"},
		}}},
	}
}

// TestLock: `thinhost lock` writes the lock file beside the profile with
// every package and its dependencies, says what changed, keeps or moves
// versions as asked, and leaves the lock file alone when the archive's
// signature does not verify.
func TestLock(t *testing.T) {
	key := archivetest.NewKey(t, "test archive")
	a := archivetest.New(t, key, lockArchive("2.10-3")...)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "test.gpg"), archivetest.Keyring(t, key), 0o644); err != nil {
		t.Fatal(err)
	}
	prof := filepath.Join(dir, "host.hcl")
	if err := os.WriteFile(prof, []byte(`
host {
  kernel {
  }
}
packages {
  suites   = ["bookworm", "bookworm-updates"]
  mirror   = "`+a.URL()+`"
  keyrings = ["test.gpg"]
  extra    = ["hello"]
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("THINHOST_CACHE", filepath.Join(dir, "cache"))
	lockFile := filepath.Join(dir, "host.lock")

	stdout, stderr, code := runCLI(t, "lock", prof)
	if code != 0 {
		t.Fatalf("lock: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{lockFile + ": 7 packages", "from 2 suite(s)", "+ e2fsprogs 1.47.0-2", "+ hello 2.10-3", "+ libext2fs2 1.47.0-2",
		"+ linux-image-6.1.0-56-amd64 6.1.192-1", "+ systemd-boot-efi 252.39-1~deb12u1"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("lock output lacks %q:\n%s", want, stdout)
		}
	}
	l, err := archive.ReadLock(lockFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range l.Packages {
		if p.Suite != "bookworm" || p.URL != a.URL() || len(p.SHA256) != 64 || !strings.HasPrefix(p.Filename, "pool/main/") {
			t.Errorf("locked %+v", p)
		}
	}
	if stdout, _, _ := runCLI(t, "lock", prof); !strings.Contains(stdout, "no change") {
		t.Errorf("a second lock changed something:\n%s", stdout)
	}

	// The archive moves on (a fixed hello in bookworm-updates): --keep
	// keeps hello, a plain lock moves it.
	a.AddSuite(t, archivetest.Suite{Suite: "bookworm-updates", Components: map[string][]archivetest.Pkg{"main": {
		{Name: "hello", Version: "2.10-3+deb12u1", Depends: "libc6 (>= 2.34)"}}}})
	if stdout, _, _ := runCLI(t, "lock", "--keep", prof); !strings.Contains(stdout, "no change") {
		t.Errorf("lock --keep moved a package:\n%s", stdout)
	}
	stdout, _, code = runCLI(t, "lock", prof)
	if code != 0 || !strings.Contains(stdout, "  hello 2.10-3 -> 2.10-3+deb12u1") || strings.Contains(stdout, "libc6") {
		t.Errorf("lock after the archive moved: exit %d\n%s", code, stdout)
	}

	// Signed by a key nobody trusts: refused, the lock file unchanged.
	before, _ := os.ReadFile(lockFile)
	a.Files["dists/bookworm/InRelease"] = archivetest.ClearSign(t, archivetest.NewKey(t, "mallory"), []byte("Suite: bookworm\nSHA256:\n"))
	_, stderr, code = runCLI(t, "lock", prof)
	if code == 0 || !strings.Contains(stderr, a.URL()+"/dists/bookworm/InRelease") || !strings.Contains(stderr, "not signed by a trusted archive key") {
		t.Errorf("lock with a forged InRelease: exit %d\n%s", code, stderr)
	}
	if after, _ := os.ReadFile(lockFile); string(after) != string(before) {
		t.Error("a refused lock run changed the lock file")
	}
}

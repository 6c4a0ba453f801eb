package builder

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/thinhost/thinhost/builder/archive"
	"github.com/thinhost/thinhost/builder/archive/archivetest"
	"github.com/thinhost/thinhost/profiles"
)

// kernelArchive serves what a profile without guests or shares needs,
// with linux-image-amd64 depending on a kernel package that carries a
// bzImage and its modules; second adds another kernel beside it.
func kernelArchive(second bool) archivetest.Suite {
	kernel := func(rel, ver string) archivetest.Pkg {
		return archivetest.Pkg{Name: "linux-image-" + rel, Version: ver, Files: map[string]string{
			"boot/vmlinuz-" + rel:                   string(fakeBzImage(rel)),
			"lib/modules/" + rel + "/modules.dep":   "",
			"lib/modules/" + rel + "/kernel/x/a.ko": "module",
		}}
	}
	pkgs := []archivetest.Pkg{
		{Name: "libc6", Version: "2.36-9+deb12u13"},
		{Name: "e2fsprogs", Version: "1.47.0-2", Depends: "libc6"},
		{Name: "systemd-boot-efi", Version: "252.39-1~deb12u1"},
		{Name: "linux-image-amd64", Version: "6.1.192-1", Depends: "linux-image-6.1.0-56-amd64 (= 6.1.192-1)"},
		kernel("6.1.0-56-amd64", "6.1.192-1"),
	}
	if second {
		pkgs = append(pkgs, kernel("6.12.48+deb12-amd64", "6.12.48-1~bpo12+1"))
	}
	return archivetest.Suite{Suite: "bookworm", Components: map[string][]archivetest.Pkg{"main": pkgs}}
}

func kernelProfile(t *testing.T, a *archivetest.Archive, packages string) *profiles.Profile {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "test.gpg"), archivetest.Keyring(t, a.Key), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "host.hcl")
	src := `
host {
  kernel {
  }
}
packages {
  suites   = ["bookworm"]
  mirror   = "` + a.URL() + `"
  keyrings = ["test.gpg"]
  ` + packages + `
}
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p, diags := profiles.Parse(path, profiles.Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return p
}

// TestLockedKernel: a profile's kernel is the linux-image-<release>
// package its kernel metapackage brought, fetched and unpacked through
// the cache with only its own .deb; a lock file with two kernels needs
// packages.kernel to name one, and naming one picks it.
func TestLockedKernel(t *testing.T) {
	a := archivetest.New(t, archivetest.NewKey(t, "test archive"), kernelArchive(false))
	p := kernelProfile(t, a, "")
	cache := t.TempDir()
	k, err := LockedKernel(context.Background(), LockedKernelConfig{Profile: p, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if k.Release != "6.1.0-56-amd64" || k.Package != "linux-image-6.1.0-56-amd64 6.1.192-1" || len(k.SHA256) != 64 {
		t.Errorf("kernel = %+v", k)
	}
	if b, err := os.ReadFile(k.Image); err != nil || !strings.Contains(string(b), "HdrS") {
		t.Errorf("kernel image %s: %v", k.Image, err)
	}
	if _, err := os.Stat(filepath.Join(k.ModulesDir, "kernel/x/a.ko")); err != nil {
		t.Errorf("modules: %v", err)
	}
	var debs []string
	for f := range a.Hits {
		if strings.HasSuffix(f, ".deb") {
			debs = append(debs, f)
		}
	}
	if len(debs) != 1 || !strings.Contains(debs[0], "linux-image-6.1.0-56-amd64") {
		t.Errorf("LockedKernel fetched %v, want the kernel's .deb alone", debs)
	}
	// The lock file was written beside the profile; offline, it is used
	// as it is.
	if _, err := archive.ReadLock(LockPath(p.Path)); err != nil {
		t.Fatal(err)
	}
	if _, err := LockedKernel(context.Background(), LockedKernelConfig{Profile: p, CacheDir: cache, Offline: true}); err != nil {
		t.Errorf("offline from the lock file and the cache: %v", err)
	}

	// Two kernels in the lock file (one pulled in by extra).
	a2 := archivetest.New(t, archivetest.NewKey(t, "test archive"), kernelArchive(true))
	p2 := kernelProfile(t, a2, `extra = ["linux-image-6.12.48+deb12-amd64"]`)
	_, err = LockedKernel(context.Background(), LockedKernelConfig{Profile: p2, CacheDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "linux-image-6.1.0-56-amd64, linux-image-6.12.48+deb12-amd64") || !strings.Contains(err.Error(), "packages.kernel") {
		t.Errorf("two kernels: %v", err)
	}
	p3 := kernelProfile(t, a2, `kernel = "linux-image-6.12.48+deb12-amd64"`)
	k, err = LockedKernel(context.Background(), LockedKernelConfig{Profile: p3, CacheDir: t.TempDir()})
	if err != nil || k.Release != "6.12.48+deb12-amd64" {
		t.Errorf("packages.kernel naming a kernel package: %+v, %v", k, err)
	}
}

// requestedNames are the names of the packages p requests.
func requestedNames(t *testing.T, p *profiles.Profile) []string {
	t.Helper()
	reqs, err := PackageRequests(p)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range reqs {
		out = append(out, r.Name)
	}
	return out
}

// TestPackageRequestsKernel: the kernel package is requested unless an
// artifact gives the kernel.
func TestPackageRequestsKernel(t *testing.T) {
	names := func(p *profiles.Profile) []string { return requestedNames(t, p) }
	p := &profiles.Profile{Packages: profiles.Packages{Kernel: "linux-image-amd64"}}
	if n := names(p); !slices.Contains(n, "linux-image-amd64") {
		t.Errorf("kernel from packages: requests %v", n)
	}
	p.Host.Kernel.Artifact = "kernel"
	if n := names(p); slices.Contains(n, "linux-image-amd64") {
		t.Errorf("kernel from an artifact: requests %v", n)
	}
}

// TestPackageRequestsSuite: an extra package may take one of thinhost's
// own from another suite (Mesa from backports), once; two suites for one
// package are refused.
func TestPackageRequestsSuite(t *testing.T) {
	p := &profiles.Profile{
		Packages: profiles.Packages{Kernel: "linux-image-amd64", Extra: []string{"swtpm/bookworm-backports", "swtpm", "curl"}},
		VMs:      []*profiles.VM{{Name: "w"}},
	}
	reqs, err := PackageRequests(p)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range reqs {
		if r.Name == "swtpm" {
			n++
			if r.Suite != "bookworm-backports" {
				t.Errorf("swtpm requested as %s, want swtpm/bookworm-backports", r)
			}
		}
	}
	if n != 1 {
		t.Errorf("swtpm requested %d times, want once: %v", n, reqs)
	}
	p.Packages.Extra = append(p.Packages.Extra, "swtpm/bookworm")
	if _, err := PackageRequests(p); err == nil || !strings.Contains(err.Error(), "named twice") {
		t.Errorf("swtpm from two suites: %v, want an error", err)
	}
}

// fakePart is an unpacked package named name holding files (path: body;
// a body "->target" is a symbolic link).
func fakePart(t *testing.T, name string, files map[string]string) archive.TreePart {
	t.Helper()
	dir := t.TempDir()
	for p, body := range files {
		f := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(f), 0o755)
		if strings.HasPrefix(body, "->") {
			os.Symlink(strings.TrimPrefix(body, "->"), f)
			continue
		}
		os.WriteFile(f, []byte(body), 0o644)
	}
	return archive.TreePart{Package: &archive.Package{Name: name, Version: "1"}, Dir: dir}
}

// TestServiceFiles: a service carries its package's files but its
// documentation, the files it names from other packages (a directory
// means all under it; /usr/bin and /bin are one on a merged /usr), and a
// file no locked package ships is an error that says what to do.
func TestServiceFiles(t *testing.T) {
	part := func(name string, files map[string]string) archive.TreePart { return fakePart(t, name, files) }
	tree, err := archive.NewTree([]archive.TreePart{
		part("hello", map[string]string{"usr/bin/hello": "elf", "usr/share/locale/de/LC_MESSAGES/hello.mo": "de",
			"usr/share/doc/hello/copyright": "c", "usr/share/man/man1/hello.1.gz": "m", "usr/share/hello/dangling": "->/nowhere"}),
		part("tzdata", map[string]string{"usr/share/zoneinfo/Europe/Berlin": "tz", "usr/share/zoneinfo/Europe/Paris": "tz"}),
		part("coreutils", map[string]string{"bin/date": "elf"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	hp := &hostPackages{Tree: tree, LockPath: "host.lock"}
	p := &profiles.Profile{Services: []*profiles.Service{{Name: "hello", Package: "hello", Command: []string{"/usr/bin/hello"},
		Files: []string{"/usr/share/zoneinfo/Europe", "/usr/bin/date"}}}}
	files, err := serviceFiles(p, hp)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.Src+" "+f.Package)
	}
	want := []string{"/usr/bin/hello hello", "/usr/share/locale/de/LC_MESSAGES/hello.mo hello",
		"/usr/share/zoneinfo/Europe/Berlin tzdata", "/usr/share/zoneinfo/Europe/Paris tzdata", "/usr/bin/date coreutils"}
	if !slices.Equal(got, want) {
		t.Errorf("service files:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	p.Services[0].Files = []string{"/etc/ssl/certs"}
	if _, err := serviceFiles(p, hp); err == nil || !strings.Contains(err.Error(), "no locked package ships /etc/ssl/certs: add the package that does to packages.extra") {
		t.Errorf("a file no package ships: %v", err)
	}
}

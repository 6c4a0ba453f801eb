package archive

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/google/go-cmp/cmp"

	"github.com/thinhost/thinhost/builder/archive/archivetest"
	"github.com/thinhost/thinhost/builder/cache"
)

type (
	pkgSpec     = archivetest.Pkg
	suiteSpec   = archivetest.Suite
	testArchive = archivetest.Archive
)

var (
	newKey         = archivetest.NewKey
	newTestArchive = archivetest.New
	mkDeb          = archivetest.MkDeb
	sum            = archivetest.Sum
)

// The test archive: bookworm (main, non-free-firmware) and backports.
func bookworm() []suiteSpec {
	return []suiteSpec{
		{Suite: "bookworm", Components: map[string][]pkgSpec{
			"main": {
				{Name: "libc6", Version: "2.36-9+deb12u13", Files: map[string]string{"lib/x86_64-linux-gnu/libc.so.6": "libc"}},
				{Name: "libfoo1", Version: "1.0-1", Depends: "libc6 (>= 2.34)"},
				{Name: "libbar1", Version: "3.0-1"},
				{Name: "app", Version: "1:2.0-1", PreDepends: "libc6:any (>= 2.17)",
					Depends: "libfoo1 (>= 2) | libbar1, mail-transport-agent, tool [!amd64], awk",
					Files:   map[string]string{"usr/bin/app": "#!app", "usr/bin/app-link": "->app", "usr/bin/app-hard": "=>./usr/bin/app"}},
				{Name: "exim4", Version: "4.96-15", Provides: "mail-transport-agent"},
				{Name: "dma", Version: "0.13-1", Provides: "mail-transport-agent"},
				{Name: "mawk", Version: "1.3.4-1", Provides: "awk"},
				{Name: "needs-versioned-virtual", Version: "1", Depends: "awk (>= 2)"},
				{Name: "kernel", Version: "6.1.0-1", Arch: "amd64"},
				{Name: "doc", Version: "1.0", Arch: "all"},
				{Name: "other-arch", Version: "1.0", Arch: "arm64"},
			},
			"non-free-firmware": {
				{Name: "firmware-misc-nonfree", Version: "20230210-5", Arch: "all", Files: map[string]string{"lib/firmware/i915/tgl_dmc.bin": "fw"}},
			},
		}},
		{Suite: "bookworm-backports", NotAutomatic: true, Components: map[string][]pkgSpec{
			"main": {
				{Name: "libfoo1", Version: "2.0-1~bpo12+1"},
				{Name: "kernel", Version: "6.12.0-1~bpo12+1", Depends: "libfoo1 (>= 2)"},
			},
		}},
	}
}

func sources(a *testArchive) []Source {
	return []Source{
		{URL: a.Srv.URL, Suite: "bookworm", Components: []string{"main", "non-free-firmware"}},
		{URL: a.Srv.URL, Suite: "bookworm-backports", Components: []string{"main"}},
	}
}

func load(t *testing.T, a *testArchive, keys openpgp.EntityList, c *cache.Cache) (*Index, error) {
	t.Helper()
	if c == nil {
		c = &cache.Cache{Dir: t.TempDir()}
	}
	return Load(context.Background(), Config{Sources: sources(a), Arch: "amd64", Keys: keys, Cache: c})
}

func names(pkgs []*Package) []string {
	var out []string
	for _, p := range pkgs {
		out = append(out, p.Name+"="+p.Version+"@"+p.Suite)
	}
	return out
}

func TestResolve(t *testing.T) {
	key := newKey(t, "archive")
	a := newTestArchive(t, key, bookworm()...)
	ix, err := load(t, a, openpgp.EntityList{key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ix.Release("bookworm").Signer == "" || !ix.Release("bookworm-backports").NotAutomatic {
		t.Errorf("releases: %+v %+v", ix.Release("bookworm"), ix.Release("bookworm-backports"))
	}
	if len(ix.Versions("other-arch")) != 0 {
		t.Error("an arm64 package was read for amd64")
	}

	// app: libfoo1 (>= 2) is only in backports, so the alternative
	// libbar1 from bookworm wins, as apt would pick; the virtual
	// mail-transport-agent goes to the first provider by name (dma);
	// "tool [!amd64]" does not apply; awk is provided by mawk.
	got, err := ix.Resolve([]Request{{Name: "app"}, {Name: "firmware-misc-nonfree"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"app=1:2.0-1@bookworm", "dma=0.13-1@bookworm", "firmware-misc-nonfree=20230210-5@bookworm",
		"libbar1=3.0-1@bookworm", "libc6=2.36-9+deb12u13@bookworm", "mawk=1.3.4-1@bookworm"}
	if d := cmp.Diff(want, names(got)); d != "" {
		t.Errorf("Resolve app (-want +got):\n%s", d)
	}

	// An already-picked provider wins over the first by name.
	got, err = ix.Resolve([]Request{{Name: "exim4"}, {Name: "app"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names(got) {
		if strings.HasPrefix(n, "dma=") {
			t.Errorf("dma picked though exim4 provides mail-transport-agent: %v", names(got))
		}
	}

	// The backports kernel, named with its suite, pulls libfoo1 (>= 2)
	// from backports: nothing else satisfies it.
	got, err = ix.Resolve([]Request{{Name: "kernel", Suite: "bookworm-backports"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"kernel=6.12.0-1~bpo12+1@bookworm-backports", "libfoo1=2.0-1~bpo12+1@bookworm-backports"}, names(got)); d != "" {
		t.Errorf("backports kernel (-want +got):\n%s", d)
	}
	// Without the suite, the kernel comes from bookworm.
	got, _ = ix.Resolve([]Request{{Name: "kernel"}}, nil)
	if d := cmp.Diff([]string{"kernel=6.1.0-1@bookworm"}, names(got)); d != "" {
		t.Errorf("kernel (-want +got):\n%s", d)
	}

	// One package asked for from two suites.
	if _, err := ix.Resolve([]Request{{Name: "kernel"}, {Name: "kernel", Suite: "bookworm-backports"}}, nil); err == nil || !strings.Contains(err.Error(), "asked for twice") {
		t.Errorf("kernel twice: %v", err)
	}

	// A locked version is kept while it satisfies.
	got, _ = ix.Resolve([]Request{{Name: "libfoo1"}}, map[string]string{"libfoo1": "2.0-1~bpo12+1"})
	if d := cmp.Diff([]string{"libfoo1=2.0-1~bpo12+1@bookworm-backports"}, names(got)); d != "" {
		t.Errorf("locked (-want +got):\n%s", d)
	}

	for _, c := range []struct {
		req  Request
		want string
	}{
		{Request{Name: "nope"}, "no source lists it"},
		{Request{Name: "mail-transport-agent"}, "virtual package; name one of dma, exim4"},
		{Request{Name: "app", Suite: "sid"}, `no source has suite "sid"`},
		{Request{Name: "needs-versioned-virtual"}, `depends on "awk (>= 2)"`},
	} {
		_, err := ix.Resolve([]Request{c.req}, nil)
		if !errors.Is(err, ErrUnresolvable) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Resolve %s: %v, want ErrUnresolvable with %q", c.req, err, c.want)
		}
	}
}

// TestUntrustedIndexes: an InRelease signed by another key, one for
// another suite, an expired one and a tampered Packages index are all
// refused, and nothing unverified enters the cache.
func TestUntrustedIndexes(t *testing.T) {
	key := newKey(t, "archive")
	trusted := openpgp.EntityList{key}

	other := newTestArchive(t, newKey(t, "mallory"), bookworm()...)
	if _, err := load(t, other, trusted, nil); !errors.Is(err, ErrSignature) || !strings.Contains(err.Error(), "/dists/bookworm/InRelease") {
		t.Errorf("InRelease signed by another key: %v", err)
	}

	// The server answers bookworm-backports' URL with bookworm's file.
	swapped := newTestArchive(t, key, bookworm()...)
	swapped.Files["dists/bookworm-backports/InRelease"] = swapped.Files["dists/bookworm/InRelease"]
	if _, err := load(t, swapped, trusted, nil); err == nil || !strings.Contains(err.Error(), "another suite's index") {
		t.Errorf("another suite's InRelease: %v", err)
	}

	old := bookworm()
	old[0].ValidUntil = time.Now().Add(-time.Hour)
	expired := newTestArchive(t, key, old...)
	if _, err := load(t, expired, trusted, nil); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired InRelease: %v", err)
	}

	// One byte of the Packages index changed.
	tampered := newTestArchive(t, key, bookworm()...)
	idx := "dists/bookworm/main/binary-amd64/Packages.xz"
	orig := tampered.Files[idx]
	bad := bytes.Clone(orig)
	bad[len(bad)/2] ^= 0xff
	tampered.Files[idx] = bad
	c := &cache.Cache{Dir: t.TempDir()}
	_, err := load(t, tampered, trusted, c)
	if !errors.Is(err, cache.ErrChecksum) {
		t.Fatalf("tampered Packages: %v, want ErrChecksum", err)
	}
	for _, s := range []string{tampered.Srv.URL + "/" + idx, sum(orig), "nothing was cached"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("tampered Packages: %q lacks %q", err, s)
		}
	}
	if c.Has(sum(orig)) || c.Has(sum(bad)) {
		t.Error("the tampered index entered the cache")
	}
	if entries, _ := os.ReadDir(filepath.Join(c.Dir, "sha256")); len(entries) != 0 {
		t.Errorf("the cache holds %d files after a refused index", len(entries))
	}
}

func TestDebianKeysVerifyRealInRelease(t *testing.T) {
	keys, err := DebianKeys()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) < 6 {
		t.Fatalf("%d archive keys", len(keys))
	}
	// testdata/bookworm-updates.InRelease: Debian's own, as served on
	// 2026-11-26, signed by three keys.
	data, err := os.ReadFile("testdata/bookworm-updates.InRelease")
	if err != nil {
		t.Fatal(err)
	}
	text, signer, err := VerifyInRelease(data, keys)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(signer, "Debian") {
		t.Errorf("signer %q", signer)
	}
	rel, err := ParseRelease(text)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Codename != "bookworm-updates" || !rel.AcquireByHash || rel.Files["main/binary-amd64/Packages.xz"].SHA256 == "" {
		t.Errorf("release: codename %q, by-hash %v, %d files", rel.Codename, rel.AcquireByHash, len(rel.Files))
	}
	// One changed byte in the signed text breaks it.
	bad := bytes.Replace(data, []byte("bookworm-updates"), []byte("bookworm-updatez"), 1)
	if _, _, err := VerifyInRelease(bad, keys); !errors.Is(err, ErrSignature) {
		t.Errorf("a changed InRelease verified: %v", err)
	}
}

func TestFetchAndUnpack(t *testing.T) {
	key := newKey(t, "archive")
	a := newTestArchive(t, key, bookworm()...)
	c := &cache.Cache{Dir: t.TempDir()}
	ix, err := load(t, a, openpgp.EntityList{key}, c)
	if err != nil {
		t.Fatal(err)
	}
	app := ix.Versions("app")[0]
	ctx := context.Background()
	file, err := FetchDeb(ctx, c, app)
	if err != nil {
		t.Fatal(err)
	}
	u, err := Unpack(ctx, c, file, app.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(u.Dir, "usr/bin/app")); string(b) != "#!app" {
		t.Errorf("usr/bin/app = %q", b)
	}
	if l, _ := os.Readlink(filepath.Join(u.Dir, "usr/bin/app-link")); l != "app" {
		t.Errorf("app-link -> %q", l)
	}
	fi1, _ := os.Stat(filepath.Join(u.Dir, "usr/bin/app"))
	fi2, _ := os.Stat(filepath.Join(u.Dir, "usr/bin/app-hard"))
	if fi1 == nil || fi2 == nil || !os.SameFile(fi1, fi2) {
		t.Error("the hard link was not kept")
	}
	// A second fetch comes from the cache.
	before := a.Hits[app.Filename]
	if _, err := FetchDeb(ctx, c, app); err != nil || a.Hits[app.Filename] != before {
		t.Errorf("second fetch: %v, %d requests", err, a.Hits[app.Filename]-before)
	}

	// A tampered .deb is refused and not cached.
	mawk := ix.Versions("mawk")[0]
	a.Files[mawk.Filename] = append(bytes.Clone(a.Files[mawk.Filename]), 0)
	if _, err := FetchDeb(ctx, c, mawk); !errors.Is(err, cache.ErrChecksum) || !strings.Contains(err.Error(), "mawk") || !strings.Contains(err.Error(), mawk.SHA256) {
		t.Errorf("tampered .deb: %v", err)
	}
	if c.Has(mawk.SHA256) {
		t.Error("the tampered .deb was cached")
	}
	// A locked version the archive dropped.
	dma := ix.Versions("dma")[0]
	delete(a.Files, dma.Filename)
	if _, err := FetchDeb(ctx, c, dma); !errors.Is(err, ErrGone) || !strings.Contains(err.Error(), "dma 0.13-1") || !strings.Contains(err.Error(), "thinhost lock") {
		t.Errorf("a dropped package: %v", err)
	}
	// Offline, what is cached still works and nothing else is fetched.
	off := *c
	off.Offline = true
	if _, err := FetchDeb(ctx, &off, app); err != nil {
		t.Errorf("offline, cached: %v", err)
	}
	if _, err := FetchDeb(ctx, &off, ix.Versions("exim4")[0]); !errors.Is(err, cache.ErrOffline) {
		t.Errorf("offline, not cached: %v", err)
	}
	// The index loads offline from the copies kept by the online run.
	if _, err := Load(ctx, Config{Sources: sources(a), Keys: openpgp.EntityList{key}, Cache: &off}); err != nil {
		t.Errorf("offline index: %v", err)
	}
}

func TestUnpackRefusesEscapes(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"dotdot":          {"../../etc/evil": "x"},
		"through a link":  {"usr/lib": "->/etc", "usr/lib/evil": "x"},
		"hard link above": {"usr/bin/x": "=>../../etc/passwd"},
	} {
		t.Run(name, func(t *testing.T) {
			c := &cache.Cache{Dir: t.TempDir()}
			deb := mkDeb(t, pkgSpec{Name: "evil", Version: "1", Arch: "amd64", Files: files})
			p := filepath.Join(t.TempDir(), "evil.deb")
			os.WriteFile(p, deb, 0o644)
			if _, err := Unpack(context.Background(), c, p, sum(deb)); err == nil {
				t.Fatal("unpacked")
			}
			if _, err := os.Stat(filepath.Join(c.Dir, "debs", sum(deb))); err == nil {
				t.Error("a refused package left an unpacked tree")
			}
		})
	}
}

func TestLockFile(t *testing.T) {
	key := newKey(t, "archive")
	a := newTestArchive(t, key, bookworm()...)
	ix, err := load(t, a, openpgp.EntityList{key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	reqs := []Request{{Name: "app"}, {Name: "kernel", Suite: "bookworm-backports"}}
	pkgs, err := ix.Resolve(reqs, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := NewLock("amd64", sources(a), reqs, pkgs)
	path := filepath.Join(t.TempDir(), "p.lock")
	if err := WriteLock(path, l); err != nil {
		t.Fatal(err)
	}
	back, err := ReadLock(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(l.Encode(), back.Encode()); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
	if ok, why := back.Matches("amd64", sources(a), []Request{{Name: "kernel", Suite: "bookworm-backports"}, {Name: "app"}}); !ok {
		t.Errorf("Matches: %s", why)
	}
	if ok, why := back.Matches("amd64", sources(a), []Request{{Name: "app"}}); ok || !strings.Contains(why, "other packages") {
		t.Errorf("Matches with fewer packages: %v %s", ok, why)
	}

	// Diff: one upgraded, one added, one dropped.
	newer := NewLock("amd64", sources(a), reqs, nil)
	for _, p := range pkgs {
		q := *p
		switch q.Name {
		case "dma":
			continue
		case "mawk":
			q.Version = "1.3.4-2"
		}
		newer.Packages = append(newer.Packages, &q)
	}
	newer.Packages = append(newer.Packages, &Package{Name: "zz", Version: "1"})
	var got []string
	for _, c := range Diff(l, newer) {
		got = append(got, c.String())
	}
	if d := cmp.Diff([]string{"- dma 0.13-1", "  mawk 1.3.4-1 -> 1.3.4-2", "+ zz 1"}, got); d != "" {
		t.Errorf("Diff (-want +got):\n%s", d)
	}

	for name, edit := range map[string]func(string) string{
		"traversal": func(s string) string { return strings.Replace(s, `"filename": "pool/`, `"filename": "pool/../../`, 1) },
		"bad sum":   func(s string) string { return strings.Replace(s, `"sha256": "`, `"sha256": "zz`, 1) },
		"unknown": func(s string) string {
			return strings.Replace(s, `"arch": "amd64",`, `"arch": "amd64", "extra": 1,`, 1)
		},
		"version": func(s string) string { return strings.Replace(s, `"version": 1`, `"version": 9`, 1) },
	} {
		bad := filepath.Join(t.TempDir(), name+".lock")
		os.WriteFile(bad, []byte(edit(string(l.Encode()))), 0o644)
		if _, err := ReadLock(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("%s: ReadLock = %v, want an error naming the file", name, err)
		}
	}
}

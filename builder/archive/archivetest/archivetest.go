// Package archivetest serves a Debian-style archive from an httptest
// server for tests: signed InRelease files, xz-compressed Packages indexes
// and .debs, all made in the test with a key of its own.
package archivetest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ulikunitz/xz"
)

// Pkg is a package of a test archive.
type Pkg struct {
	Name, Version, Arch           string
	Depends, PreDepends, Provides string
	// Files are the .deb's data: path -> content; a content starting
	// with "->" makes a symbolic link to the rest.
	Files map[string]string
}

type Suite struct {
	Suite        string
	NotAutomatic bool
	ValidUntil   time.Time
	// Components maps a component to its packages.
	Components map[string][]Pkg
}

// Archive is a Debian-style archive served by httptest: signed
// InRelease files, xz-compressed Packages indexes and .debs, all made in
// the test.
type Archive struct {
	Srv *httptest.Server
	Key *openpgp.Entity
	Mu  sync.Mutex
	// files maps a path under the server's root to its bytes; tests
	// tamper with it.
	Files map[string][]byte
	Hits  map[string]int
}

// NewKey makes a signing key.
func NewKey(t testing.TB, name string) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity(name, "test", name+"@example.invalid", nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// New serves an archive of suites signed with key.
func New(t testing.TB, key *openpgp.Entity, suites ...Suite) *Archive {
	t.Helper()
	a := &Archive{Key: key, Files: map[string][]byte{}, Hits: map[string]int{}}
	a.Srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.Mu.Lock()
		b, ok := a.Files[strings.TrimPrefix(r.URL.Path, "/")]
		a.Hits[strings.TrimPrefix(r.URL.Path, "/")]++
		a.Mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
	}))
	t.Cleanup(a.Srv.Close)
	for _, s := range suites {
		a.AddSuite(t, s)
	}
	return a
}

// Sum is the hex sha256 of b.
func Sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// AddSuite adds a suite: its .debs, Packages indexes and signed InRelease.
func (a *Archive) AddSuite(t testing.TB, s Suite) {
	t.Helper()
	var comps []string
	for c := range s.Components {
		comps = append(comps, c)
	}
	sort.Strings(comps)
	var release bytes.Buffer
	fmt.Fprintf(&release, "Origin: Test\nSuite: %s\nCodename: %s\nDate: %s\n", s.Suite, s.Suite, time.Now().UTC().Format(time.RFC1123))
	if !s.ValidUntil.IsZero() {
		fmt.Fprintf(&release, "Valid-Until: %s\n", s.ValidUntil.UTC().Format(time.RFC1123))
	}
	if s.NotAutomatic {
		release.WriteString("NotAutomatic: yes\nButAutomaticUpgrades: yes\n")
	}
	fmt.Fprintf(&release, "Architectures: amd64\nComponents: %s\nSHA256:\n", strings.Join(comps, " "))
	for _, c := range comps {
		var idx bytes.Buffer
		for _, p := range s.Components[c] {
			if p.Arch == "" {
				p.Arch = "amd64"
			}
			deb := MkDeb(t, p)
			pool := fmt.Sprintf("pool/%s/%s/%s/%s_%s_%s.deb", c, p.Name[:1], p.Name, p.Name, noEpoch(p.Version), p.Arch)
			a.Files[pool] = deb
			fmt.Fprintf(&idx, "Package: %s\nVersion: %s\nArchitecture: %s\nMaintainer: Test <t@example.invalid>\n", p.Name, p.Version, p.Arch)
			for _, f := range [][2]string{{"Pre-Depends", p.PreDepends}, {"Depends", p.Depends}, {"Provides", p.Provides}} {
				if f[1] != "" {
					fmt.Fprintf(&idx, "%s: %s\n", f[0], f[1])
				}
			}
			fmt.Fprintf(&idx, "Description: %s\n a test package\n .\n with a long description\nFilename: %s\nSize: %d\nSHA256: %s\n\n", p.Name, pool, len(deb), Sum(deb))
		}
		var xzb bytes.Buffer
		w, _ := xz.NewWriter(&xzb)
		w.Write(idx.Bytes())
		w.Close()
		path := c + "/binary-amd64/Packages.xz"
		a.Files["dists/"+s.Suite+"/"+path] = xzb.Bytes()
		fmt.Fprintf(&release, " %s %d %s\n", Sum(xzb.Bytes()), xzb.Len(), path)
		fmt.Fprintf(&release, " %s %d %s\n", Sum(idx.Bytes()), idx.Len(), c+"/binary-amd64/Packages")
	}
	a.Files["dists/"+s.Suite+"/InRelease"] = ClearSign(t, a.Key, release.Bytes())
}

// ClearSign signs text as an InRelease is signed.
func ClearSign(t testing.TB, key *openpgp.Entity, text []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := clearsign.Encode(&out, key.PrivateKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(text)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// MkDeb builds a .deb: an ar archive of debian-binary, control.tar.gz and
// data.tar.gz.
// MkDeb builds a .deb of p.
func MkDeb(t testing.TB, p Pkg) []byte {
	t.Helper()
	control := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: %s\nMaintainer: Test <t@example.invalid>\nDescription: test\n", p.Name, p.Version, p.Arch)
	ctl := tgz(t, map[string]string{"control": control})
	data := tgz(t, p.Files)
	var b bytes.Buffer
	b.WriteString("!<arch>\n")
	for _, m := range []struct {
		name string
		body []byte
	}{{"debian-binary", []byte("2.0\n")}, {"control.tar.gz", ctl}, {"data.tar.gz", data}} {
		fmt.Fprintf(&b, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", m.name, 0, 0, 0, "100644", len(m.body))
		b.Write(m.body)
		if len(m.body)%2 == 1 {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

func tgz(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	dirs := map[string]bool{}
	for _, n := range names {
		parts := strings.Split(strings.TrimPrefix(n, "./"), "/")
		for i := 1; i < len(parts); i++ {
			d := "./" + strings.Join(parts[:i], "/") + "/"
			if !dirs[d] && !strings.Contains(d, "..") {
				dirs[d] = true
				tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755})
			}
		}
		c := files[n]
		name := n
		if !strings.HasPrefix(name, "./") && !strings.HasPrefix(name, "/") {
			name = "./" + name
		}
		switch {
		case strings.HasPrefix(c, "->"):
			tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: c[2:], Mode: 0o777})
		case strings.HasPrefix(c, "=>"):
			tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: c[2:], Mode: 0o644})
		default:
			tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(c))})
			tw.Write([]byte(c))
		}
	}
	tw.Close()
	gz.Close()
	return b.Bytes()
}

// noEpoch is a version as Debian's pool file names write it.
func noEpoch(v string) string {
	if _, after, ok := strings.Cut(v, ":"); ok {
		return after
	}
	return v
}

// URL is the archive's root.
func (a *Archive) URL() string { return a.Srv.URL }

// Keyring is key's public part as a binary keyring file's bytes.
func Keyring(t testing.TB, key *openpgp.Entity) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := key.Serialize(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

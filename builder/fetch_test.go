package builder

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/thinhost/thinhost/profiles"
)

// fixtureServer serves files from memory with Range support (as a real
// mirror does) and records the requests it saw.
type fixtureServer struct {
	*httptest.Server
	mu     sync.Mutex
	files  map[string][]byte
	ranges []string
	hits   int
}

func newFixtureServer(t *testing.T, files map[string][]byte) *fixtureServer {
	fs := &fixtureServer{files: files}
	fs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.mu.Lock()
		fs.hits++
		if rg := r.Header.Get("Range"); rg != "" {
			fs.ranges = append(fs.ranges, rg)
		}
		data, ok := fs.files[r.URL.Path]
		fs.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, r.URL.Path, time.Unix(0, 0), bytes.NewReader(data))
	}))
	t.Cleanup(fs.Close)
	return fs
}

func artifact(name, url, sum string) *profiles.Artifact {
	return &profiles.Artifact{Name: name, URL: url, SHA256: sum,
		DeclRange: hcl.Range{Filename: "p.hcl", Start: hcl.Pos{Line: 3, Column: 1}, End: hcl.Pos{Line: 3, Column: 10}}}
}

func TestFetchCachesVerifiedDownload(t *testing.T) {
	data := bytes.Repeat([]byte("virtio-win "), 100000)
	srv := newFixtureServer(t, map[string][]byte{"/drivers.iso": data})
	f := &Fetcher{Cache: &Cache{Dir: t.TempDir()}}
	a := artifact("drivers", srv.URL+"/drivers.iso", hexSum(data))

	r, err := f.Resolve(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Fetched || r.Path != f.Cache.Path(a.SHA256) {
		t.Errorf("resolved = %+v", r)
	}
	got, _ := os.ReadFile(r.Path)
	if !bytes.Equal(got, data) {
		t.Fatal("cached file differs from the served one")
	}
	hits := srv.hits
	r, err = f.Resolve(context.Background(), a)
	if err != nil || r.Fetched || srv.hits != hits {
		t.Errorf("second resolve must come from the cache: %+v, %v, %d requests", r, err, srv.hits-hits)
	}
	// Offline works once cached.
	f.Offline = true
	if _, err := f.ResolveAll(context.Background(), []*profiles.Artifact{a}); err != nil {
		t.Errorf("offline with a cached artifact: %v", err)
	}
}

func TestFetchRejectsChecksumMismatch(t *testing.T) {
	served := []byte("a kernel that was swapped upstream")
	srv := newFixtureServer(t, map[string][]byte{"/linux.deb": served})
	cacheDir := t.TempDir()
	f := &Fetcher{Cache: &Cache{Dir: cacheDir}}
	want := hexSum([]byte("the kernel the profile expects"))
	a := artifact("kernel", srv.URL+"/linux.deb", want)

	_, err := f.Resolve(context.Background(), a)
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("err = %v, want ErrChecksum", err)
	}
	for _, s := range []string{`"kernel"`, "p.hcl:3", srv.URL + "/linux.deb", want, "nothing was cached"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %q", err, s)
		}
	}
	if f.Cache.Has(want) || f.Cache.Has(hexSum(served)) {
		t.Error("a mismatched download must not enter the cache")
	}
	var left []string
	filepath.Walk(cacheDir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("files left in the cache: %v", left)
	}
}

func TestFetchResumesPartialDownload(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 64*1024) // 1 MiB
	srv := newFixtureServer(t, map[string][]byte{"/big.iso": data})
	f := &Fetcher{Cache: &Cache{Dir: t.TempDir()}}
	a := artifact("big", srv.URL+"/big.iso", hexSum(data))
	// An earlier run was interrupted after 300000 bytes.
	partial := f.Cache.PartialPath(a.SHA256)
	os.MkdirAll(filepath.Dir(partial), 0o755)
	if err := os.WriteFile(partial, data[:300000], 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := f.Resolve(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if len(srv.ranges) == 0 || !strings.HasPrefix(srv.ranges[len(srv.ranges)-1], "bytes=300000-") {
		t.Errorf("the download did not resume: ranges requested %v", srv.ranges)
	}
	got, _ := os.ReadFile(r.Path)
	if !bytes.Equal(got, data) {
		t.Error("resumed file differs")
	}
	if _, err := os.Stat(partial); !os.IsNotExist(err) {
		t.Error("the partial file should be gone once the download is in the cache")
	}
}

func TestFetchOfflineNamesEveryMissingArtifact(t *testing.T) {
	srv := newFixtureServer(t, nil)
	f := &Fetcher{Cache: &Cache{Dir: t.TempDir()}, Offline: true}
	arts := []*profiles.Artifact{
		artifact("windows", srv.URL+"/win.iso", hexSum([]byte("w"))),
		artifact("drivers", srv.URL+"/virtio.iso", hexSum([]byte("d"))),
	}
	_, err := f.ResolveAll(context.Background(), arts)
	if !errors.Is(err, ErrOffline) {
		t.Fatalf("err = %v, want ErrOffline", err)
	}
	for _, s := range []string{`"windows"`, `"drivers"`, "win.iso", "virtio.iso", "2 artifact(s)"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
	if srv.hits != 0 {
		t.Errorf("offline made %d requests", srv.hits)
	}
}

func TestFetchHTTPError(t *testing.T) {
	srv := newFixtureServer(t, nil)
	f := &Fetcher{Cache: &Cache{Dir: t.TempDir()}}
	_, err := f.Resolve(context.Background(), artifact("gone", srv.URL+"/gone.iso", hexSum([]byte("x"))))
	if err == nil || !strings.Contains(err.Error(), `"gone"`) || !strings.Contains(err.Error(), "404") {
		t.Errorf("err = %v, want one naming the artifact and the 404", err)
	}
}

func TestResolveLocal(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "bzImage")
	os.WriteFile(p, []byte("kernel"), 0o644)
	f := &Fetcher{Cache: &Cache{Dir: t.TempDir()}}
	a := &profiles.Artifact{Name: "k", Path: p}
	r, err := f.Resolve(context.Background(), a)
	if err != nil || r.Path != p || r.SHA256 != hexSum([]byte("kernel")) {
		t.Errorf("Resolve local = %+v, %v", r, err)
	}
	a.SHA256 = hexSum([]byte("other"))
	if _, err := f.Resolve(context.Background(), a); !errors.Is(err, ErrChecksum) {
		t.Errorf("local sha256 mismatch: %v", err)
	}
	a = &profiles.Artifact{Name: "k", Path: filepath.Join(dir, "missing")}
	if _, err := f.Resolve(context.Background(), a); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing local file: %v", err)
	}
}

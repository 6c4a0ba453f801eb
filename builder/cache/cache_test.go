package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"
)

// TestFetchProgress: a download reports how it goes to the callback, the
// last report finished with every byte; a cached file reports nothing;
// a file that does not hash to its sum is refused and never published.
func TestFetchProgress(t *testing.T) {
	body := bytes.Repeat([]byte("thinhost"), 64<<10)
	sum := sha256.Sum256(body)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bad" {
			w.Write(body[1:])
			return
		}
		http.ServeContent(w, r, "f", time.Time{}, bytes.NewReader(body))
	}))
	defer srv.Close()
	var mu sync.Mutex
	var reports []Progress
	c := &Cache{Dir: t.TempDir(), Progress: func(p Progress) {
		mu.Lock()
		reports = append(reports, p)
		mu.Unlock()
	}}
	r := Request{URL: srv.URL + "/f", SHA256: hex.EncodeToString(sum[:]), Label: "fetch f"}
	path, err := c.Fetch(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || !bytes.Equal(b, body) {
		t.Fatalf("the cached file differs: %v", err)
	}
	mu.Lock()
	n := len(reports)
	last := reports[n-1]
	mu.Unlock()
	if !last.Finished || last.Done != int64(len(body)) || last.Total != int64(len(body)) || last.Label != "fetch f" {
		t.Errorf("last report %+v, want finished with %d bytes", last, len(body))
	}
	if _, err := c.Fetch(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if len(reports) != n {
		t.Errorf("a cached file reported progress: %+v", reports[n:])
	}
	bad := Request{URL: srv.URL + "/bad", SHA256: hex.EncodeToString(sum[:]), Label: "fetch bad"}
	c2 := &Cache{Dir: t.TempDir()}
	if _, err := c2.Fetch(context.Background(), bad); !errors.Is(err, ErrChecksum) {
		t.Errorf("a wrong file: %v, want a checksum error", err)
	}
	if c2.Has(bad.SHA256) {
		t.Error("a file that does not hash to its sum was published")
	}
}

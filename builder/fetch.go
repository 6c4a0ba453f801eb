package builder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cavaliergopher/grab/v3"

	"github.com/thinhost/thinhost/builder/cache"
	"github.com/thinhost/thinhost/profiles"
)

// Sentinel errors for the fetch phase; test with errors.Is.
var (
	// ErrChecksum means a download or local file did not match its sha256.
	ErrChecksum = cache.ErrChecksum
	// ErrOffline means an artifact is not cached and --offline forbids
	// downloading it.
	ErrOffline = cache.ErrOffline
)

// Cache is the content-addressed store of downloads (see package cache);
// the builder also keeps unpacked kernels under DIR/kernels/<hex>/.
type Cache = cache.Cache

// DefaultCacheDir is $THINHOST_CACHE, else thinhost under the user's cache
// directory.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("THINHOST_CACHE"); d != "" {
		return filepath.Abs(d)
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find cache directory (set THINHOST_CACHE): %w", err)
	}
	return filepath.Join(d, "thinhost"), nil
}

// Fetcher resolves artifacts to local files.
type Fetcher struct {
	Cache   *Cache
	Offline bool
	Log     *slog.Logger
	// Progress is told how each download goes; nil: nobody is.
	Progress func(cache.Progress)
	// Client is the grab client; nil uses grab.NewClient().
	Client *grab.Client
}

// Resolved is an artifact available on the local disk.
type Resolved struct {
	Artifact *profiles.Artifact
	// Path is the local file: the cache entry for downloads, the profile's
	// path for local artifacts.
	Path   string
	SHA256 string
	// Fetched is true when this run downloaded it.
	Fetched bool
}

// ResolveAll resolves every artifact. Offline, it fails fast naming every
// artifact that would need a download.
func (f *Fetcher) ResolveAll(ctx context.Context, arts []*profiles.Artifact) (map[string]*Resolved, error) {
	if f.Offline {
		var missing []string
		for _, a := range arts {
			if a.Remote() && !f.Cache.Has(a.SHA256) {
				missing = append(missing, fmt.Sprintf("  artifact %q (%s) from %s", a.Name, a.DeclRange, a.URL))
			}
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("%w: %d artifact(s) need a download; run once without --offline:\n%s",
				ErrOffline, len(missing), strings.Join(missing, "\n"))
		}
	}
	out := map[string]*Resolved{}
	for _, a := range arts {
		r, err := f.Resolve(ctx, a)
		if err != nil {
			return nil, err
		}
		out[a.Name] = r
	}
	return out, nil
}

// Resolve makes one artifact available locally.
func (f *Fetcher) Resolve(ctx context.Context, a *profiles.Artifact) (*Resolved, error) {
	if !a.Remote() {
		return f.resolveLocal(a)
	}
	if f.Cache.Has(a.SHA256) {
		f.log().Debug("artifact cached", "artifact", a.Name, "sha256", a.SHA256)
		return &Resolved{Artifact: a, Path: f.Cache.Path(a.SHA256), SHA256: a.SHA256}, nil
	}
	if f.Offline {
		return nil, fmt.Errorf("fetch artifact %q from %s: %w", a.Name, a.URL, ErrOffline)
	}
	if err := f.download(ctx, a); err != nil {
		return nil, err
	}
	return &Resolved{Artifact: a, Path: f.Cache.Path(a.SHA256), SHA256: a.SHA256, Fetched: true}, nil
}

func (f *Fetcher) resolveLocal(a *profiles.Artifact) (*Resolved, error) {
	fi, err := os.Stat(a.Path)
	if err != nil {
		return nil, fmt.Errorf("artifact %q (%s): %w", a.Name, a.DeclRange, err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("artifact %q (%s): %s is a directory, not a file", a.Name, a.DeclRange, a.Path)
	}
	sum, err := fileSHA256(a.Path)
	if err != nil {
		return nil, fmt.Errorf("hash artifact %q: %w", a.Name, err)
	}
	if a.SHA256 != "" && sum != a.SHA256 {
		return nil, fmt.Errorf("artifact %q (%s): %s: %w: want %s, got %s", a.Name, a.DeclRange, a.Path, ErrChecksum, a.SHA256, sum)
	}
	return &Resolved{Artifact: a, Path: a.Path, SHA256: sum}, nil
}

func (f *Fetcher) download(ctx context.Context, a *profiles.Artifact) error {
	c := *f.Cache
	c.Offline, c.Log, c.Progress, c.Client = f.Offline, f.log(), f.Progress, f.Client
	f.log().Info("downloading", "artifact", a.Name, "url", a.URL)
	start := time.Now()
	path, err := c.Fetch(ctx, cache.Request{URL: a.URL, SHA256: a.SHA256, Label: "fetch " + a.Name})
	var ce *cache.ChecksumError
	switch {
	case errors.As(err, &ce):
		got := ""
		if ce.Status != "" {
			got = " (server said " + ce.Status + ")"
		}
		return fmt.Errorf("fetch artifact %q (%s) from %s: %w: the file does not have sha256 %s%s; nothing was cached. If the upstream file changed on purpose, update sha256 in the profile",
			a.Name, a.DeclRange, a.URL, ErrChecksum, a.SHA256, got)
	case err != nil:
		return fmt.Errorf("fetch artifact %q from %s: %w", a.Name, a.URL, err)
	}
	fi, _ := os.Stat(path)
	var size int64
	if fi != nil {
		size = fi.Size()
	}
	f.log().Info("downloaded", "artifact", a.Name, "bytes", size, "duration", time.Since(start).Round(time.Millisecond))
	return nil
}

func (f *Fetcher) log() *slog.Logger {
	if f.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return f.Log
}

func fileSHA256(path string) (string, error) { return cache.FileSHA256(path) }

package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cavaliergopher/grab/v3"
	"github.com/schollz/progressbar/v3"

	"github.com/thinhost/thinhost/profiles"
)

// Sentinel errors for the fetch phase; test with errors.Is.
var (
	// ErrChecksum means a download or local file did not match its sha256.
	ErrChecksum = errors.New("sha256 mismatch")
	// ErrOffline means an artifact is not cached and --offline forbids
	// downloading it.
	ErrOffline = errors.New("not in the cache and offline")
)

// Cache is a content-addressed store of downloaded artifacts:
//
//	DIR/sha256/<hex>     complete, verified files (never written in place)
//	DIR/partial/<hex>    downloads in progress, resumed on the next run
//	DIR/kernels/<hex>/   kernel packages unpacked (see kernel.go)
type Cache struct {
	Dir string
}

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

// Path is where a file with the given sha256 lives once verified.
func (c *Cache) Path(sum string) string { return filepath.Join(c.Dir, "sha256", sum) }

func (c *Cache) partialPath(sum string) string { return filepath.Join(c.Dir, "partial", sum) }

// Has reports whether a verified file with this sha256 is cached.
func (c *Cache) Has(sum string) bool {
	fi, err := os.Stat(c.Path(sum))
	return err == nil && fi.Mode().IsRegular()
}

// Fetcher resolves artifacts to local files.
type Fetcher struct {
	Cache   *Cache
	Offline bool
	Log     *slog.Logger
	// Progress receives download progress bars; nil disables them.
	Progress io.Writer
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
	partial := f.Cache.partialPath(a.SHA256)
	for _, d := range []string{filepath.Dir(partial), filepath.Dir(f.Cache.Path(a.SHA256))} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create cache directory: %w", err)
		}
	}
	want, _ := hex.DecodeString(a.SHA256)
	req, err := grab.NewRequest(partial, a.URL)
	if err != nil {
		return fmt.Errorf("fetch artifact %q: %w", a.Name, err)
	}
	req = req.WithContext(ctx)
	req.SetChecksum(sha256.New(), want, true)
	req.IgnoreRemoteTime = true

	client := f.Client
	if client == nil {
		client = grab.NewClient()
		client.UserAgent = "thinhost"
	}
	if fi, err := os.Stat(partial); err == nil && fi.Size() > 0 {
		f.log().Info("resuming download", "artifact", a.Name, "have", fi.Size())
	}
	f.log().Info("downloading", "artifact", a.Name, "url", a.URL)
	resp := client.Do(req)
	f.showProgress(a, resp)
	if err := resp.Err(); err != nil {
		if errors.Is(err, grab.ErrBadChecksum) {
			// grab deleted the file; make sure nothing is left behind.
			_ = os.Remove(partial)
			got := ""
			if resp.HTTPResponse != nil {
				got = " (server said " + resp.HTTPResponse.Status + ")"
			}
			return fmt.Errorf("fetch artifact %q (%s) from %s: %w: the file does not have sha256 %s%s; nothing was cached. If the upstream file changed on purpose, update sha256 in the profile",
				a.Name, a.DeclRange, a.URL, ErrChecksum, a.SHA256, got)
		}
		return fmt.Errorf("fetch artifact %q from %s: %w", a.Name, a.URL, err)
	}
	// grab verified the sum; check again what we actually publish, since
	// a cache entry is trusted forever afterwards.
	sum, err := fileSHA256(partial)
	if err != nil {
		return fmt.Errorf("hash download of %q: %w", a.Name, err)
	}
	if sum != a.SHA256 {
		_ = os.Remove(partial)
		return fmt.Errorf("fetch artifact %q (%s) from %s: %w: want %s, got %s; nothing was cached",
			a.Name, a.DeclRange, a.URL, ErrChecksum, a.SHA256, sum)
	}
	if err := os.Rename(partial, f.Cache.Path(a.SHA256)); err != nil {
		return fmt.Errorf("store artifact %q in cache: %w", a.Name, err)
	}
	f.log().Info("downloaded", "artifact", a.Name, "bytes", resp.BytesComplete(), "duration", resp.Duration().Round(time.Millisecond))
	return nil
}

func (f *Fetcher) showProgress(a *profiles.Artifact, resp *grab.Response) {
	if f.Progress == nil {
		<-resp.Done
		return
	}
	bar := progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(f.Progress),
		progressbar.OptionSetDescription("fetch "+a.Name),
		progressbar.OptionShowBytes(true),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(f.Progress) }),
	)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-resp.Done:
			if resp.Size() > 0 {
				bar.ChangeMax64(resp.Size())
			}
			_ = bar.Set64(resp.BytesComplete())
			_ = bar.Finish()
			return
		case <-t.C:
			if resp.Size() > 0 {
				bar.ChangeMax64(resp.Size())
			}
			_ = bar.Set64(resp.BytesComplete())
		}
	}
}

func (f *Fetcher) log() *slog.Logger {
	if f.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return f.Log
}

func fileSHA256(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Package cache is the builder's content-addressed store of downloads:
// files fetched over HTTP(S) with grab, verified against the sha256 their
// source promised, and only then published under that sum. The builder's
// artifact fetcher and the Debian archive client share it.
//
//	DIR/sha256/<hex>     complete, verified files (never written in place)
//	DIR/partial/<hex>    downloads in progress, resumed on the next run
package cache

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
	"time"

	"github.com/cavaliergopher/grab/v3"
)

// Sentinel errors; test with errors.Is.
var (
	// ErrChecksum means a download or local file did not match its sha256.
	ErrChecksum = errors.New("sha256 mismatch")
	// ErrOffline means a file is not cached and offline use forbids
	// downloading it.
	ErrOffline = errors.New("not in the cache and offline")
)

// Cache is a content-addressed store rooted at Dir.
type Cache struct {
	Dir string
	// Offline forbids downloads.
	Offline bool
	Log     *slog.Logger
	// Progress is told how each download goes (every 200 ms, and when it
	// ends); nil: nobody is.
	Progress func(Progress)
	// Client is the grab client; nil uses grab.NewClient().
	Client *grab.Client
}

// Path is where a file with the given sha256 lives once verified.
func (c *Cache) Path(sum string) string { return filepath.Join(c.Dir, "sha256", sum) }

// PartialPath is where a download of sum in progress is kept.
func (c *Cache) PartialPath(sum string) string { return filepath.Join(c.Dir, "partial", sum) }

// Has reports whether a verified file with this sha256 is cached.
func (c *Cache) Has(sum string) bool {
	fi, err := os.Stat(c.Path(sum))
	return err == nil && fi.Mode().IsRegular()
}

// Request is one file to fetch.
type Request struct {
	// URL is where it is downloaded from; SHA256 what it must hash to.
	URL, SHA256 string
	// Label names it in progress and log lines ("fetch kernel").
	Label string
}

// ChecksumError is a download that did not hash to what was promised;
// nothing of it was cached. It matches ErrChecksum.
type ChecksumError struct {
	URL, Want, Got string
	// Status is the server's HTTP status line, when known.
	Status string
}

func (e *ChecksumError) Error() string {
	got := e.Got
	if got == "" {
		got = "another sum"
	}
	s := fmt.Sprintf("%s: want sha256 %s, got %s", e.URL, e.Want, got)
	if e.Status != "" {
		s += " (server said " + e.Status + ")"
	}
	return s
}

func (e *ChecksumError) Unwrap() error { return ErrChecksum }

// Fetch returns the cached file for r, downloading it first when needed
// (resuming a partial download). A file that does not hash to r.SHA256 is
// deleted and reported as a *ChecksumError.
func (c *Cache) Fetch(ctx context.Context, r Request) (string, error) {
	if len(r.SHA256) != 64 {
		return "", fmt.Errorf("fetch %s: %q is not a sha256", r.URL, r.SHA256)
	}
	if c.Has(r.SHA256) {
		return c.Path(r.SHA256), nil
	}
	if c.Offline {
		return "", fmt.Errorf("fetch %s: %w", r.URL, ErrOffline)
	}
	partial := c.PartialPath(r.SHA256)
	for _, d := range []string{filepath.Dir(partial), filepath.Dir(c.Path(r.SHA256))} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", fmt.Errorf("create cache directory: %w", err)
		}
	}
	want, _ := hex.DecodeString(r.SHA256)
	req, err := grab.NewRequest(partial, r.URL)
	if err != nil {
		return "", fmt.Errorf("fetch %s: %w", r.URL, err)
	}
	req = req.WithContext(ctx)
	req.SetChecksum(sha256.New(), want, true)
	req.IgnoreRemoteTime = true
	client := c.Client
	if client == nil {
		client = grab.NewClient()
		client.UserAgent = "thinhost"
	}
	if fi, err := os.Stat(partial); err == nil && fi.Size() > 0 {
		c.log().Info("resuming download", "what", r.Label, "have", fi.Size())
	}
	c.log().Debug("downloading", "what", r.Label, "url", r.URL)
	resp := client.Do(req)
	c.showProgress(r.Label, resp)
	if err := resp.Err(); err != nil {
		if errors.Is(err, grab.ErrBadChecksum) {
			// grab deleted the file; make sure nothing is left behind.
			_ = os.Remove(partial)
			ce := &ChecksumError{URL: r.URL, Want: r.SHA256}
			if resp.HTTPResponse != nil {
				ce.Status = resp.HTTPResponse.Status
			}
			return "", ce
		}
		return "", fmt.Errorf("fetch %s: %w", r.URL, err)
	}
	// grab verified the sum; check again what is published, since a cache
	// entry is trusted forever afterwards.
	sum, err := FileSHA256(partial)
	if err != nil {
		return "", fmt.Errorf("hash download of %s: %w", r.URL, err)
	}
	if sum != r.SHA256 {
		_ = os.Remove(partial)
		return "", &ChecksumError{URL: r.URL, Want: r.SHA256, Got: sum}
	}
	if err := os.Rename(partial, c.Path(r.SHA256)); err != nil {
		return "", fmt.Errorf("store %s in the cache: %w", r.URL, err)
	}
	c.log().Debug("downloaded", "what", r.Label, "bytes", resp.BytesComplete(), "duration", resp.Duration().Round(time.Millisecond))
	return c.Path(r.SHA256), nil
}

// Progress is how a download goes, for whoever shows it: the library
// draws nothing.
type Progress struct {
	// Label names the download.
	Label string
	// Done bytes of Total (0: not known yet).
	Done, Total int64
	// Finished is set on the download's last report.
	Finished bool
}

func (c *Cache) showProgress(label string, resp *grab.Response) {
	if c.Progress == nil {
		<-resp.Done
		return
	}
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-resp.Done:
			c.Progress(Progress{Label: label, Done: resp.BytesComplete(), Total: max(resp.Size(), 0), Finished: true})
			return
		case <-t.C:
			c.Progress(Progress{Label: label, Done: resp.BytesComplete(), Total: max(resp.Size(), 0)})
		}
	}
}

func (c *Cache) log() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

// FileSHA256 is the hex sha256 of the file at path.
func FileSHA256(path string) (string, error) {
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

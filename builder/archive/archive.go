// Package archive takes a host's contents from Debian's archive, not from
// the build machine: it downloads each suite's InRelease and checks its
// OpenPGP signature against Debian's archive keys (carried in this
// package), downloads the Packages indexes the signed file lists and
// checks them against its sha256 sums, resolves packages with their
// Depends and Pre-Depends (alternatives, virtual packages, version
// constraints), pins the result in a lock file, and downloads (sha256 from
// the signed index, through the builder's content-addressed cache) and
// unpacks .debs in Go. No apt, dpkg or root on the build machine.
//
// The builder calls it; Depends decide what is downloaded and searched, and
// the builder then ships only the files the host needs.
package archive

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/xi2/xz"
	"pault.ag/go/debian/version"

	"github.com/thinhost/thinhost/builder/cache"
)

// Source is one suite of an archive.
type Source struct {
	// URL is the archive's base, e.g. http://deb.debian.org/debian.
	URL string `json:"url"`
	// Suite is its name or codename under dists/.
	Suite string `json:"suite"`
	// Components are read from it, e.g. main, non-free-firmware.
	Components []string `json:"components"`
}

// Debian's archives.
const (
	DebianURL         = "http://deb.debian.org/debian"
	DebianSecurityURL = "http://deb.debian.org/debian-security"
)

// DefaultSources are Debian 12's: bookworm with its updates and security
// fixes, main only.
func DefaultSources() []Source {
	return []Source{
		{URL: DebianURL, Suite: "bookworm", Components: []string{"main"}},
		{URL: DebianURL, Suite: "bookworm-updates", Components: []string{"main"}},
		{URL: DebianSecurityURL, Suite: "bookworm-security", Components: []string{"main"}},
	}
}

// Config says where packages come from.
type Config struct {
	Sources []Source
	// Arch is the Debian architecture (amd64); packages of Arch and "all"
	// are read.
	Arch string
	// Keys verify InRelease files; nil uses DebianKeys.
	Keys openpgp.EntityList
	// Cache stores every download under its sha256.
	Cache *cache.Cache
	// Client fetches InRelease files (which have no sum to check before
	// the signature); nil uses http.DefaultClient.
	Client *http.Client
	// Now is the clock Valid-Until is checked against; nil uses time.Now.
	Now func() time.Time
	Log *slog.Logger
}

// Index is every package the sources list.
type Index struct {
	arch     string
	releases map[string]*Release // by suite as configured
	byName   map[string][]*Package
	// provides maps a virtual name to the packages providing it, with the
	// version they provide ("" for none).
	provides map[string][]provider
}

type provider struct {
	pkg     *Package
	version string
}

// Release returns the verified release of suite as configured.
func (ix *Index) Release(suite string) *Release { return ix.releases[suite] }

// Versions lists name's packages, newest first.
func (ix *Index) Versions(name string) []*Package { return ix.byName[name] }

// Load reads and verifies every source's index.
func Load(ctx context.Context, cfg Config) (*Index, error) {
	if cfg.Keys == nil {
		keys, err := DebianKeys()
		if err != nil {
			return nil, err
		}
		cfg.Keys = keys
	}
	if cfg.Arch == "" {
		cfg.Arch = "amd64"
	}
	ix := &Index{arch: cfg.Arch, releases: map[string]*Release{}, byName: map[string][]*Package{}, provides: map[string][]provider{}}
	for _, src := range cfg.Sources {
		rel, err := loadRelease(ctx, cfg, src)
		if err != nil {
			return nil, err
		}
		ix.releases[src.Suite] = rel
		for _, comp := range src.Components {
			if err := ix.loadPackages(ctx, cfg, src, rel, comp); err != nil {
				return nil, err
			}
		}
	}
	for _, ps := range ix.byName {
		sort.SliceStable(ps, func(i, j int) bool { return versionLess(ps[j], ps[i]) })
	}
	return ix, nil
}

func versionLess(a, b *Package) bool { return version.Compare(a.V(), b.V()) < 0 }

func (cfg Config) log() *slog.Logger {
	if cfg.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return cfg.Log
}

// loadRelease downloads, verifies and parses src's InRelease. Offline, it
// uses the copy the last online run verified and kept.
func loadRelease(ctx context.Context, cfg Config, src Source) (*Release, error) {
	url := strings.TrimSuffix(src.URL, "/") + "/dists/" + src.Suite + "/InRelease"
	data, err := fetchInRelease(ctx, cfg, url)
	if err != nil {
		return nil, err
	}
	text, signer, err := VerifyInRelease(data, cfg.Keys)
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", url, err)
	}
	rel, err := ParseRelease(text)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", url, err)
	}
	rel.Signer = signer
	if rel.Suite != src.Suite && rel.Codename != src.Suite {
		return nil, fmt.Errorf("verify %s: it is the release of %q (%s), not %q: the server answered with another suite's index", url, rel.Codename, rel.Suite, src.Suite)
	}
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	if !rel.ValidUntil.IsZero() && now().After(rel.ValidUntil) {
		return nil, fmt.Errorf("verify %s: it expired on %s (Valid-Until): the mirror serves an outdated index", url, rel.ValidUntil.Format(time.RFC1123))
	}
	cfg.log().Info("archive index verified", "suite", src.Suite, "date", rel.Date.Format(time.DateOnly), "signed_by", signer)
	return rel, nil
}

// fetchInRelease downloads an InRelease file; a verified copy is kept in
// the cache under the URL's name, for offline builds.
func fetchInRelease(ctx context.Context, cfg Config, url string) ([]byte, error) {
	kept := cfg.Cache.Dir + "/inrelease/" + strings.NewReplacer("/", "_", ":", "_").Replace(url)
	if cfg.Cache.Offline {
		b, err := os.ReadFile(kept)
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w (no copy from an earlier online build)", url, cache.ErrOffline)
		}
		return b, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	req.Header.Set("User-Agent", "thinhost")
	client := cfg.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %s: %s", url, resp.Status)
	}
	// Debian's largest InRelease is about 150 KiB.
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	if _, _, err := VerifyInRelease(b, cfg.Keys); err == nil {
		if err := os.MkdirAll(cfg.Cache.Dir+"/inrelease", 0o755); err == nil {
			tmp := kept + ".tmp"
			if os.WriteFile(tmp, b, 0o644) == nil {
				os.Rename(tmp, kept)
			}
		}
	}
	return b, nil
}

// loadPackages fetches one component's Packages index (the compressed
// form the signed Release lists, by hash where the archive offers it),
// checks its sha256 and adds its packages.
func (ix *Index) loadPackages(ctx context.Context, cfg Config, src Source, rel *Release, comp string) error {
	base := strings.TrimSuffix(src.URL, "/") + "/dists/" + src.Suite + "/"
	dir := comp + "/binary-" + cfg.Arch + "/"
	var name string
	var sum FileSum
	for _, ext := range []string{".xz", ".gz", ""} {
		if s, ok := rel.Files[dir+"Packages"+ext]; ok {
			name, sum = dir+"Packages"+ext, s
			break
		}
	}
	if name == "" {
		return fmt.Errorf("read %sInRelease: it lists no %sPackages index: is %q a component of %s?", base, dir, comp, src.Suite)
	}
	url := base + name
	if rel.AcquireByHash {
		url = base + dir + "by-hash/SHA256/" + sum.SHA256
	}
	path, err := cfg.Cache.Fetch(ctx, cache.Request{URL: url, SHA256: sum.SHA256, Label: "index " + src.Suite + "/" + comp})
	var ce *cache.ChecksumError
	if errors.As(err, &ce) {
		return fmt.Errorf("fetch %s%s: %w; the signed InRelease promises sha256 %s: nothing was cached", base, name, err, sum.SHA256)
	}
	if err != nil {
		return fmt.Errorf("fetch %s%s: %w", base, name, err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var r io.Reader = bytes.NewReader(raw)
	switch {
	case strings.HasSuffix(name, ".xz"):
		if r, err = xz.NewReader(r, 0); err != nil {
			return fmt.Errorf("read %s%s: %w", base, name, err)
		}
	case strings.HasSuffix(name, ".gz"):
		if r, err = gzip.NewReader(r); err != nil {
			return fmt.Errorf("read %s%s: %w", base, name, err)
		}
	}
	n := 0
	skipped, err := ParsePackages(r, func(p *Package) error {
		if p.Arch != cfg.Arch && p.Arch != "all" {
			return nil
		}
		p.Suite, p.URL = src.Suite, src.URL
		ix.add(p)
		n++
		return nil
	})
	if err != nil {
		return fmt.Errorf("read %s%s: %w", base, name, err)
	}
	cfg.log().Debug("archive packages", "suite", src.Suite, "component", comp, "packages", n, "skipped", skipped)
	return nil
}

func (ix *Index) add(p *Package) {
	ix.byName[p.Name] = append(ix.byName[p.Name], p)
	if p.Provides == "" {
		return
	}
	for _, alt := range strings.Split(p.Provides, ",") {
		name, ver := parseProvide(alt)
		if name != "" {
			ix.provides[name] = append(ix.provides[name], provider{pkg: p, version: ver})
		}
	}
}

// parseProvide reads one Provides entry: "name" or "name (= version)",
// with any ":arch" qualifier dropped.
func parseProvide(s string) (name, ver string) {
	s = strings.TrimSpace(s)
	name, rest, _ := strings.Cut(s, "(")
	name = strings.TrimSpace(name)
	name, _, _ = strings.Cut(name, ":")
	if rest != "" {
		rest = strings.TrimSuffix(strings.TrimSpace(rest), ")")
		if v, ok := strings.CutPrefix(strings.TrimSpace(rest), "="); ok {
			ver = strings.TrimSpace(v)
		}
	}
	return name, ver
}

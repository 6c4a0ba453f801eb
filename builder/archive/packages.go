package archive

import (
	"bufio"
	"fmt"
	"io"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"

	"pault.ag/go/debian/version"
)

// Package is one binary package an index lists.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
	// Suite and URL say where it comes from: the archive's base URL and
	// the suite whose signed index listed it.
	Suite string `json:"suite"`
	URL   string `json:"url"`
	// Filename is the .deb's path under URL (pool/...); SHA256 and Size
	// are what the signed index promises for it.
	Filename string `json:"filename"`
	SHA256   string `json:"sha256"`
	Size     int64  `json:"size"`

	// Relations, as the index writes them (not kept in the lock file).
	Depends    string `json:"-"`
	PreDepends string `json:"-"`
	Provides   string `json:"-"`

	ver *version.Version
}

// ID is "name version arch".
func (p *Package) ID() string { return p.Name + " " + p.Version + " " + p.Arch }

// DebURL is where the .deb is downloaded from.
func (p *Package) DebURL() string {
	parts := strings.Split(p.Filename, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.TrimSuffix(p.URL, "/") + "/" + strings.Join(parts, "/")
}

// V is the parsed version.
func (p *Package) V() version.Version {
	if p.ver == nil {
		v, err := version.Parse(p.Version)
		if err != nil {
			v = version.Version{Version: p.Version}
		}
		p.ver = &v
	}
	return *p.ver
}

var (
	pkgName = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	hexSum  = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// valid reports why p cannot be used, or "" when it can: an index is
// verified, but its fields still go into URLs and file names.
func (p *Package) valid() string {
	switch {
	case !pkgName.MatchString(p.Name):
		return "bad package name"
	case p.Version == "" || strings.ContainsAny(p.Version, " /\t"):
		return "bad version"
	case !hexSum.MatchString(p.SHA256):
		return "no sha256"
	case !strings.HasPrefix(p.Filename, "pool/") || path.Clean(p.Filename) != p.Filename || strings.Contains(p.Filename, ".."):
		return "bad Filename"
	case !strings.HasSuffix(p.Filename, ".deb"):
		return "Filename is not a .deb"
	}
	if _, err := version.Parse(p.Version); err != nil {
		return "bad version"
	}
	return ""
}

// ParsePackages reads a Packages index, calling fn for each usable
// stanza; it returns how many stanzas were skipped as unusable.
func ParsePackages(r io.Reader, fn func(*Package) error) (skipped int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 256<<10), 4<<20)
	var cur *Package
	var last string
	flush := func() error {
		if cur == nil {
			return nil
		}
		p := cur
		cur = nil
		if p.valid() != "" {
			skipped++
			return nil
		}
		return fn(p)
	}
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			if err := flush(); err != nil {
				return skipped, err
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			// A continuation: only Description has them in practice;
			// a relation field continued is joined.
			if cur != nil {
				switch last {
				case "Depends":
					cur.Depends += " " + strings.TrimSpace(line)
				case "Pre-Depends":
					cur.PreDepends += " " + strings.TrimSpace(line)
				case "Provides":
					cur.Provides += " " + strings.TrimSpace(line)
				}
			}
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if cur == nil {
			cur = &Package{}
		}
		value = strings.TrimSpace(value)
		last = name
		switch name {
		case "Package":
			cur.Name = value
		case "Version":
			cur.Version = value
		case "Architecture":
			cur.Arch = value
		case "Filename":
			cur.Filename = value
		case "Size":
			cur.Size, _ = strconv.ParseInt(value, 10, 64)
		case "SHA256":
			cur.SHA256 = strings.ToLower(value)
		case "Depends":
			cur.Depends = value
		case "Pre-Depends":
			cur.PreDepends = value
		case "Provides":
			cur.Provides = value
		}
	}
	if err := sc.Err(); err != nil {
		return skipped, fmt.Errorf("read Packages: %w", err)
	}
	return skipped, flush()
}

package archive

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
)

// ErrSignature means an InRelease file is not signed by a trusted key.
var ErrSignature = errors.New("not signed by a trusted archive key")

//go:embed keys/*.gpg
var keyFiles embed.FS

// DebianKeys are Debian's archive signing keys for bookworm and trixie
// (main archive, security archive and stable release keys), as Debian's
// debian-archive-keyring 2023.3+deb12u2 ships them in
// /usr/share/keyrings.
func DebianKeys() (openpgp.EntityList, error) {
	var all openpgp.EntityList
	names, _ := fs.Glob(keyFiles, "keys/*.gpg")
	for _, n := range names {
		b, _ := keyFiles.ReadFile(n)
		el, err := openpgp.ReadKeyRing(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("read archive key %s: %w", n, err)
		}
		all = append(all, el...)
	}
	return all, nil
}

// FileSum is a file an index lists: its sha256 and size.
type FileSum struct {
	SHA256 string
	Size   int64
}

// Release is a suite's verified InRelease.
type Release struct {
	Suite, Codename string
	Date            time.Time
	// ValidUntil is zero when the file sets none.
	ValidUntil time.Time
	// NotAutomatic suites (backports) are used for packages named with
	// the suite, and for dependencies nothing else satisfies.
	NotAutomatic  bool
	AcquireByHash bool
	Components    []string
	// Files maps each path under dists/SUITE/ to its sum.
	Files map[string]FileSum
	// Signer names the key that signed it.
	Signer string
}

// VerifyInRelease checks that data is a clearsigned message carrying a
// valid signature by one of keys (Debian signs with several keys; one
// trusted, valid signature is enough), and returns the signed text alone:
// nothing outside the signature is ever read.
func VerifyInRelease(data []byte, keys openpgp.EntityList) (text []byte, signer string, err error) {
	if b, _ := clearsign.Decode(data); b == nil {
		return nil, "", fmt.Errorf("%w: not an OpenPGP clearsigned message", ErrSignature)
	}
	var last error
	for _, e := range keys {
		b, _ := clearsign.Decode(data)
		if _, err := b.VerifySignature(openpgp.EntityList{e}, nil); err != nil {
			last = err
			continue
		}
		name := fmt.Sprintf("%X", e.PrimaryKey.Fingerprint)
		for id := range e.Identities {
			name = id
			break
		}
		return b.Plaintext, name, nil
	}
	return nil, "", fmt.Errorf("%w (%v)", ErrSignature, last)
}

// ParseRelease reads a Release file's fields (the signed text of an
// InRelease).
func ParseRelease(text []byte) (*Release, error) {
	r := &Release{Files: map[string]FileSum{}}
	var err error
	for _, f := range parseStanza(string(text)) {
		switch f.name {
		case "Suite":
			r.Suite = f.value
		case "Codename":
			r.Codename = f.value
		case "Date":
			if r.Date, err = parseDate(f.value); err != nil {
				return nil, fmt.Errorf("read Release Date: %w", err)
			}
		case "Valid-Until":
			if r.ValidUntil, err = parseDate(f.value); err != nil {
				return nil, fmt.Errorf("read Release Valid-Until: %w", err)
			}
		case "NotAutomatic":
			r.NotAutomatic = f.value == "yes"
		case "Acquire-By-Hash":
			r.AcquireByHash = f.value == "yes"
		case "Components":
			r.Components = strings.Fields(f.value)
		case "SHA256":
			for _, line := range strings.Split(f.value, "\n") {
				parts := strings.Fields(line)
				if len(parts) == 0 {
					continue
				}
				if len(parts) != 3 || !hexSum.MatchString(strings.ToLower(parts[0])) {
					return nil, fmt.Errorf("read Release SHA256: bad line %q", line)
				}
				size, err := strconv.ParseInt(parts[1], 10, 64)
				if err != nil || size < 0 {
					return nil, fmt.Errorf("read Release SHA256: bad size in %q", line)
				}
				r.Files[parts[2]] = FileSum{SHA256: strings.ToLower(parts[0]), Size: size}
			}
		}
	}
	if r.Suite == "" && r.Codename == "" {
		return nil, errors.New("read Release: neither Suite nor Codename")
	}
	if len(r.Files) == 0 {
		return nil, errors.New("read Release: no SHA256 file list")
	}
	return r, nil
}

func parseDate(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC1123, time.RFC1123Z, "Mon, 2 Jan 2006 15:04:05 MST", "Mon, 2 Jan 2006 15:04:05 -0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 1123 date", s)
}

// field is one "Name: value" of a deb822 stanza; continuation lines are
// joined with "\n" (the first line may be empty, as in SHA256).
type field struct{ name, value string }

// parseStanza splits one deb822 stanza into its fields, in order.
func parseStanza(s string) []field {
	var out []field
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(out) > 0 {
				out[len(out)-1].value += "\n" + strings.TrimSpace(line)
			}
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		out = append(out, field{name: name, value: strings.TrimSpace(value)})
	}
	return out
}

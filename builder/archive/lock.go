package archive

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
)

// LockVersion is the lock file format this package writes.
const LockVersion = 1

// ErrLockStale means a lock file no longer matches what the profile asks
// for (other sources, architecture or packages).
var ErrLockStale = errors.New("the lock file does not match the profile")

// Lock pins every package of a host: what the profile asked for, from
// where, and the exact packages (version, sha256) that satisfied it. A
// build from a lock file needs neither the archive's indexes nor their
// signatures: the sums in it were taken from signed indexes when it was
// written.
type Lock struct {
	Version  int        `json:"version"`
	Arch     string     `json:"arch"`
	Sources  []Source   `json:"sources"`
	Requests []string   `json:"requests"`
	Packages []*Package `json:"packages"`
}

// NewLock records the packages resolved for requests.
func NewLock(arch string, sources []Source, reqs []Request, pkgs []*Package) *Lock {
	l := &Lock{Version: LockVersion, Arch: arch, Sources: sources, Packages: pkgs}
	for _, r := range reqs {
		l.Requests = append(l.Requests, r.String())
	}
	sort.Strings(l.Requests)
	l.Requests = slices.Compact(l.Requests)
	sort.Slice(l.Packages, func(i, j int) bool { return l.Packages[i].Name < l.Packages[j].Name })
	return l
}

// Matches reports whether l was written for these sources, architecture
// and requests; if not, the reason.
func (l *Lock) Matches(arch string, sources []Source, reqs []Request) (bool, string) {
	want := NewLock(arch, sources, reqs, nil)
	switch {
	case l.Arch != want.Arch:
		return false, fmt.Sprintf("it is for %s, the profile builds %s", l.Arch, want.Arch)
	case !sameSources(l.Sources, want.Sources):
		return false, "the profile's suites or components changed"
	case !slices.Equal(l.Requests, want.Requests):
		return false, "the profile asks for other packages"
	}
	return true, ""
}

func sameSources(a, b []Source) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// Versions maps each locked package to its version (Resolve's prefer).
func (l *Lock) Versions() map[string]string {
	m := map[string]string{}
	for _, p := range l.Packages {
		m[p.Name] = p.Version
	}
	return m
}

// Encode is the lock file's bytes: indented JSON, one package per object,
// sorted, so a change reads well in a diff.
func (l *Lock) Encode() []byte {
	b, _ := json.MarshalIndent(l, "", "  ")
	return append(b, '\n')
}

// WriteLock writes l to path atomically.
func WriteLock(path string, l *Lock) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return fmt.Errorf("write lock file %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(l.Encode()); err != nil {
		tmp.Close()
		return fmt.Errorf("write lock file %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write lock file %s: %w", path, err)
	}
	os.Chmod(tmp.Name(), 0o644)
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write lock file %s: %w", path, err)
	}
	return nil
}

// ReadLock reads and checks a lock file; a missing file is an error that
// matches os.ErrNotExist.
func ReadLock(path string) (*Lock, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read lock file: %w", err)
	}
	var l Lock
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("read lock file %s: %w (delete it, or run thinhost lock, to write it anew)", path, err)
	}
	if l.Version != LockVersion {
		return nil, fmt.Errorf("read lock file %s: format version %d, this thinhost reads %d: run thinhost lock to write it anew", path, l.Version, LockVersion)
	}
	seen := map[string]bool{}
	for i, p := range l.Packages {
		if p == nil {
			return nil, fmt.Errorf("read lock file %s: package %d is empty", path, i+1)
		}
		if why := p.valid(); why != "" {
			return nil, fmt.Errorf("read lock file %s: package %q (%d): %s", path, p.Name, i+1, why)
		}
		if p.URL == "" || p.Suite == "" {
			return nil, fmt.Errorf("read lock file %s: package %q: no url or suite", path, p.Name)
		}
		if seen[p.Name] {
			return nil, fmt.Errorf("read lock file %s: package %q is listed twice", path, p.Name)
		}
		seen[p.Name] = true
	}
	return &l, nil
}

// Change is one package's difference between two locks.
type Change struct {
	Name string
	// Old or New is "" when the package was added or dropped.
	Old, New string
}

func (c Change) String() string {
	switch {
	case c.Old == "":
		return fmt.Sprintf("+ %s %s", c.Name, c.New)
	case c.New == "":
		return fmt.Sprintf("- %s %s", c.Name, c.Old)
	}
	return fmt.Sprintf("  %s %s -> %s", c.Name, c.Old, c.New)
}

// Diff lists what changes from old to new (old may be nil), by name.
func Diff(old, new *Lock) []Change {
	ov, nv := map[string]string{}, map[string]string{}
	if old != nil {
		ov = old.Versions()
	}
	if new != nil {
		nv = new.Versions()
	}
	var out []Change
	for n, v := range nv {
		if ov[n] != v {
			out = append(out, Change{Name: n, Old: ov[n], New: v})
		}
	}
	for n, v := range ov {
		if _, ok := nv[n]; !ok {
			out = append(out, Change{Name: n, Old: v})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

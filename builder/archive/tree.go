package archive

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// ErrNotInTree means no unpacked package has a path.
var ErrNotInTree = errors.New("no package of the lock file has it")

// Tree is the union of unpacked packages: the file system they would make
// if installed, looked up without installing anything. Paths are
// absolute ("/usr/sbin/smbd"); symbolic links resolve inside the tree,
// never on the build machine.
type Tree struct {
	entries map[string]treeEntry
}

type treeEntry struct {
	pkg  *Package
	file string // the unpacked file on disk
	link string // the link's target, for symbolic links
}

// TreePart is one unpacked package.
type TreePart struct {
	Package *Package
	Dir     string
}

// NewTree indexes parts. Where two packages ship one path, the first by
// package name keeps it (Debian's diversions and alternatives are not
// modelled; thinhost's packages do not clash).
func NewTree(parts []TreePart) (*Tree, error) {
	sort.Slice(parts, func(i, j int) bool { return parts[i].Package.Name < parts[j].Package.Name })
	t := &Tree{entries: map[string]treeEntry{}}
	for _, part := range parts {
		err := filepath.WalkDir(part.Dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			rel, _ := filepath.Rel(part.Dir, p)
			abs := "/" + filepath.ToSlash(rel)
			if _, taken := t.entries[abs]; taken {
				return nil
			}
			e := treeEntry{pkg: part.Package, file: p}
			if d.Type()&fs.ModeSymlink != 0 {
				if e.link, err = os.Readlink(p); err != nil {
					return err
				}
			} else if !d.Type().IsRegular() {
				return nil
			}
			t.entries[abs] = e
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("index package %s: %w", part.Package.Name, err)
		}
	}
	return t, nil
}

// Paths lists, sorted, the tree's paths (regular files and symbolic
// links, as their packages spell them) for which keep is true.
func (t *Tree) Paths(keep func(path string, pkg *Package) bool) []string {
	var out []string
	for p, e := range t.entries {
		if keep(p, e.pkg) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// File is a regular file of the tree.
type File struct {
	// Path is where the tree has it after following links; File is the
	// unpacked copy on disk; Package ships it.
	Path, File string
	Package    *Package
}

// Lookup follows p's symbolic links inside the tree to a regular file. On
// Debian's merged /usr, /lib/x and /usr/lib/x are one file, so either
// spelling finds what a package ships under the other.
func (t *Tree) Lookup(p string) (File, error) {
	cur := path.Clean("/" + p)
	for hops := 0; hops < 40; hops++ {
		e, name, ok := t.entry(cur)
		if !ok {
			return File{}, fmt.Errorf("%s: %w", p, ErrNotInTree)
		}
		if e.link == "" {
			return File{Path: name, File: e.file, Package: e.pkg}, nil
		}
		if strings.HasPrefix(e.link, "/") {
			cur = path.Clean(e.link)
		} else {
			cur = path.Clean(path.Join(path.Dir(name), e.link))
		}
	}
	return File{}, fmt.Errorf("%s: too many levels of symbolic links", p)
}

func (t *Tree) entry(p string) (treeEntry, string, bool) {
	for _, c := range usrAliases(p) {
		if e, ok := t.entries[c]; ok {
			return e, c, true
		}
	}
	return treeEntry{}, "", false
}

// usrAliases are p and its other spelling on a merged /usr.
func usrAliases(p string) []string {
	for _, top := range []string{"/bin/", "/sbin/", "/lib/", "/lib64/"} {
		if strings.HasPrefix(p, top) {
			return []string{p, "/usr" + p}
		}
		if strings.HasPrefix(p, "/usr"+top) {
			return []string{p, strings.TrimPrefix(p, "/usr")}
		}
	}
	return []string{p}
}

// libraryDirs are where the dynamic loader looks after an object's
// RUNPATH, as Debian's ld.so.conf sets it for amd64.
var libraryDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}

// Libraries returns what the dynamic loader needs to run the ELF objects
// at paths (programs or shared libraries, looked up in the tree): their
// interpreter and every DT_NEEDED library, transitively, found as ld.so
// would (RUNPATH or RPATH with $ORIGIN, then the default directories), at
// the paths it finds them. Non-ELF files need nothing.
func (t *Tree) Libraries(paths ...string) ([]File, error) {
	seen := map[string]bool{}
	var out []File
	var visit func(string) error
	visit = func(p string) error {
		f, err := t.Lookup(p)
		if err != nil {
			return err
		}
		if seen[f.Path] {
			return nil
		}
		seen[f.Path] = true
		ef, err := elf.Open(f.File)
		if err != nil {
			return nil // data files and scripts
		}
		defer ef.Close()
		for _, prog := range ef.Progs {
			if prog.Type == elf.PT_INTERP {
				b := make([]byte, prog.Filesz)
				if _, err := prog.ReadAt(b, 0); err == nil {
					interp := strings.TrimRight(string(b), "\x00")
					if !seen["interp:"+interp] {
						seen["interp:"+interp] = true
						// ld.so is loaded already: a DT_NEEDED of its
						// name (libc's) is not searched for again.
						seen["soname:"+path.Base(interp)] = true
						lf, err := t.Lookup(interp)
						if err != nil {
							return fmt.Errorf("the dynamic loader of %s: %w", p, err)
						}
						out = append(out, File{Path: interp, File: lf.File, Package: lf.Package})
					}
				}
			}
		}
		needed, err := ef.DynString(elf.DT_NEEDED)
		if err != nil {
			return nil // static
		}
		var search []string
		for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
			rp, _ := ef.DynString(tag)
			for _, r := range rp {
				for _, dir := range strings.Split(r, ":") {
					dir = strings.ReplaceAll(strings.ReplaceAll(dir, "${ORIGIN}", "$ORIGIN"), "$ORIGIN", path.Dir(f.Path))
					if dir != "" {
						search = append(search, dir)
					}
				}
			}
		}
		search = append(search, libraryDirs...)
		for _, lib := range needed {
			if seen["soname:"+lib] {
				continue
			}
			found := false
			for _, dir := range search {
				cand := path.Join(dir, lib)
				lf, err := t.Lookup(cand)
				if err != nil {
					continue
				}
				found = true
				seen["soname:"+lib] = true
				if !seen["lib:"+cand] {
					seen["lib:"+cand] = true
					out = append(out, File{Path: cand, File: lf.File, Package: lf.Package})
				}
				if err := visit(cand); err != nil {
					return err
				}
				break
			}
			if !found {
				return fmt.Errorf("%s needs %s: %w (searched %s)", p, lib, ErrNotInTree, strings.Join(search, ":"))
			}
		}
		return nil
	}
	for _, p := range paths {
		if err := visit(p); err != nil {
			return nil, err
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

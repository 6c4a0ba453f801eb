package archive

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"pault.ag/go/debian/dependency"
)

// ErrUnresolvable means a package or one of its dependencies cannot be
// satisfied from the sources.
var ErrUnresolvable = errors.New("cannot be satisfied")

// Request is a package asked for by name, optionally from one suite
// ("linux-image-amd64/bookworm-backports", as apt writes it).
type Request struct {
	Name, Suite string
}

// ParseRequest reads "name" or "name/suite".
func ParseRequest(s string) (Request, error) {
	name, suite, _ := strings.Cut(strings.TrimSpace(s), "/")
	if !pkgName.MatchString(name) {
		return Request{}, fmt.Errorf("%q is not a Debian package name", s)
	}
	return Request{Name: name, Suite: suite}, nil
}

func (r Request) String() string {
	if r.Suite == "" {
		return r.Name
	}
	return r.Name + "/" + r.Suite
}

// Resolve picks a package for every request and, transitively, for every
// Pre-Depends and Depends relation of what it picked:
//   - a name is satisfied by the newest version its suites offer that meets
//     the relation's version constraint, from the automatic suites first and
//     from NotAutomatic ones (backports) only when nothing else will do or
//     the request names that suite;
//   - alternatives ("a | b") are tried in order, and one already picked
//     wins;
//   - a virtual name is satisfied by a package providing it (one already
//     picked, else the first by name);
//   - prefer, when given, keeps the versions of an earlier lock file
//     wherever they still satisfy.
//
// Conflicts and Breaks are not considered: the builder unpacks files from
// packages, it does not install a system with dpkg. The result is sorted
// by name.
func (ix *Index) Resolve(reqs []Request, prefer map[string]string) ([]*Package, error) {
	picked := map[string]*Package{}
	var queue []*Package
	for _, r := range reqs {
		if r.Suite != "" {
			if _, ok := ix.releases[r.Suite]; !ok {
				return nil, fmt.Errorf("package %s: %w: no source has suite %q (add it to the packages block's suites)", r, ErrUnresolvable, r.Suite)
			}
		}
		p := ix.candidate(r.Name, nil, r.Suite, prefer)
		if p == nil {
			if provs := ix.provides[r.Name]; len(provs) > 0 {
				return nil, fmt.Errorf("package %s: %w: it is a virtual package; name one of %s", r, ErrUnresolvable, providerNames(provs))
			}
			return nil, fmt.Errorf("package %s: %w: no source lists it for %s", r, ErrUnresolvable, ix.arch)
		}
		if old, ok := picked[p.Name]; ok {
			if old != p {
				return nil, fmt.Errorf("package %s: asked for twice, as %s %s (%s) and %s %s (%s): name it once", r.Name, old.Name, old.Version, old.Suite, p.Name, p.Version, p.Suite)
			}
			continue
		}
		picked[p.Name] = p
		queue = append(queue, p)
	}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, field := range []string{p.PreDepends, p.Depends} {
			if strings.TrimSpace(field) == "" {
				continue
			}
			dep, err := dependency.Parse(field)
			if err != nil {
				return nil, fmt.Errorf("package %s (%s): read its dependencies %q: %w", p.Name, p.Version, field, err)
			}
			for _, rel := range dep.Relations {
				alts := possibilities(rel, ix.arch)
				if len(alts) == 0 || ix.satisfied(alts, picked) {
					continue
				}
				next := ix.choose(alts, picked, prefer)
				if next == nil {
					return nil, fmt.Errorf("package %s %s (%s) depends on %q: %w from the sources' suites", p.Name, p.Version, p.Suite, relString(alts), ErrUnresolvable)
				}
				if _, ok := picked[next.Name]; ok {
					// Another version of it is already picked but does
					// not satisfy this relation.
					return nil, fmt.Errorf("package %s %s (%s) depends on %q, but %s %s was picked for another package: %w together", p.Name, p.Version, p.Suite, relString(alts), next.Name, picked[next.Name].Version, ErrUnresolvable)
				}
				picked[next.Name] = next
				queue = append(queue, next)
			}
		}
	}
	out := make([]*Package, 0, len(picked))
	for _, p := range picked {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// possibilities are the alternatives of one relation that apply to arch
// (architecture restrictions such as [!amd64] drop the others).
func possibilities(rel dependency.Relation, arch string) []dependency.Possibility {
	var out []dependency.Possibility
	for _, p := range rel.Possibilities {
		if p.Substvar {
			continue
		}
		if p.Architectures != nil && len(p.Architectures.Architectures) > 0 {
			a, err := dependency.ParseArch(arch)
			if err == nil && !p.Architectures.Matches(a) {
				continue
			}
		}
		out = append(out, p)
	}
	return out
}

func relString(alts []dependency.Possibility) string {
	var s []string
	for _, a := range alts {
		x := a.Name
		if a.Version != nil {
			x += " (" + a.Version.Operator + " " + a.Version.Number + ")"
		}
		s = append(s, x)
	}
	return strings.Join(s, " | ")
}

// satisfied reports whether a picked package (or what it provides)
// satisfies one of alts.
func (ix *Index) satisfied(alts []dependency.Possibility, picked map[string]*Package) bool {
	for _, a := range alts {
		if p, ok := picked[a.Name]; ok && versionOK(a, p.Version) {
			return true
		}
		for _, pr := range ix.provides[a.Name] {
			if picked[pr.pkg.Name] == pr.pkg && provideOK(a, pr.version) {
				return true
			}
		}
	}
	return false
}

// choose picks the package for an unsatisfied relation, as apt does with
// backports pinned low: the first alternative a real package from an
// automatic suite satisfies (a locked version first), else one a provider
// does; only then the same from NotAutomatic suites.
func (ix *Index) choose(alts []dependency.Possibility, picked map[string]*Package, prefer map[string]string) *Package {
	for _, a := range alts {
		a := a
		if p := ix.locked(a.Name, &a, prefer); p != nil {
			return p
		}
	}
	for _, auto := range []bool{true, false} {
		for _, a := range alts {
			a := a
			if p := ix.candidateIn(a.Name, &a, auto); p != nil {
				return p
			}
		}
		for _, a := range alts {
			var provs []provider
			for _, pr := range ix.provides[a.Name] {
				if provideOK(a, pr.version) && ix.automatic(pr.pkg) == auto {
					provs = append(provs, pr)
				}
			}
			// A provider already picked wins; else the first by name,
			// newest version.
			sort.SliceStable(provs, func(i, j int) bool {
				if provs[i].pkg.Name != provs[j].pkg.Name {
					return provs[i].pkg.Name < provs[j].pkg.Name
				}
				return versionLess(provs[j].pkg, provs[i].pkg)
			})
			for _, pr := range provs {
				if picked[pr.pkg.Name] == pr.pkg {
					return pr.pkg
				}
			}
			for _, pr := range provs {
				if _, other := picked[pr.pkg.Name]; !other {
					return pr.pkg
				}
			}
		}
	}
	return nil
}

func (ix *Index) automatic(p *Package) bool {
	rel := ix.releases[p.Suite]
	return rel == nil || !rel.NotAutomatic
}

// candidate is the version of name to use: from suite when given; else
// the locked version while it satisfies; else as candidateIn, automatic
// suites first.
func (ix *Index) candidate(name string, constraint *dependency.Possibility, suite string, prefer map[string]string) *Package {
	if suite != "" {
		for _, p := range ix.byName[name] {
			if p.Suite == suite && (constraint == nil || versionOK(*constraint, p.Version)) {
				return p
			}
		}
		return nil
	}
	if p := ix.locked(name, constraint, prefer); p != nil {
		return p
	}
	if p := ix.candidateIn(name, constraint, true); p != nil {
		return p
	}
	return ix.candidateIn(name, constraint, false)
}

// locked is name at the version prefer pins, from any suite, when the
// sources still list it and it satisfies constraint.
func (ix *Index) locked(name string, constraint *dependency.Possibility, prefer map[string]string) *Package {
	v, has := prefer[name]
	if !has {
		return nil
	}
	for _, p := range ix.byName[name] {
		if p.Version == v && (constraint == nil || versionOK(*constraint, p.Version)) {
			return p
		}
	}
	return nil
}

// candidateIn is the newest version of name that satisfies constraint,
// from automatic suites or from NotAutomatic ones.
func (ix *Index) candidateIn(name string, constraint *dependency.Possibility, auto bool) *Package {
	for _, p := range ix.byName[name] {
		if ix.automatic(p) == auto && (constraint == nil || versionOK(*constraint, p.Version)) {
			return p
		}
	}
	return nil
}

func versionOK(a dependency.Possibility, v string) bool {
	if a.Version == nil {
		return true
	}
	p := &Package{Version: v}
	return a.Version.SatisfiedBy(p.V())
}

// provideOK: an unversioned Provides satisfies only unversioned
// relations (Debian policy 7.5).
func provideOK(a dependency.Possibility, provided string) bool {
	if a.Version == nil {
		return true
	}
	if provided == "" {
		return false
	}
	return versionOK(a, provided)
}

func providerNames(provs []provider) string {
	seen := map[string]bool{}
	var names []string
	for _, p := range provs {
		if !seen[p.pkg.Name] {
			seen[p.pkg.Name] = true
			names = append(names, p.pkg.Name)
		}
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

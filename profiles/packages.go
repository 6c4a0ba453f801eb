package profiles

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Packages says which Debian archive the host's contents come from: the
// suites and components read, packages added to thinhost's own set, the
// kernel package, and (for a mirror or a repository of one's own) where
// the archive is and which extra keys sign it.
type Packages struct {
	Suites     []string
	Components []string
	// Extra are packages added to what thinhost itself needs ("name" or
	// "name/suite").
	Extra []string
	// Kernel is the kernel package ("linux-image-amd64", or with a suite:
	// "linux-image-amd64/bookworm-backports").
	Kernel string
	// Mirror serves every suite but the *-security ones, which come from
	// SecurityMirror.
	Mirror, SecurityMirror string
	// Keyrings are OpenPGP public key files (relative to the profile)
	// trusted beside Debian's own archive keys.
	Keyrings []string
	// Given is true when the profile has a packages block.
	Given     bool
	DeclRange hcl.Range
}

// Debian's defaults.
const (
	DefaultMirror         = "http://deb.debian.org/debian"
	DefaultSecurityMirror = "http://deb.debian.org/debian-security"
	DefaultKernelPackage  = "linux-image-amd64"
)

// DefaultSuites are Debian 12's, with its updates and security fixes.
var DefaultSuites = []string{"bookworm", "bookworm-updates", "bookworm-security"}

func defaultPackages() Packages {
	return Packages{
		Suites: slices.Clone(DefaultSuites), Components: []string{"main"},
		Kernel: DefaultKernelPackage, Mirror: DefaultMirror, SecurityMirror: DefaultSecurityMirror,
	}
}

// MirrorFor is the archive URL that serves suite.
func (p *Packages) MirrorFor(suite string) string {
	if strings.HasSuffix(suite, "-security") {
		return p.SecurityMirror
	}
	return p.Mirror
}

var (
	packagesSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "suites"}, {Name: "components"}, {Name: "extra"}, {Name: "kernel"},
			{Name: "mirror"}, {Name: "security_mirror"}, {Name: "keyrings"}},
	}
	suiteRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,63}$`)
	componentRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,63}$`)
	debNameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
)

func decodePackages(b *hcl.Block, ctx *hcl.EvalContext, prof *Profile) hcl.Diagnostics {
	content, diags := b.Body.Content(packagesSchema)
	p := &prof.Packages
	p.Given, p.DeclRange = true, b.DefRange
	attrs := content.Attributes

	if v, attr, d := evalStringList(attrs, "suites", ctx); attr != nil && !d.HasErrors() {
		switch {
		case len(v) == 0:
			diags = append(diags, attrDiag(attr, "No suites", "suites names at least one Debian suite, such as \"bookworm\"."))
		default:
			for _, s := range v {
				if !suiteRE.MatchString(s) {
					diags = append(diags, attrDiag(attr, "Invalid suite", fmt.Sprintf("%q is not a Debian suite name (such as \"bookworm\" or \"bookworm-backports\").", s)))
				}
			}
			if dup := firstDuplicate(v); dup != "" {
				diags = append(diags, attrDiag(attr, "Duplicate suite", fmt.Sprintf("suite %q is listed twice.", dup)))
			}
			p.Suites = v
		}
	} else {
		diags = append(diags, d...)
	}
	if v, attr, d := evalStringList(attrs, "components", ctx); attr != nil && !d.HasErrors() {
		if len(v) == 0 {
			diags = append(diags, attrDiag(attr, "No components", "components names at least one archive component, such as \"main\"."))
		}
		for _, c := range v {
			if !componentRE.MatchString(c) {
				diags = append(diags, attrDiag(attr, "Invalid component", fmt.Sprintf("%q is not an archive component (main, contrib, non-free, non-free-firmware).", c)))
			}
		}
		if dup := firstDuplicate(v); dup != "" {
			diags = append(diags, attrDiag(attr, "Duplicate component", fmt.Sprintf("component %q is listed twice.", dup)))
		}
		if len(v) > 0 {
			p.Components = v
		}
	} else {
		diags = append(diags, d...)
	}
	checkName := func(attr *hcl.Attribute, what, s string) {
		name, suite, hasSuite := strings.Cut(s, "/")
		switch {
		case !debNameRE.MatchString(name):
			diags = append(diags, attrDiag(attr, "Invalid package name", fmt.Sprintf("%s %q is not a Debian package name (lower-case letters, digits, '+', '-', '.').", what, s)))
		case hasSuite && !slices.Contains(p.Suites, suite):
			diags = append(diags, attrDiag(attr, "Unknown suite", fmt.Sprintf("%s %q asks for suite %q, which suites does not list (%s).", what, s, suite, strings.Join(p.Suites, ", "))))
		}
	}
	if v, attr, d := evalStringList(attrs, "extra", ctx); attr != nil && !d.HasErrors() {
		for _, s := range v {
			checkName(attr, "package", s)
		}
		if dup := firstDuplicate(v); dup != "" {
			diags = append(diags, attrDiag(attr, "Duplicate package", fmt.Sprintf("package %q is listed twice.", dup)))
		}
		p.Extra = v
	} else {
		diags = append(diags, d...)
	}
	if v, attr, d := evalString(attrs, "kernel", ctx); attr != nil && !d.HasErrors() {
		checkName(attr, "kernel package", v)
		p.Kernel = v
	} else {
		diags = append(diags, d...)
	}
	for _, m := range []struct {
		name string
		dst  *string
	}{{"mirror", &p.Mirror}, {"security_mirror", &p.SecurityMirror}} {
		v, attr, d := evalString(attrs, m.name, ctx)
		diags = append(diags, d...)
		if attr == nil || d.HasErrors() {
			continue
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			diags = append(diags, attrDiag(attr, "Invalid mirror", fmt.Sprintf("%s must be an http:// or https:// URL of a Debian archive's root (where dists/ and pool/ are), not %q.", m.name, v)))
			continue
		}
		*m.dst = strings.TrimSuffix(v, "/")
	}
	if v, attr, d := evalStringList(attrs, "keyrings", ctx); attr != nil && !d.HasErrors() {
		for _, k := range v {
			if !filepath.IsAbs(k) {
				k = filepath.Join(prof.Dir, k)
			}
			p.Keyrings = append(p.Keyrings, k)
		}
	} else {
		diags = append(diags, d...)
	}
	return diags
}

func firstDuplicate(v []string) string {
	seen := map[string]bool{}
	for _, s := range v {
		if seen[s] {
			return s
		}
		seen[s] = true
	}
	return ""
}

package profiles

import (
	"encoding/hex"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Artifact is a file the build needs: downloaded from URL and checked
// against SHA256, or taken from a local Path.
type Artifact struct {
	Name string
	// URL and SHA256 (lower-case hex) describe a download.
	URL    string
	SHA256 string
	// Path is a local file, made absolute against the profile's directory.
	// SHA256, when set, is checked for local files too.
	Path      string
	DeclRange hcl.Range
}

// Remote reports whether the artifact is downloaded.
func (a *Artifact) Remote() bool { return a.URL != "" }

// Source names the artifact's origin for messages.
func (a *Artifact) Source() string {
	if a.Remote() {
		return a.URL
	}
	return a.Path
}

var artifactSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "url"},
		{Name: "sha256"},
		{Name: "path"},
	},
}

func decodeArtifacts(blocks []*hcl.Block, ctx *hcl.EvalContext, dir string) ([]*Artifact, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	var out []*Artifact
	seen := map[string]*Artifact{}
	for _, b := range blocks {
		name := b.Labels[0]
		nameRng := b.LabelRanges[0]
		if !hclsyntax.ValidIdentifier(name) {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid artifact name",
				Detail: "An artifact name must start with a letter and contain only letters, digits, '_' and '-'.", Subject: &nameRng})
		}
		if name == HostKernel {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Reserved artifact name",
				Detail: fmt.Sprintf("%q is reserved: a vm's kernel = %q boots the host's own kernel. Give this artifact another name.", HostKernel, HostKernel), Subject: &nameRng})
			continue
		}
		if prev, dup := seen[name]; dup {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate artifact",
				Detail: fmt.Sprintf("Artifact %q is already declared at %s.", name, prev.DeclRange), Subject: &nameRng})
			continue
		}
		content, d := b.Body.Content(artifactSchema)
		diags = append(diags, d...)
		a := &Artifact{Name: name, DeclRange: b.DefRange}
		seen[name] = a

		u, uAttr, d := evalString(content.Attributes, "url", ctx)
		diags = append(diags, d...)
		sum, sumAttr, d := evalString(content.Attributes, "sha256", ctx)
		diags = append(diags, d...)
		p, pAttr, d := evalString(content.Attributes, "path", ctx)
		diags = append(diags, d...)
		_, hasURL := content.Attributes["url"]
		_, hasPath := content.Attributes["path"]
		if (hasURL || hasPath) && uAttr == nil && pAttr == nil && !d.HasErrors() {
			// Its source is null (path = var.x with x null): an artifact
			// the variables leave out. A vm naming it is an error there.
			continue
		}
		out = append(out, a)

		defRng := b.DefRange
		switch {
		case uAttr != nil && pAttr != nil:
			diags = append(diags, attrDiag(pAttr, "Conflicting artifact source",
				fmt.Sprintf("Artifact %q sets both url and path: keep one.", name)))
		case uAttr == nil && pAttr == nil:
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing artifact source",
				Detail: fmt.Sprintf("Artifact %q needs url (with sha256) or path.", name), Subject: &defRng})
		}
		if uAttr != nil && u == "" && !d.HasErrors() {
			diags = append(diags, attrDiag(uAttr, "Empty URL",
				fmt.Sprintf("Artifact %q has url = \"\": give the http(s) address to download (with sha256), or path for a local file.", name)))
		}
		if uAttr != nil && u != "" {
			parsed, err := url.Parse(u)
			switch {
			case err != nil:
				diags = append(diags, attrDiag(uAttr, "Invalid URL", fmt.Sprintf("url: %s.", err)))
			case parsed.Scheme != "http" && parsed.Scheme != "https":
				diags = append(diags, attrDiag(uAttr, "Invalid URL",
					fmt.Sprintf("url %q must be http or https; use path for a local file.", u)))
			}
			a.URL = u
			if sumAttr == nil {
				diags = append(diags, attrDiag(uAttr, "Missing sha256",
					fmt.Sprintf("Artifact %q downloads %s but has no sha256: add sha256 = \"<64 hex digits>\" (sha256sum prints it). thinhost never uses a download it cannot verify.", name, u)))
			}
		}
		if sumAttr != nil {
			sum = strings.ToLower(strings.TrimSpace(sum))
			if b, err := hex.DecodeString(sum); err != nil || len(b) != 32 {
				diags = append(diags, attrDiag(sumAttr, "Invalid sha256",
					"sha256 must be 64 hexadecimal digits, as printed by sha256sum."))
			}
			a.SHA256 = sum
		}
		if pAttr != nil {
			if p == "" {
				diags = append(diags, attrDiag(pAttr, "Invalid path", "path must not be empty."))
			} else {
				if !filepath.IsAbs(p) {
					p = filepath.Join(dir, p)
				}
				a.Path = filepath.Clean(p)
			}
		}
	}
	return out, diags
}

func artifactNames(arts []*Artifact) []string {
	var out []string
	for _, a := range arts {
		out = append(out, a.Name)
	}
	return out
}

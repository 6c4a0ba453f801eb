package profiles

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Service is a program from a Debian package that hostd runs under its
// supervisor, such as syncthing or restic.
type Service struct {
	Name string
	// Package ships Command[0]; it joins the host's packages.
	Package string
	// Command is the program (an absolute path inside the package) and
	// its arguments.
	Command []string
	// Environment is added to the program's environment.
	Environment map[string]string
	// Restart is "always" (the default), "on-failure" or "never".
	Restart string
	// Files are more paths the system image carries for it (absolute; a
	// directory means every file under it), from any locked package:
	// data files outside its own package, such as CA certificates.
	Files []string
	// ShareUser runs it as the share user instead of a user of its own,
	// so it reads and writes the shares as Windows does.
	ShareUser bool
	DeclRange hcl.Range
}

// Service restart policies.
var restartPolicies = []string{"always", "on-failure", "never"}

var (
	serviceSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "package", Required: true}, {Name: "command", Required: true},
			{Name: "environment"}, {Name: "restart"}, {Name: "files"}, {Name: "share_user"}},
	}
	serviceNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
	envNameRE     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// Names hostd's own services use.
	reservedServices = map[string]bool{"smbd": true, "hostd": true}
)

func decodeServices(blocks []*hcl.Block, ctx *hcl.EvalContext, prof *Profile) hcl.Diagnostics {
	var diags hcl.Diagnostics
	byName := map[string]*Service{}
	for _, b := range blocks {
		s := &Service{Name: b.Labels[0], Restart: "always", DeclRange: b.DefRange}
		nameRng := b.LabelRanges[0]
		content, d := b.Body.Content(serviceSchema)
		diags = append(diags, d...)
		switch {
		case !serviceNameRE.MatchString(s.Name) || reservedServices[s.Name] || strings.HasPrefix(s.Name, "vm-") || strings.HasPrefix(s.Name, "swtpm-"):
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid service name",
				Detail:  fmt.Sprintf("Service name %q must be 1-32 lower-case letters, digits or '-', starting with a letter, and not one hostd uses (smbd, vm-*, swtpm-*).", s.Name),
				Subject: &nameRng})
			continue
		case byName[s.Name] != nil:
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate service",
				Detail: fmt.Sprintf("Service %q is already declared at %s.", s.Name, byName[s.Name].DeclRange), Subject: &nameRng})
			continue
		}
		byName[s.Name] = s
		attrs := content.Attributes
		if v, attr, d := evalString(attrs, "package", ctx); attr != nil && !d.HasErrors() {
			if !debNameRE.MatchString(v) {
				diags = append(diags, attrDiag(attr, "Invalid package name", fmt.Sprintf("package %q is not a Debian package name.", v)))
			}
			s.Package = v
		} else {
			diags = append(diags, d...)
		}
		if v, attr, d := evalStringList(attrs, "command", ctx); attr != nil && !d.HasErrors() {
			switch {
			case len(v) == 0:
				diags = append(diags, attrDiag(attr, "Empty command", "command names the program (an absolute path in the package, such as \"/usr/bin/syncthing\") and its arguments."))
			case !path.IsAbs(v[0]) || path.Clean(v[0]) != v[0]:
				diags = append(diags, attrDiag(attr, "Invalid command", fmt.Sprintf("the program %q must be an absolute, clean path inside the package, such as \"/usr/bin/%s\".", v[0], s.Package)))
			default:
				for _, a := range v {
					if strings.ContainsRune(a, 0) {
						diags = append(diags, attrDiag(attr, "Invalid command", "arguments must not contain NUL."))
						break
					}
				}
				s.Command = v
			}
		} else {
			diags = append(diags, d...)
		}
		if v, attr, d := evalAs(attrs, "environment", cty.Map(cty.String), ctx); attr != nil && !d.HasErrors() && !v.IsNull() {
			s.Environment = map[string]string{}
			for k, val := range v.AsValueMap() {
				if !envNameRE.MatchString(k) {
					diags = append(diags, attrDiag(attr, "Invalid environment variable", fmt.Sprintf("%q is not an environment variable name.", k)))
					continue
				}
				if val.IsNull() || strings.ContainsRune(val.AsString(), 0) {
					diags = append(diags, attrDiag(attr, "Invalid environment variable", fmt.Sprintf("%s must be a string without NUL.", k)))
					continue
				}
				s.Environment[k] = val.AsString()
			}
		} else {
			diags = append(diags, d...)
		}
		if v, attr, d := evalString(attrs, "restart", ctx); attr != nil && !d.HasErrors() {
			ok := false
			for _, r := range restartPolicies {
				ok = ok || r == v
			}
			if !ok {
				diags = append(diags, attrDiag(attr, "Invalid restart policy", fmt.Sprintf("restart must be one of %s, not %q.%s", strings.Join(restartPolicies, ", "), v, didYouMean(v, restartPolicies))))
			}
			s.Restart = v
		} else {
			diags = append(diags, d...)
		}
		if v, attr, d := evalStringList(attrs, "files", ctx); attr != nil && !d.HasErrors() {
			for _, f := range v {
				if !path.IsAbs(f) || path.Clean(f) != f || f == "/" || strings.ContainsAny(f, "\x00\n") {
					diags = append(diags, attrDiag(attr, "Invalid file", fmt.Sprintf("%q must be an absolute, clean path inside the packages, such as \"/usr/share/ca-certificates/mozilla\".", f)))
				}
			}
			s.Files = v
		} else {
			diags = append(diags, d...)
		}
		if v, attr, d := evalAs(attrs, "share_user", cty.Bool, ctx); attr != nil && !d.HasErrors() && !v.IsNull() {
			s.ShareUser = v.True()
			if s.ShareUser && len(prof.Shares) == 0 {
				diags = append(diags, attrDiag(attr, "No shares", "share_user runs the service as the share user, for the shares; this profile has no share block."))
			}
		} else {
			diags = append(diags, d...)
		}
		prof.Services = append(prof.Services, s)
	}
	return diags
}

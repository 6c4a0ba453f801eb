package profiles

import (
	"fmt"
	"io"
	"path/filepath"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// SchemaVersion is the version of the profile language this package reads.
const SchemaVersion = 1

// Profile is a parsed and validated profile.
type Profile struct {
	// Path is the profile file as given; Dir is its directory, against
	// which relative artifact paths are resolved.
	Path string
	Dir  string

	Variables []*Variable
	Artifacts []*Artifact
	Host      Host
	Storage   Storage
	VMs       []*VM
	// FileServer and Shares are the SMB file share the guest maps.
	FileServer FileServer
	Shares     []*Share
	// Packages is where the host's Debian packages come from.
	Packages Packages
	// Services are programs from packages that hostd supervises.
	Services []*Service
	// Boot is the ESP's chain of loaders.
	Boot Boot
	// Wifi is the wireless networks the host joins (nil: none).
	Wifi *Wifi
}

// Artifact returns the artifact with the given name, or nil.
func (p *Profile) Artifact(name string) *Artifact {
	for _, a := range p.Artifacts {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// Options are the values given on the command line.
type Options struct {
	// Vars are "name=value" assignments from -var, applied in order after
	// the var files.
	Vars []string
	// VarFiles are HCL files of "name = value" lines, applied in order.
	VarFiles []string
}

// Parser parses profiles and remembers their source, so diagnostics can be
// printed with the offending lines.
type Parser struct {
	p *hclparse.Parser
}

// NewParser returns a Parser.
func NewParser() *Parser { return &Parser{p: hclparse.NewParser()} }

// Parse is a convenience for NewParser().ParseFile. Callers that want to
// print diagnostics with source lines should keep the Parser instead.
func Parse(filename string, opts Options) (*Profile, hcl.Diagnostics) {
	return NewParser().ParseFile(filename, opts)
}

var rootSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "artifact", LabelNames: []string{"name"}},
		{Type: "host"},
		{Type: "storage"},
		{Type: "vm", LabelNames: []string{"name"}},
		{Type: "file_server"},
		{Type: "share", LabelNames: []string{"name"}},
		{Type: "packages"},
		{Type: "service", LabelNames: []string{"name"}},
		{Type: "boot"},
		{Type: "wifi"},
	},
}

// ParseFile reads, decodes and validates the profile at filename. It
// collects every problem it can find in one run; the Profile is nil when
// any diagnostic is an error.
func (ps *Parser) ParseFile(filename string, opts Options) (*Profile, hcl.Diagnostics) {
	file, diags := ps.p.ParseHCLFile(filename)
	if diags.HasErrors() {
		return nil, diags
	}
	return ps.decode(filename, file.Body, opts, diags)
}

// ParseSource is ParseFile for a profile held in memory; filename is used
// in diagnostics and to resolve relative paths.
func (ps *Parser) ParseSource(src []byte, filename string, opts Options) (*Profile, hcl.Diagnostics) {
	file, diags := ps.p.ParseHCL(src, filename)
	if diags.HasErrors() {
		return nil, diags
	}
	return ps.decode(filename, file.Body, opts, diags)
}

func (ps *Parser) decode(filename string, body hcl.Body, opts Options, diags hcl.Diagnostics) (*Profile, hcl.Diagnostics) {
	content, d := body.Content(rootSchema)
	diags = append(diags, d...)

	prof := &Profile{Path: filename, Dir: filepath.Dir(filename)}

	// Variables first: every other block may refer to var.NAME.
	var varBlocks, artBlocks, hostBlocks, storageBlocks, vmBlocks, fsBlocks, shareBlocks, pkgBlocks, svcBlocks, bootBlocks, wifiBlocks []*hcl.Block
	for _, b := range content.Blocks {
		switch b.Type {
		case "variable":
			varBlocks = append(varBlocks, b)
		case "artifact":
			artBlocks = append(artBlocks, b)
		case "host":
			hostBlocks = append(hostBlocks, b)
		case "storage":
			storageBlocks = append(storageBlocks, b)
		case "vm":
			vmBlocks = append(vmBlocks, b)
		case "file_server":
			fsBlocks = append(fsBlocks, b)
		case "share":
			shareBlocks = append(shareBlocks, b)
		case "packages":
			pkgBlocks = append(pkgBlocks, b)
		case "service":
			svcBlocks = append(svcBlocks, b)
		case "boot":
			bootBlocks = append(bootBlocks, b)
		case "wifi":
			wifiBlocks = append(wifiBlocks, b)
		}
	}
	vars, d := ps.decodeVariables(varBlocks, opts)
	diags = append(diags, d...)
	prof.Variables = vars
	ctx := evalContext(vars)

	prof.Artifacts, d = decodeArtifacts(artBlocks, ctx, prof.Dir)
	diags = append(diags, d...)

	d = decodeSingleton(hostBlocks, "host", body, true, func(b *hcl.Block) hcl.Diagnostics {
		return decodeHost(b, ctx, prof)
	})
	diags = append(diags, d...)
	prof.Storage = defaultStorage()
	d = decodeSingleton(storageBlocks, "storage", body, false, func(b *hcl.Block) hcl.Diagnostics {
		return decodeStorage(b, ctx, &prof.Storage)
	})
	diags = append(diags, d...)
	diags = append(diags, decodeVMs(vmBlocks, ctx, prof)...)
	prof.FileServer = FileServer{User: DefaultShareUser}
	diags = append(diags, decodeSingleton(fsBlocks, "file_server", body, false, func(b *hcl.Block) hcl.Diagnostics {
		return decodeFileServer(b, ctx, &prof.FileServer)
	})...)
	diags = append(diags, decodeShares(shareBlocks, ctx, prof)...)
	prof.Packages = defaultPackages()
	diags = append(diags, decodeSingleton(pkgBlocks, "packages", body, false, func(b *hcl.Block) hcl.Diagnostics {
		return decodePackages(b, ctx, prof)
	})...)
	diags = append(diags, decodeServices(svcBlocks, ctx, prof)...)
	diags = append(diags, decodeSingleton(bootBlocks, "boot", body, false, func(b *hcl.Block) hcl.Diagnostics {
		return decodeBoot(b, ctx, &prof.Boot)
	})...)
	diags = append(diags, decodeSingleton(wifiBlocks, "wifi", body, false, func(b *hcl.Block) hcl.Diagnostics {
		return decodeWifi(b, ctx, prof)
	})...)
	if prof.Boot.SecureBoot == "" {
		prof.Boot.SecureBoot = defaultSecureBoot(prof)
	}
	diags = append(diags, prof.validate()...)
	annotate(diags, body, shownContext(vars))

	if diags.HasErrors() {
		return nil, diags
	}
	return prof, diags
}

// shownContext is the variables a diagnostic may show: all but the
// sensitive ones, whose values are never printed.
func shownContext(vars []*Variable) *hcl.EvalContext {
	var shown []*Variable
	for _, v := range vars {
		if !v.Sensitive {
			shown = append(shown, v)
		}
	}
	return evalContext(shown)
}

// annotate gives each diagnostic that points at an attribute's value that
// expression and the profile's variables, so that the diagnostic printer
// shows the values behind it ("var.memory is \"2GiB\"").
func annotate(diags hcl.Diagnostics, body hcl.Body, ctx *hcl.EvalContext) {
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return
	}
	exprs := map[hcl.Range]hcl.Expression{}
	var walk func(b *hclsyntax.Body)
	walk = func(b *hclsyntax.Body) {
		for _, a := range b.Attributes {
			exprs[a.Expr.Range()] = a.Expr
		}
		for _, blk := range b.Blocks {
			walk(blk.Body)
		}
	}
	walk(sb)
	for _, d := range diags {
		if d.Expression != nil || d.Subject == nil {
			continue
		}
		if e, ok := exprs[*d.Subject]; ok {
			d.Expression, d.EvalContext = e, ctx
		}
	}
}

// decodeSingleton decodes a block that may appear at most once.
func decodeSingleton(blocks []*hcl.Block, typ string, parent hcl.Body, required bool, decode func(*hcl.Block) hcl.Diagnostics) hcl.Diagnostics {
	var diags hcl.Diagnostics
	if len(blocks) == 0 {
		if required {
			rng := parent.MissingItemRange()
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("Missing %s block", typ),
				Detail:   fmt.Sprintf("Exactly one %q block is needed here.", typ),
				Subject:  &rng,
			})
		}
		return diags
	}
	for _, extra := range blocks[1:] {
		rng := extra.DefRange
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Duplicate %s block", typ),
			Detail:   fmt.Sprintf("Only one %q block is allowed; the first is at %s.", typ, blocks[0].DefRange),
			Subject:  &rng,
		})
	}
	return append(diags, decode(blocks[0])...)
}

// functions are the HCL functions a profile may call: list and string
// helpers, nothing that reads files or the environment.
var functions = map[string]function.Function{
	"concat":    stdlib.ConcatFunc,
	"format":    stdlib.FormatFunc,
	"join":      stdlib.JoinFunc,
	"lower":     stdlib.LowerFunc,
	"upper":     stdlib.UpperFunc,
	"replace":   stdlib.ReplaceFunc,
	"trimspace": stdlib.TrimSpaceFunc,
	"distinct":  stdlib.DistinctFunc,
}

func evalContext(vars []*Variable) *hcl.EvalContext {
	m := map[string]cty.Value{}
	for _, v := range vars {
		m[v.Name] = v.Value
	}
	return &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(m)},
		Functions: functions,
	}
}

// WriteDiagnostics renders diags with file:line:col and the source lines,
// the one place thinhost prints profile problems.
func (ps *Parser) WriteDiagnostics(w io.Writer, diags hcl.Diagnostics, width uint, color bool) error {
	// Errors first, then warnings, each in source order, so the output
	// reads top to bottom.
	sorted := append(hcl.Diagnostics(nil), diags...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].Severity != sorted[j].Severity {
			return sorted[i].Severity == hcl.DiagError
		}
		return rangeLess(sorted[i].Subject, sorted[j].Subject)
	})
	return hcl.NewDiagnosticTextWriter(w, ps.p.Files(), width, color).WriteDiagnostics(sorted)
}

func rangeLess(a, b *hcl.Range) bool {
	switch {
	case a == nil:
		return false
	case b == nil:
		return true
	case a.Filename != b.Filename:
		return a.Filename < b.Filename
	}
	return a.Start.Byte < b.Start.Byte
}

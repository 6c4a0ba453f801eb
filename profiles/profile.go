package profiles

import (
	"fmt"
	"io"
	"path/filepath"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
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
	if prof.Wifi != nil && !prof.Packages.Given {
		rng := prof.Wifi.DeclRange
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Wi-Fi without packages",
			Detail:  "The host joins Wi-Fi with Debian's wpa_supplicant, which comes from the archive: add a packages block (packages {} takes Debian 12's defaults).",
			Subject: &rng})
	}
	if prof.Wifi != nil && prof.Storage.DataDisk == DataDiskInternal {
		for _, n := range prof.Wifi.Networks {
			if n.PSK != "" {
				rng := n.DeclRange
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Wi-Fi passphrase with an internal data disk",
					Detail:  "A profile's passphrases travel to the host on the stick's empty data partition, which hostd takes and clears at the first boot; with data_disk = \"internal\" hostd never touches that partition, so the passphrase would stay on the stick in clear. Leave psk out and give it once on the host: thinhost ctl wifi connect " + n.Name + " --passphrase-stdin (it is kept on the internal disk's data partition).",
					Subject: &rng})
				break
			}
		}
	}
	if prof.Boot.SecureBoot == "" {
		prof.Boot.SecureBoot = defaultSecureBoot(prof)
	}
	if prof.Boot.SecureBoot == SecureBootStock && prof.Host.Kernel.Artifact != "" {
		rng := prof.Host.Kernel.Range
		if prof.Boot.DeclRange.Filename != "" {
			rng = prof.Boot.DeclRange
		}
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Secure Boot needs Debian's signed kernel",
			Detail:  "secure_boot = \"stock\" boots only a kernel Debian signed, from the packages block; a kernel artifact is not signed for it. Take the kernel from the packages block, or set secure_boot = \"off\" in a boot block.",
			Subject: &rng})
	}
	if prof.Storage.TPM && prof.Boot.SecureBoot != SecureBootOwn {
		rng := prof.Storage.TPMRange
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "TPM unlocking needs your own Secure Boot keys",
			Detail: fmt.Sprintf("tpm = true seals the data partition's key to PCR 7, the firmware's Secure Boot state and keys. With secure_boot = %q that state is the same for whatever else boots (%s), so the TPM would hand the key to it. Use boot { secure_boot = \"own\"  keys = \"DIR\" } (thinhost keys DIR makes them): then only your signed loader and unified kernel image, initramfs and command line included, run with that state. Or leave tpm out and type a passphrase.",
				prof.Boot.SecureBoot, map[string]string{SecureBootOff: "any system, Secure Boot off", SecureBootStock: "any system Microsoft or Debian signed, and the initramfs and command line on the stick are not signed"}[prof.Boot.SecureBoot]),
			Subject: &rng})
	}
	if prof.Host.Kernel.Range.Filename != "" && prof.Host.Kernel.Artifact == "" && !prof.Packages.Given {
		rng := prof.Host.Kernel.Range
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "No kernel",
			Detail:  "The kernel comes from Debian's archive (the packages block's kernel package, linux-image-amd64 by default) or from an artifact: add a packages block (packages {} takes Debian 12's defaults) or set artifact in the kernel block.",
			Subject: &rng})
	}
	if len(prof.Services) > 0 && !prof.Packages.Given {
		rng := prof.Services[0].DeclRange
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Service without packages",
			Detail:  "A service runs a program from a Debian package, which comes from the archive: add a packages block (packages {} takes Debian 12's defaults).",
			Subject: &rng})
	}

	if diags.HasErrors() {
		return nil, diags
	}
	return prof, diags
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

package profiles

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/thinhost/thinhost/internal/kmod"
)

// Host describes the host system: its name, consoles and kernel.
type Host struct {
	Hostname string
	// Console lists kernel consoles ("tty0", "ttyS0,115200"); the last one
	// is /dev/console, where hostd prints its readiness line.
	Console []string
	Kernel  Kernel
	// APIPort is the management API's TCP port (token-protected).
	APIPort int
	// APIOnHostNetwork serves the API on every address of the host; by
	// default it listens on loopback only, which is where the guests'
	// NAT (10.0.2.2) reaches it, and a laptop on a café's Wi-Fi offers
	// nothing to its neighbours.
	APIOnHostNetwork bool
	// APIToken is the API token; "" lets hostd generate one on first boot
	// and keep it on the data partition (state/api-token).
	APIToken string
	// LowBattery is the battery charge (percent) at which the host shuts
	// its guests down cleanly and powers off, on battery; 0 never does.
	LowBattery int
	// Lid is what closing the lid does: "suspend" (the default: guests
	// paused, the host asleep), "poweroff" or "ignore".
	Lid string
	// BrightnessKeys is who handles the laptop's brightness keys: "host"
	// (the default: hostd sets the backlight, whatever the guest draws)
	// or "guest" (hostd leaves them alone).
	BrightnessKeys string
	// VolumeKeys is who handles the volume and mute keys: "host" (the
	// default: hostd moves the sound card's volume, whatever the guest
	// draws) or "guest" (hostd leaves them alone).
	VolumeKeys string
	// ShellPassword guards the debug shell on the panel's consoles (tty0
	// and the like); "" offers no shell there. The serial console's shell
	// asks for none: who has the cable has the machine.
	ShellPassword string
	// PagePassword logs in to the host's page (beside the API token,
	// which always does); "" leaves the token alone. The image carries
	// only its Argon2id hash.
	PagePassword string
}

// DefaultLowBattery is the battery charge (percent) at which a host on
// battery shuts down cleanly.
const DefaultLowBattery = 5

// DefaultAPIPort is hostd's management API port.
const DefaultAPIPort = 8484

// Kernel says which kernel the host boots and what it loads from it.
type Kernel struct {
	// Artifact is the name of an artifact: a Debian linux-image .deb, or
	// a plain bzImage together with ModulesDir. "" takes the kernel from
	// the packages block (Packages.Kernel), pinned by the lock file.
	Artifact string
	// ModulesDir is a local /lib/modules/<release> tree for a plain
	// bzImage (absolute, resolved against the profile directory).
	ModulesDir string
	// Cmdline is appended to the kernel command line thinhost builds.
	Cmdline string
	// Hardware names the driver set (HardwareSets); "" is
	// DefaultHardware.
	Hardware string
	// Modules are added to the set's: loaded by hostd at boot (device
	// drivers: for the devices present), with their dependencies.
	Modules []string
	// ExcludeModules are taken out of the set.
	ExcludeModules []string
	// Range is the kernel block, for messages about it.
	Range hcl.Range
}

// DefaultConsole is used when a profile names no console.
var DefaultConsole = []string{"tty0", "ttyS0,115200"}

var (
	hostSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "hostname"}, {Name: "console"}, {Name: "api_port"}, {Name: "api_token"}, {Name: "api_on_host_network"}, {Name: "low_battery"}, {Name: "lid"}, {Name: "brightness_keys"}, {Name: "volume_keys"}, {Name: "shell_password"}, {Name: "page_password"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "kernel"}},
	}
	kernelSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "artifact"},
			{Name: "modules_dir"},
			{Name: "cmdline"},
			{Name: "modules"},
			{Name: "hardware"},
			{Name: "exclude_modules"},
		},
	}
	hostnameRE = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)
	moduleRE   = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
	consoleRE  = regexp.MustCompile(`^(tty[a-zA-Z]*[0-9]+|hvc[0-9]+)(,[0-9a-zA-Z]+)?$`)
)

func decodeHost(b *hcl.Block, ctx *hcl.EvalContext, prof *Profile) hcl.Diagnostics {
	content, diags := b.Body.Content(hostSchema)
	h := &prof.Host

	name, attr, d := evalString(content.Attributes, "hostname", ctx)
	diags = append(diags, d...)
	switch {
	case attr == nil:
		h.Hostname = "thinhost"
	case d.HasErrors():
	case !hostnameRE.MatchString(name):
		diags = append(diags, attrDiag(attr, "Invalid hostname",
			fmt.Sprintf("hostname %q must be 1-63 letters, digits or '-', not starting or ending with '-'.", name)))
	default:
		h.Hostname = name
	}

	cons, attr, d := evalStringList(content.Attributes, "console", ctx)
	diags = append(diags, d...)
	if attr == nil {
		h.Console = append([]string(nil), DefaultConsole...)
	} else if !d.HasErrors() {
		for _, c := range cons {
			if !consoleRE.MatchString(c) {
				diags = append(diags, attrDiag(attr, "Invalid console",
					fmt.Sprintf("console %q must look like \"tty0\" or \"ttyS0,115200\".", c)))
			}
		}
		h.Console = cons
	}

	h.APIPort, d = evalIntIn(content.Attributes, "api_port", DefaultAPIPort, 1, 65535, ctx,
		"Invalid port", "api_port must be a whole number from 1 to 65535.")
	diags = append(diags, d...)
	h.Lid, _, d = oneOf(content.Attributes, "lid", "suspend", []string{"suspend", "poweroff", "ignore"}, ctx)
	diags = append(diags, d...)
	h.BrightnessKeys, _, d = oneOf(content.Attributes, "brightness_keys", "host", []string{"host", "guest"}, ctx)
	diags = append(diags, d...)
	h.VolumeKeys, _, d = oneOf(content.Attributes, "volume_keys", "host", []string{"host", "guest"}, ctx)
	diags = append(diags, d...)
	h.LowBattery, d = evalIntIn(content.Attributes, "low_battery", DefaultLowBattery, 0, 50, ctx,
		"Invalid low_battery", "low_battery is a battery charge in percent from 0 (never shut down) to 50.")
	diags = append(diags, d...)
	onNet, attr, d := evalBool(content.Attributes, "api_on_host_network", ctx)
	diags = append(diags, d...)
	if attr != nil && !d.HasErrors() {
		h.APIOnHostNetwork = onNet
	}
	tok, attr, d := evalString(content.Attributes, "api_token", ctx)
	diags = append(diags, d...)
	if attr != nil && !d.HasErrors() {
		if len(tok) < 16 || strings.ContainsAny(tok, " \t\r\n") {
			diags = append(diags, attrDiag(attr, "Weak API token",
				"api_token must be at least 16 characters without spaces; leave it out to have hostd generate one on first boot."))
		}
		h.APIToken = tok
	}

	h.ShellPassword, d = evalPassword(content.Attributes, "shell_password", ctx, "Weak shell password",
		"leave it out (or empty) to offer no shell on the panel.")
	diags = append(diags, d...)
	h.PagePassword, d = evalPassword(content.Attributes, "page_password", ctx, "Weak page password",
		"leave it out to log in to the host's page with the API token alone.")
	diags = append(diags, d...)

	diags = append(diags, decodeSingleton(content.Blocks, "kernel", b.Body, true, func(kb *hcl.Block) hcl.Diagnostics {
		return decodeKernel(kb, ctx, prof)
	})...)
	return diags
}

func decodeKernel(b *hcl.Block, ctx *hcl.EvalContext, prof *Profile) hcl.Diagnostics {
	content, diags := b.Body.Content(kernelSchema)
	k := &prof.Host.Kernel
	k.Range = b.DefRange

	art, attr, d := evalString(content.Attributes, "artifact", ctx)
	diags = append(diags, d...)
	if attr != nil && !d.HasErrors() {
		if prof.Artifact(art) == nil {
			diags = append(diags, attrDiag(attr, "Unknown artifact",
				fmt.Sprintf("kernel.artifact %q names no artifact block.%s", art, didYouMean(art, artifactNames(prof.Artifacts)))))
		}
		k.Artifact = art
	}

	dir, attr, d := evalString(content.Attributes, "modules_dir", ctx)
	diags = append(diags, d...)
	if attr != nil && k.Artifact == "" {
		diags = append(diags, attrDiag(attr, "modules_dir without artifact",
			"modules_dir goes with a plain bzImage artifact; a kernel from the packages block carries its own modules."))
	}
	if attr != nil && dir != "" {
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(prof.Dir, dir)
		}
		k.ModulesDir = filepath.Clean(dir)
	}

	k.Cmdline, attr, d = evalString(content.Attributes, "cmdline", ctx)
	diags = append(diags, d...)
	if attr != nil {
		if strings.ContainsFunc(k.Cmdline, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			diags = append(diags, attrDiag(attr, "Control character in cmdline",
				"The kernel command line is one line of the boot loader's entry: write its arguments separated by spaces, without newlines or tabs."))
		}
		for _, f := range strings.Fields(k.Cmdline) {
			if strings.HasPrefix(f, "console=") {
				diags = append(diags, attrDiag(attr, "Console in cmdline",
					"Set consoles with host.console, not console= in cmdline: thinhost orders them so hostd's output reaches the right one."))
			}
		}
	}

	hw, attr, d := evalString(content.Attributes, "hardware", ctx)
	diags = append(diags, d...)
	if attr != nil && !d.HasErrors() {
		if _, ok := HardwareSets[hw]; !ok {
			diags = append(diags, attrDiag(attr, "Unknown driver set",
				fmt.Sprintf("hardware %q is not a driver set; choose one of %s.%s", hw, strings.Join(HardwareNames(), ", "), didYouMean(hw, HardwareNames()))))
		}
		k.Hardware = hw
	}

	var listAttr *hcl.Attribute
	k.Modules, listAttr, diags = decodeModuleList(content.Attributes, "modules", ctx, diags)
	var exclAttr *hcl.Attribute
	k.ExcludeModules, exclAttr, diags = decodeModuleList(content.Attributes, "exclude_modules", ctx, diags)
	for _, m := range k.ExcludeModules {
		if slices.Contains(k.Modules, m) {
			diags = append(diags, attrDiag(exclAttr, "Module listed and excluded",
				fmt.Sprintf("module %q is in modules (line %d) and in exclude_modules: keep it in one of them.", m, listAttr.NameRange.Start.Line)))
		}
	}
	return diags
}

// decodeModuleList reads a list of module names, normalized ("-" to "_")
// and each once.
func decodeModuleList(attrs hcl.Attributes, name string, ctx *hcl.EvalContext, diags hcl.Diagnostics) ([]string, *hcl.Attribute, hcl.Diagnostics) {
	mods, attr, d := evalStringList(attrs, name, ctx)
	diags = append(diags, d...)
	var out []string
	seen := map[string]bool{}
	for _, m := range mods {
		if !moduleRE.MatchString(m) {
			diags = append(diags, attrDiag(attr, "Invalid module name",
				fmt.Sprintf("module %q must be a name such as \"virtio_blk\", without path or .ko.", m)))
			continue
		}
		norm := kmod.Name(m)
		if seen[norm] {
			continue
		}
		seen[norm] = true
		out = append(out, norm)
	}
	return out, attr, diags
}

// evalPassword reads an optional password attribute: empty, or 8 to 72
// characters on one line; otherwise a diagnostic (summary, and what to do:
// orElse).
func evalPassword(attrs hcl.Attributes, name string, ctx *hcl.EvalContext, summary, orElse string) (string, hcl.Diagnostics) {
	pw, attr, diags := evalString(attrs, name, ctx)
	if attr == nil || diags.HasErrors() {
		return "", diags
	}
	if pw != "" && (len(pw) < 8 || len(pw) > 72 || strings.ContainsAny(pw, "\r\n")) {
		diags = append(diags, attrDiag(attr, summary, name+" must be 8 to 72 characters on one line; "+orElse))
	}
	return pw, diags
}

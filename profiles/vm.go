package profiles

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/dynblock"
	"github.com/zclconf/go-cty/cty"
)

// VM is a guest the host runs: Windows 11 or 10, or Linux.
type VM struct {
	Name string
	// OS is "windows11", "windows10" or "linux"; it selects the machine
	// model, enlightenments and what the guest must have.
	OS string
	// Memory is MemoryBytes, or MemoryPercent of the host's RAM (1-100)
	// when the profile gives a share such as "75%".
	MemoryBytes   int64
	MemoryPercent int
	// CPUs is a count; with CPUsAll, every host CPU but CPUsAllBut
	// ("all" is all-but-0, "all-but-1" leaves one to the host).
	CPUs       int
	CPUsAllBut int
	CPUsAll    bool
	// Firmware is "uefi", "uefi-secureboot" or, for Linux guests only,
	// "bios".
	Firmware string
	TPM      bool
	Disk     VMDisk
	// InstallMedia and Drivers name artifacts (the Windows ISO and the
	// virtio-win ISO), attached while the VM is in install mode.
	InstallMedia string
	Drivers      string
	// Kernel, Initrd and Cmdline boot a Linux guest directly: Kernel and
	// Initrd name artifacts; Kernel may be HostKernel, the host's own.
	Kernel, Initrd string
	Cmdline        string
	// Display is "none", "vnc" or "sdl"; VNC listens on VNC.
	Display string
	VNC     string
	// USB lists devices passed through, as "vendor:product" in hex.
	USB []USBDevice
	// USBHotplug gives the guest the USB devices plugged in while the
	// host runs, but the host's boot disk and hubs.
	USBHotplug bool
	// Network is "user" (NAT, the default) or "none".
	Network   string
	Autostart bool
	// OnShutdown is what the host does when the guest shuts itself down
	// (Windows' Start menu): "poweroff" (the appliance: the default for
	// Windows) or "stay" (the default for Linux guests).
	OnShutdown string
	// ShutdownTimeout bounds the guest's ACPI shutdown before it is stopped.
	ShutdownTimeout time.Duration
	// Nested exposes the CPU's virtualisation extensions to the guest
	// (WSL2, Hyper-V and Windows Sandbox inside it need them).
	Nested bool
	// Sound gives the guest an audio device (true unless the profile
	// says sound = false).
	Sound bool
	// Windows makes a Windows guest's install unattended (nil: setup
	// asks).
	Windows   *WindowsSetup
	DeclRange hcl.Range

	// at is where the profile set what validate checks together.
	at vmAt
}

// vmAt are the attributes and blocks of a vm block that validate names
// in its diagnostics (nil: not set).
type vmAt struct {
	firmware, tpm, memory, cpus, diskSize, kernel, initrd, cmdline *hcl.Attribute
	windows                                                        *hcl.Block
	// decoded is set when the block decoded without errors: only then
	// are its values worth checking together.
	decoded bool
}

// VMDisk is the guest's system disk, created on the data partition at
// first start.
type VMDisk struct {
	Size   int64
	Format string // "qcow2" or "raw"
}

// USBDevice is a USB device to pass through.
type USBDevice struct {
	Vendor, Product uint16
}

func (u USBDevice) String() string { return fmt.Sprintf("%04x:%04x", u.Vendor, u.Product) }

// VM returns the VM with the given name, or nil.
func (p *Profile) VM(name string) *VM {
	for _, v := range p.VMs {
		if v.Name == name {
			return v
		}
	}
	return nil
}

// HostKernel as a vm's kernel boots the guest on the host's own kernel
// (thinhost's test guest does; its initrd must carry modules of that
// kernel's release).
const HostKernel = "host"

// Guest requirements the profile checks (Microsoft's Windows 11 minimums).
const (
	Windows11MinMemory = 4 << 30
	Windows11MinDisk   = 64 << 30
	DefaultShutdown    = 120 * time.Second
	MaxVMNameLen       = 16
)

var (
	vmSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "os", Required: true}, {Name: "memory"}, {Name: "cpus"}, {Name: "firmware"},
			{Name: "tpm"}, {Name: "install_media"}, {Name: "drivers"}, {Name: "kernel"},
			{Name: "initrd"}, {Name: "cmdline"}, {Name: "display"}, {Name: "vnc"}, {Name: "vnc_password"}, {Name: "usb"},
			{Name: "network"}, {Name: "autostart"}, {Name: "on_shutdown"}, {Name: "shutdown_timeout"},
			{Name: "nested"}, {Name: "sound"}, {Name: "usb_hotplug"},
		},
		Blocks: []hcl.BlockHeaderSchema{{Type: "disk"}, {Type: "windows"}},
	}
	vmDiskSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "size", Required: true}, {Name: "format"}},
	}
	vmNameRE  = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	usbRE     = regexp.MustCompile(`^([0-9a-fA-F]{4}):([0-9a-fA-F]{4})$`)
	allButRE  = regexp.MustCompile(`^all-but-([0-9]+)$`)
	percentRE = regexp.MustCompile(`^([0-9]+)%$`)
)

// oneOf checks a string attribute against its choices.
func oneOf(attrs hcl.Attributes, name, def string, choices []string, ctx *hcl.EvalContext) (string, *hcl.Attribute, hcl.Diagnostics) {
	v, attr, diags := evalString(attrs, name, ctx)
	if attr == nil || diags.HasErrors() {
		return def, attr, diags
	}
	for _, c := range choices {
		if v == c {
			return v, attr, nil
		}
	}
	return def, attr, append(diags, attrDiag(attr, "Invalid "+strings.ReplaceAll(name, "_", " "),
		fmt.Sprintf("%s %q is not one of %s.%s", name, v, quoteList(choices), didYouMean(v, choices))))
}

func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = strconv.Quote(v)
	}
	return strings.Join(q, ", ")
}

// parseVNC reads a vnc address: an IP literal (IPv6 in brackets) and a
// port from 5900 (QEMU counts displays from there).
func parseVNC(s string) (net.IP, int, bool) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return nil, 0, false
	}
	ip := net.ParseIP(host)
	p, err := strconv.Atoi(port)
	if ip == nil || err != nil || p < 5900 || p > 65535 || strings.Contains(host, "%") {
		return nil, 0, false
	}
	return ip, p, true
}

func decodeVMs(blocks []*hcl.Block, ctx *hcl.EvalContext, prof *Profile) hcl.Diagnostics {
	var diags hcl.Diagnostics
	seen := map[string]*VM{}
	var hotplug *VM
	for _, b := range blocks {
		vm, d := decodeVM(b, ctx, prof)
		diags = append(diags, d...)
		diags = append(diags, vm.validate()...)
		nameRng := b.LabelRanges[0]
		if prev, dup := seen[vm.Name]; dup {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate vm",
				Detail: fmt.Sprintf("VM %q is already declared at %s.", vm.Name, prev.DeclRange), Subject: &nameRng})
			continue
		}
		seen[vm.Name] = vm
		if vm.USBHotplug {
			if hotplug != nil {
				rng := vm.DeclRange
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "usb_hotplug on two guests", Subject: &rng,
					Detail: fmt.Sprintf("vm %q and vm %q both take the USB devices plugged in: a device goes to one guest; keep usb_hotplug on one.", hotplug.Name, vm.Name)})
			}
			hotplug = vm
		}
		prof.VMs = append(prof.VMs, vm)
	}
	return diags
}

func decodeVM(b *hcl.Block, ctx *hcl.EvalContext, prof *Profile) (*VM, hcl.Diagnostics) {
	vm := &VM{Name: b.Labels[0], DeclRange: b.DefRange, Autostart: true, ShutdownTimeout: DefaultShutdown,
		Network: "user", Display: "none", VNC: "127.0.0.1:5900", Disk: VMDisk{Format: "qcow2"}}
	var diags hcl.Diagnostics
	if nameRng := b.LabelRanges[0]; !vmNameRE.MatchString(vm.Name) || len(vm.Name) > MaxVMNameLen {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid vm name",
			Detail:  fmt.Sprintf("A vm name must be 1-%d lower-case letters, digits or '-', starting with a letter (it names files and partitions).", MaxVMNameLen),
			Subject: &nameRng})
	}
	// dynamic "windows" { for_each = ... content { ... } } makes a block
	// that depends on a variable (Terraform's dynamic blocks).
	content, d := dynblock.Expand(b.Body, ctx).Content(vmSchema)
	diags = append(diags, d...)
	attrs := content.Attributes

	at := &vm.at
	vm.OS, _, d = oneOf(attrs, "os", "", []string{"windows11", "windows10", "linux"}, ctx)
	diags = append(diags, d...)
	windows := strings.HasPrefix(vm.OS, "windows")

	defFW := "uefi"
	if vm.OS == "windows11" {
		defFW = "uefi-secureboot"
	}
	vm.Firmware, at.firmware, d = oneOf(attrs, "firmware", defFW, []string{"uefi", "uefi-secureboot", "bios"}, ctx)
	diags = append(diags, d...)
	vm.TPM, at.tpm, d = evalBool(attrs, "tpm", ctx)
	diags = append(diags, d...)

	// Memory: a size or a share of the host's RAM.
	mem, memAttr, d := evalString(attrs, "memory", ctx)
	at.memory = memAttr
	diags = append(diags, d...)
	switch {
	case memAttr == nil:
		vm.MemoryBytes = 4 << 30
		if vm.OS == "linux" {
			vm.MemoryBytes = 1 << 30
		}
	case d.HasErrors():
	case percentRE.MatchString(mem):
		n, _ := strconv.Atoi(percentRE.FindStringSubmatch(mem)[1])
		if n < 1 || n > 100 {
			diags = append(diags, attrDiag(memAttr, "Invalid memory", fmt.Sprintf("memory %q must be a share from 1%% to 100%% of the host's RAM.", mem)))
		}
		vm.MemoryPercent = n
	default:
		n, err := ParseSize(mem)
		switch {
		case err != nil:
			diags = append(diags, attrDiag(memAttr, "Invalid memory", fmt.Sprintf("memory: %s; give a size such as \"8GiB\" or a share of the host's RAM such as \"75%%\".", err)))
		case n < 64<<20 || n%(1<<20) != 0:
			diags = append(diags, attrDiag(memAttr, "Invalid memory", fmt.Sprintf("memory must be whole MiB and at least 64MiB; %s is not.", FormatSize(n))))
		default:
			vm.MemoryBytes = n
		}
	}

	// CPUs: a number, "all" or "all-but-N".
	cv, cpuAttr, d := evalAs(attrs, "cpus", cty.DynamicPseudoType, ctx)
	at.cpus = cpuAttr
	diags = append(diags, d...)
	switch {
	case cpuAttr == nil:
		vm.CPUs = 2
	case d.HasErrors() || cv.IsNull():
	case cv.Type() == cty.Number:
		bf := cv.AsBigFloat()
		n, _ := bf.Int64()
		if !bf.IsInt() || n < 1 || n > 255 {
			diags = append(diags, attrDiag(cpuAttr, "Invalid cpus", "cpus must be a whole number from 1 to 255, \"all\" or \"all-but-N\"."))
		} else {
			vm.CPUs = int(n)
		}
	case cv.Type() == cty.String && cv.AsString() == "all":
		vm.CPUsAll = true
	case cv.Type() == cty.String && allButRE.MatchString(cv.AsString()):
		vm.CPUsAll = true
		vm.CPUsAllBut, _ = strconv.Atoi(allButRE.FindStringSubmatch(cv.AsString())[1])
	default:
		diags = append(diags, attrDiag(cpuAttr, "Invalid cpus", "cpus must be a whole number from 1 to 255, \"all\" or \"all-but-N\" (such as \"all-but-1\", which leaves one CPU to the host)."))
	}

	artRef := func(name string) (string, *hcl.Attribute) {
		v, attr, d := evalString(attrs, name, ctx)
		diags = append(diags, d...)
		if name == "kernel" && v == HostKernel {
			return v, attr
		}
		if attr != nil && !d.HasErrors() && prof.Artifact(v) == nil {
			diags = append(diags, attrDiag(attr, "Unknown artifact",
				fmt.Sprintf("%s %q names no artifact block.%s", name, v, didYouMean(v, artifactNames(prof.Artifacts)))))
		}
		return v, attr
	}
	vm.InstallMedia, _ = artRef("install_media")
	vm.Drivers, _ = artRef("drivers")
	vm.Kernel, at.kernel = artRef("kernel")
	vm.Initrd, at.initrd = artRef("initrd")
	vm.Cmdline, at.cmdline, d = evalString(attrs, "cmdline", ctx)
	diags = append(diags, d...)

	vm.Display, _, d = oneOf(attrs, "display", "none", []string{"none", "vnc", "sdl"}, ctx)
	diags = append(diags, d...)
	vnc, vncAttr, d := evalString(attrs, "vnc", ctx)
	diags = append(diags, d...)
	if a, ok := attrs["vnc_password"]; ok {
		// VNC's authentication needs the password itself, not a hash, and
		// the image's boot files are readable by whoever holds the stick.
		diags = append(diags, attrDiag(a, "vnc_password is not taken",
			"The image would carry it in clear. A VNC display beyond loopback gets a password hostd makes at the guest's first start and keeps on the data partition: `thinhost ctl vm NAME vnc-password` shows it, `thinhost ctl vm NAME new-vnc-password` replaces it. Remove vnc_password."))
	}
	if vncAttr != nil && !d.HasErrors() {
		_, _, ok := parseVNC(vnc)
		switch {
		case !ok:
			diags = append(diags, attrDiag(vncAttr, "Invalid vnc address", fmt.Sprintf("vnc %q must be IP:PORT with a port from 5900, such as \"127.0.0.1:5900\" (an IP address, not a name; IPv6 in brackets).", vnc)))
		default:
			vm.VNC = vnc
		}
		if vm.Display != "vnc" {
			diags = append(diags, attrDiag(vncAttr, "vnc without a VNC display", "vnc sets where the VNC display listens: set display = \"vnc\" too, or remove it."))
		}
	}
	usb, usbAttr, d := evalStringList(attrs, "usb", ctx)
	diags = append(diags, d...)
	for _, u := range usb {
		m := usbRE.FindStringSubmatch(u)
		if m == nil {
			diags = append(diags, attrDiag(usbAttr, "Invalid USB device", fmt.Sprintf("usb %q must be vendor:product in hex, as lsusb prints it (such as \"046d:c52b\").", u)))
			continue
		}
		v, _ := strconv.ParseUint(m[1], 16, 16)
		p, _ := strconv.ParseUint(m[2], 16, 16)
		vm.USB = append(vm.USB, USBDevice{uint16(v), uint16(p)})
	}
	vm.Network, _, d = oneOf(attrs, "network", "user", []string{"user", "none"}, ctx)
	diags = append(diags, d...)
	if auto, attr, d := evalBool(attrs, "autostart", ctx); attr != nil {
		diags = append(diags, d...)
		vm.Autostart = auto
	}
	vm.USBHotplug, _, d = evalBool(attrs, "usb_hotplug", ctx)
	diags = append(diags, d...)
	vm.Nested, _, d = evalBool(attrs, "nested", ctx)
	diags = append(diags, d...)
	vm.Sound = true
	if snd, attr, d := evalBool(attrs, "sound", ctx); attr != nil {
		diags = append(diags, d...)
		vm.Sound = snd
	}
	defShutdown := "stay"
	if windows {
		defShutdown = "poweroff"
	}
	vm.OnShutdown, _, d = oneOf(attrs, "on_shutdown", defShutdown, []string{"poweroff", "stay"}, ctx)
	diags = append(diags, d...)
	st, stAttr, d := evalString(attrs, "shutdown_timeout", ctx)
	diags = append(diags, d...)
	if stAttr != nil && !d.HasErrors() {
		dur, err := time.ParseDuration(st)
		if err != nil || dur < time.Second || dur > time.Hour {
			diags = append(diags, attrDiag(stAttr, "Invalid shutdown_timeout", fmt.Sprintf("shutdown_timeout %q must be a duration from 1s to 1h, such as \"90s\" or \"2m\".", st)))
		} else {
			vm.ShutdownTimeout = dur
		}
	}

	// The disk.
	diags = append(diags, decodeSingleton(content.Blocks.OfType("disk"), "disk", b.Body, true, func(db *hcl.Block) hcl.Diagnostics {
		dc, d := db.Body.Content(vmDiskSchema)
		at.diskSize = dc.Attributes["size"]
		size, d2 := decodeSize(dc.Attributes, "size", ctx, 0)
		d = append(d, d2...)
		if a := dc.Attributes["size"]; a != nil && !d2.HasErrors() && (size < 1<<20 || size%(1<<20) != 0) {
			d = append(d, attrDiag(a, "Invalid disk size", "disk size must be whole MiB and at least 1MiB."))
		}
		vm.Disk.Size = size
		vm.Disk.Format, _, d2 = oneOf(dc.Attributes, "format", "qcow2", []string{"qcow2", "raw"}, ctx)
		return append(d, d2...)
	})...)
	diags = append(diags, decodeSingleton(content.Blocks.OfType("windows"), "windows", b.Body, false, func(wb *hcl.Block) hcl.Diagnostics {
		at.windows = wb
		var d hcl.Diagnostics
		vm.Windows, d = decodeWindows(wb, vm.Name, ctx)
		return d
	})...)
	at.decoded = !diags.HasErrors()
	return vm, diags
}

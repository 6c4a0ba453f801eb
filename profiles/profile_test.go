package profiles

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/thinhost/thinhost/internal/testenv"

	"github.com/google/go-cmp/cmp"

	"github.com/thinhost/thinhost/images/layout/config"
)

// TestDiagnosticsGolden parses each testdata/*.hcl and compares the rendered
// diagnostics (as `thinhost validate` prints them) with its .golden file.
func TestDiagnosticsGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.hcl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".hcl")
		t.Run(name, func(t *testing.T) {
			p := NewParser()
			_, diags := p.ParseFile(f, Options{})
			var buf bytes.Buffer
			if err := p.WriteDiagnostics(&buf, diags, 100, false); err != nil {
				t.Fatal(err)
			}
			testenv.Golden(t, strings.TrimSuffix(f, ".hcl")+".golden", buf.String())
		})
	}
}

// TestAcceptanceDiagnostics is the foundation issue's acceptance: an
// unknown block, a wrong type and a URL artifact without sha256 give three
// errors in one run, each with file:line:col.
func TestAcceptanceDiagnostics(t *testing.T) {
	_, diags := Parse("testdata/acceptance.hcl", Options{})
	want := []struct {
		summary string
		line    int
		col     int
	}{
		{"Missing sha256", 3, 9},
		{"Incorrect attribute value type", 7, 14},
		{"Unsupported block type", 13, 1},
	}
	errs := diags.Errs()
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d: %v", len(errs), len(want), diags)
	}
	for _, w := range want {
		found := false
		for _, d := range diags {
			if d.Summary == w.summary && d.Subject != nil &&
				d.Subject.Filename == "testdata/acceptance.hcl" && d.Subject.Start.Line == w.line && d.Subject.Start.Column == w.col {
				found = true
			}
		}
		if !found {
			t.Errorf("no %q at line %d col %d in %v", w.summary, w.line, w.col, diags)
		}
	}
}

func TestValidProfile(t *testing.T) {
	p, diags := Parse("testdata/valid.hcl", Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if got, want := p.Host.Kernel.Modules, []string{"virtio_blk", "ext4", "virtio_net"}; !cmp.Equal(got, want) {
		t.Errorf("modules = %v, want %v", got, want)
	}
	if got := p.Artifact("kernel").Path; got != filepath.Join("testdata", "bzImage") {
		t.Errorf("kernel path = %q, want it resolved against the profile's directory", got)
	}
	if got := p.Artifact("drivers").SHA256; got != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("sha256 not normalized to lower case: %q", got)
	}
	if p.Storage.ImageSize != 4<<30 || p.Storage.DataSize != 1<<30 || p.Storage.ESPSize != 256*MiB {
		t.Errorf("storage = %+v", p.Storage)
	}
	if p.Host.Hostname != "laptop-1" || len(p.Host.Console) != 2 {
		t.Errorf("host = %+v", p.Host)
	}
}

func TestVariablesFromFlagsAndFiles(t *testing.T) {
	dir := t.TempDir()
	vf := filepath.Join(dir, "vars.hcl")
	if err := os.WriteFile(vf, []byte("kernel = \"from-file\"\nmods = [\"nvme\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, diags := Parse("testdata/valid.hcl", Options{VarFiles: []string{vf}, Vars: []string{"kernel=from-flag"}})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if got := filepath.Base(p.Artifact("kernel").Path); got != "from-flag" {
		t.Errorf("-var must win over -var-file: kernel = %q", got)
	}
	if got := p.Host.Kernel.Modules[0]; got != "nvme" {
		t.Errorf("list variable from file: modules = %v", p.Host.Kernel.Modules)
	}

	_, diags = Parse("testdata/valid.hcl", Options{Vars: []string{"kernl=x", "noequals"}})
	if len(diags.Errs()) != 2 {
		t.Fatalf("want 2 errors, got %v", diags)
	}
	if !strings.Contains(diags[0].Detail, `Did you mean "kernel"?`) {
		t.Errorf("undeclared variable should suggest the close name: %q", diags[0].Detail)
	}
	_, diags = Parse("testdata/valid.hcl", Options{Vars: []string{`mods=["a", 3`}})
	if !diags.HasErrors() {
		t.Error("a malformed list value must be an error")
	}
}

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in      string
		want    int64
		wantErr string
	}{
		{"512MiB", 512 << 20, ""},
		{"8GiB", 8 << 30, ""},
		{"1.5GiB", 3 << 29, ""},
		{"4096", 4096, ""},
		{"8GB", 0, `write "8GiB"`},
		{"8G", 0, `write "8GiB"`},
		{"100mb", 0, `write "100MiB"`},
		{"12 parsecs", 0, "unknown unit"},
		{"GiB", 0, "not a size"},
		{"0.3B", 0, "whole number"},
	} {
		got, err := ParseSize(c.in)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("ParseSize(%q) error = %v, want one containing %q", c.in, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for n, want := range map[int64]string{1 << 30: "1GiB", 3 << 29: "1536MiB", 1<<30 + 1: "1.00GiB", 512: "512B", 17 << 20: "17MiB"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestExamplesParse keeps every shipped example valid.
func TestExamplesParse(t *testing.T) {
	files, _ := filepath.Glob("../examples/*.hcl")
	if len(files) < 2 {
		t.Fatalf("want the example profiles, found %v", files)
	}
	for _, f := range files {
		if _, diags := Parse(f, Options{}); diags.HasErrors() {
			t.Errorf("%s: %v", f, diags)
		}
	}
}

// TestWindows11NeedsTPM: a windows11 VM without tpm is refused with a
// diagnostic at the vm block's file:line:col.
func TestWindows11NeedsTPM(t *testing.T) {
	_, diags := Parse("testdata/vms-bad.hcl", Options{})
	for _, d := range diags {
		if d.Summary == "Windows 11 needs a TPM" {
			if got := d.Subject.String(); got != "testdata/vms-bad.hcl:12,1-9" {
				t.Errorf("diagnostic at %s, want testdata/vms-bad.hcl:12,1-9", got)
			}
			return
		}
	}
	t.Fatalf("no TPM diagnostic in %v", diags)
}

// TestVMsDecode checks the values of the valid guests, defaults included.
func TestVMsDecode(t *testing.T) {
	p, diags := Parse("testdata/vms.hcl", Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	w := p.VM("windows")
	if w == nil || w.MemoryPercent != 75 || !w.CPUsAll || w.CPUsAllBut != 1 || w.Firmware != "uefi-secureboot" || !w.TPM ||
		w.Disk.Size != 128<<30 || w.Disk.Format != "qcow2" || !w.Autostart || w.Network != "user" ||
		w.ShutdownTimeout != DefaultShutdown || len(w.USB) != 2 || w.USB[1].String() != "8087:0a2b" {
		t.Errorf("windows: %+v", w)
	}
	if got, want := w.Windows.Config(w.OS), (&config.Windows{Language: "en-US", Locale: "en-US", Keyboard: "de-DE;en-US",
		TimeZone: "W. Europe Standard Time", Account: "anna", ComputerName: "WINDOWS", Image: "Windows 11 Pro",
		ProductKey: WindowsEditions["pro"].GenericKey}); w.Windows == nil || *got != *want {
		t.Errorf("windows setup: %+v, want %+v", got, want)
	}
	l := p.VM("legacy")
	if l == nil || l.MemoryBytes != 6<<30 || l.CPUs != 4 || l.Autostart || l.Firmware != "uefi" || l.VNC != "0.0.0.0:5901" ||
		l.Disk.Format != "raw" || l.ShutdownTimeout.String() != "3m0s" || !l.Nested || l.Sound || w.Nested || !w.Sound {
		t.Errorf("legacy: %+v", l)
	}
	tn := p.VM("tiny")
	if tn == nil || tn.Kernel != "kernel" || tn.Firmware != "bios" || tn.Network != "none" || tn.MemoryBytes != 256<<20 {
		t.Errorf("tiny: %+v", tn)
	}
}

// TestDrivers: the default set covers laptops and QEMU's virtio machine;
// a profile's modules come first and are required; exclude_modules
// takes names out of the set; on-request modules are kept apart.
func TestDrivers(t *testing.T) {
	k := Kernel{Modules: []string{"r8169", "my_driver"}, ExcludeModules: []string{"amdgpu"}}
	d := k.Drivers()
	if !slices.Equal(d.Listed, []string{"r8169", "my_driver"}) {
		t.Errorf("listed = %v", d.Listed)
	}
	all := append(append(append([]string{}, d.Early...), d.Late...), d.OnRequest...)
	for _, m := range []string{"nvme", "xhci_pci", "usb_storage", "sd_mod", "virtio_blk", "virtio_net", "i915", "iwlwifi", "snd_hda_intel", "hid_multitouch"} {
		if !slices.Contains(all, m) {
			t.Errorf("the default set lacks %s", m)
		}
	}
	if slices.Contains(all, "amdgpu") || slices.Contains(all, "r8169") {
		t.Errorf("excluded or listed modules are in the set's lists: %v", all)
	}
	if !slices.Contains(d.Early, "nvme") || slices.Contains(d.Early, "i915") || !slices.Contains(d.Late, "i915") {
		t.Errorf("storage must be early and GPUs late: early %v", d.Early)
	}
	if !slices.Equal(d.OnRequest, []string{"iwlmvm"}) || len(d.EarlyOnRequest) != 0 {
		t.Errorf("on request = %v, early %v", d.OnRequest, d.EarlyOnRequest)
	}
	if none := (&Kernel{Hardware: "none", Modules: []string{"ext4"}}).Drivers(); len(none.Early)+len(none.Late) != 0 {
		t.Errorf("hardware none ships a set: %+v", none)
	}
	if v := (&Kernel{Hardware: "virtio"}).Drivers(); slices.Contains(v.Early, "xhci_pci") || !slices.Contains(v.Early, "virtio_blk") {
		t.Errorf("virtio set: %+v", v)
	}
}

// TestLaptopTestGuest: examples/laptop.hcl is Windows 11 on a laptop, and
// with -var test_guest=... the test guest on the host's kernel instead; an
// attribute or artifact source set to null is one left unset.
func TestLaptopTestGuest(t *testing.T) {
	iso := filepath.Join(t.TempDir(), "stand-in.iso")
	vars := []string{"windows_iso=" + iso, "virtio_win_iso=" + iso}
	p, diags := Parse("../examples/laptop.hcl", Options{Vars: vars})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	w := p.VM("windows")
	if w.OS != "windows11" || w.Firmware != "uefi-secureboot" || !w.TPM || w.InstallMedia != "windows" || w.Kernel != "" || w.Cmdline != "" {
		t.Errorf("laptop.hcl's guest is not Windows 11: %+v", w)
	}
	for _, a := range p.Artifacts {
		if a.Name == "test-guest" {
			t.Errorf("the test guest's artifact is declared with test_guest unset: %+v", a)
		}
	}
	p, diags = Parse("../examples/laptop.hcl", Options{Vars: append(vars, "test_guest=/tmp/bare-guest.elf")})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	w = p.VM("windows")
	if w.OS != "linux" || w.Firmware != "bios" || w.TPM || w.InstallMedia != "" || w.Drivers != "" || w.Kernel != "test-guest" || w.Initrd != "" {
		t.Errorf("with test_guest set: %+v", w)
	}
}

// TestSecureBootDefault: a laptop profile boots the signed chain unless
// it says otherwise; any other profile boots systemd-boot.
func TestSecureBootDefault(t *testing.T) {
	for _, c := range []struct {
		src, want string
	}{
		{"host {\n  kernel {}\n}\npackages {}\n", SecureBootOff},
		{`host {
  kernel {
    hardware = "laptop"
  }
}
packages {}
`, SecureBootStock},
		{`host {
  kernel {
    hardware = "laptop"
  }
}
packages {}
boot {
  secure_boot = "off"
}
`, SecureBootOff},
	} {
		p, diags := NewParser().ParseSource([]byte(c.src), "t.hcl", Options{})
		if diags.HasErrors() {
			t.Fatalf("%s: %v", c.src, diags)
		}
		if p.Boot.SecureBoot != c.want {
			t.Errorf("secure_boot = %q, want %q for\n%s", p.Boot.SecureBoot, c.want, c.src)
		}
	}
}

// FuzzParse feeds the parser profiles and variable values: it never
// panics, and what it accepts holds only values hostd and QEMU can take as
// plain text (share paths, VNC addresses, sizes that cannot overflow).
func FuzzParse(f *testing.F) {
	for _, name := range []string{"valid", "shares", "vms", "sizes", "references"} {
		b, err := os.ReadFile("testdata/" + name + ".hcl")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b), "x")
	}
	f.Add("variable \"p\" {\n  type = string\n}\nhost {\n  kernel {}\n}\npackages {}\nshare \"s\" {\n  path = var.p\n}\n", "a\n[b]")
	f.Fuzz(func(t *testing.T, src, value string) {
		p, diags := NewParser().ParseSource([]byte(src), "fuzz.hcl", Options{Vars: []string{"p=" + value}})
		if diags.HasErrors() || p == nil {
			return
		}
		for _, sh := range p.Shares {
			if !config.ValidSharePath(sh.Path) || !config.ValidShareName(sh.Name) {
				t.Fatalf("accepted share %q with path %q", sh.Name, sh.Path)
			}
		}
		for _, vm := range p.VMs {
			if vm.VNC != "" {
				if _, _, ok := parseVNC(vm.VNC); !ok || strings.Contains(vm.VNC, ",") {
					t.Fatalf("accepted vnc %q", vm.VNC)
				}
			}
		}
		st := p.Storage
		if st.ImageSize > MaxSize || st.SystemSize > MaxSize || st.ESPSize > MaxSize || st.DataSize > MaxSize {
			t.Fatalf("accepted sizes %+v", st)
		}
	})
}

// TestAPIOnHostNetwork: the API stays on loopback unless the profile puts
// it on the host's network, as qemu-test.hcl does for run --forward.
func TestAPIOnHostNetwork(t *testing.T) {
	for _, c := range []struct {
		path string
		vars []string
		want bool
	}{
		{"../examples/qemu-test.hcl", []string{"guest_initrd=/dev/null"}, true},
		{"../examples/laptop.hcl", []string{"windows_iso=/dev/null", "virtio_win_iso=/dev/null"}, false},
	} {
		p, diags := Parse(c.path, Options{Vars: c.vars})
		if diags.HasErrors() {
			t.Fatalf("%s: %s", c.path, diags.Error())
		}
		if p.Host.APIOnHostNetwork != c.want {
			t.Errorf("%s: api_on_host_network = %v, want %v", c.path, p.Host.APIOnHostNetwork, c.want)
		}
	}
}

// TestLowBattery: 5% unless the profile says otherwise; 0 turns it off;
// beyond 50% is refused with the attribute's place.
func TestLowBattery(t *testing.T) {
	for _, c := range []struct {
		src  string
		want int
		err  string
	}{
		{"", DefaultLowBattery, ""},
		{"  low_battery = 0\n", 0, ""},
		{"  low_battery = 12\n", 12, ""},
		{"  low_battery = 80\n", 0, "t.hcl:2,17-19: Invalid low_battery"},
		{"  low_battery = 2.5\n", 0, "Invalid low_battery"},
	} {
		c.src = "host {\n" + c.src + "  kernel {\n  }\n}\npackages {}\n"
		p, diags := NewParser().ParseSource([]byte(c.src), "t.hcl", Options{})
		if c.err != "" {
			if !diags.HasErrors() || !strings.Contains(diags.Error(), c.err) {
				t.Errorf("%q: diagnostics %v, want %q", c.src, diags, c.err)
			}
			continue
		}
		if diags.HasErrors() {
			t.Fatalf("%q: %v", c.src, diags)
		}
		if p.Host.LowBattery != c.want {
			t.Errorf("%q: low_battery = %d, want %d", c.src, p.Host.LowBattery, c.want)
		}
	}
}

// TestCmdlineControlCharacters: a newline in the kernel command line
// would add lines to the loader entry; it is refused with its place.
func TestCmdlineControlCharacters(t *testing.T) {
	src := "host {\n  kernel {\n    cmdline = \"quiet\\nlinux /EFI/other.efi\"\n  }\n}\npackages {}\n"
	_, diags := NewParser().ParseSource([]byte(src), "t.hcl", Options{})
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "t.hcl:3,") || !strings.Contains(diags.Error(), "Control character in cmdline") {
		t.Errorf("diagnostics: %v", diags)
	}
}

// TestDataDiskDecode: the internal data disk, its serial as the disk
// reports it (NVMe pads with spaces), and TPM unlocking.
func TestDataDiskDecode(t *testing.T) {
	p, diags := Parse("testdata/datadisk.hcl", Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if s := p.Storage; s.DataDisk != DataDiskInternal || s.DataDiskSerial != "S4EWNX0R123456" || !s.Encrypt || !s.TPM {
		t.Errorf("storage %+v", s)
	}
	p, diags = Parse("testdata/valid.hcl", Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if s := p.Storage; s.DataDisk != DataDiskBoot || s.TPM {
		t.Errorf("defaults: storage %+v", s)
	}
}

// TestWifi reads testdata/wifi.hcl's networks, the dynamic one included.
func TestWifi(t *testing.T) {
	p, diags := Parse("testdata/wifi.hcl", Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	w := p.Wifi
	if w == nil || w.Country != "DE" || len(w.Networks) != 2 {
		t.Fatalf("wifi = %+v", w)
	}
	home, office := w.Networks[0], w.Networks[1]
	if home.Name != "home" || home.SSID != "Home Network" || home.Priority != 10 || home.Security != "wpa2-wpa3" || home.PSK != "correct horse battery staple" {
		t.Errorf("home = %+v", home)
	}
	if office.Name != "office" || !office.Hidden || office.Security != "wpa3" {
		t.Errorf("office = %+v", office)
	}
	cfg := w.Config()
	if len(cfg.Networks) != 2 || cfg.Networks[0].SSID != "Home Network" {
		t.Errorf("config = %+v", cfg)
	}
}

// TestDiagnosticShowsVariables: a diagnostic at an attribute set from a
// variable says the variable's value, as Terraform's do; a sensitive
// variable's never.
func TestDiagnosticShowsVariables(t *testing.T) {
	src := []byte(`
variable "mem" {
  default = "2GiB"
}
variable "secret_cpus" {
  default   = 1
  sensitive = true
}
host {
  kernel {
    artifact = "k"
  }
}
artifact "k" {
  path = "vmlinuz"
}
vm "win" {
  os     = "windows11"
  tpm    = true
  memory = var.mem
  cpus   = var.secret_cpus
  disk {
    size = "64GiB"
  }
}
`)
	p := NewParser()
	_, diags := p.ParseSource(src, "vars.hcl", Options{})
	var buf bytes.Buffer
	if err := p.WriteDiagnostics(&buf, diags, 100, false); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "Too little memory for Windows 11") || !strings.Contains(out, `var.mem as "2GiB"`) {
		t.Errorf("the memory diagnostic does not show var.mem's value:\n%s", out)
	}
	if !strings.Contains(out, "Too few CPUs for Windows 11") || strings.Contains(out, "var.secret_cpus as") {
		t.Errorf("the cpus diagnostic shows a sensitive variable, or is missing:\n%s", out)
	}
}

package cli

import (
	"bytes"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/thinhost/thinhost/hostd/api"
	"github.com/thinhost/thinhost/hostd/vm"
	"github.com/thinhost/thinhost/images/imagetest"
	"github.com/thinhost/thinhost/images/layout/config"
)

// TestValidateReportsEveryProblem: the acceptance profile (an unknown block,
// a wrong type, a URL artifact without sha256) gives three errors in one
// run, each with file:line:col and the source line.
func TestValidateReportsEveryProblem(t *testing.T) {
	_, stderr, code := runCLI(t, "validate", "../../../profiles/testdata/acceptance.hcl")
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if n := strings.Count(stderr, "Error: "); n != 3 {
		t.Errorf("want 3 errors, got %d:\n%s", n, stderr)
	}
	for _, want := range []string{
		"on ../../../profiles/testdata/acceptance.hcl line 3, in artifact \"kernel\":",
		"on ../../../profiles/testdata/acceptance.hcl line 7, in host:",
		"on ../../../profiles/testdata/acceptance.hcl line 13, in network:",
		`   3:   url = "https://example.org/linux-image.deb"`,
		"Missing sha256", "Incorrect attribute value type", "Unsupported block type",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("output lacks %q:\n%s", want, stderr)
		}
	}
}

func TestValidateExample(t *testing.T) {
	stdout, stderr, code := runCLI(t, "validate", "../../../examples/laptop.hcl", "-var", "hostname=desk-7")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, `host "desk-7"`) {
		t.Errorf("-var did not reach the profile: %q", stdout)
	}
}

func TestBuildRefusesBadOutput(t *testing.T) {
	dir := t.TempDir()
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"no output":        {[]string{"build", "../../../examples/qemu-test.hcl"}, "add -o IMAGE"},
		"device":           {[]string{"build", "../../../examples/qemu-test.hcl", "-o", "/dev/null"}, "not a regular file"},
		"directory":        {[]string{"build", "../../../examples/qemu-test.hcl", "-o", dir}, "not a regular file"},
		"profile problems": {[]string{"build", "../../../profiles/testdata/sizes.hcl", "-o", filepath.Join(dir, "x.img")}, "Invalid size"},
	} {
		_, stderr, code := runCLI(t, c.args...)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want failure mentioning %q", name, code, stderr, c.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("refused builds left files behind: %v", entries)
	}
}

func TestRunRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "x.img")
	os.WriteFile(img, nil, 0o644)
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"missing image": {[]string{"run", filepath.Join(dir, "nope.img"), "--check"}, "nope.img"},
		"device":        {[]string{"run", "/dev/null", "--check", "--ovmf-code", img, "--ovmf-vars", img}, "character device"},
		"bad forward":   {[]string{"run", img, "--forward", "80"}, "HOSTPORT:GUESTPORT"},
		"bad memory":    {[]string{"run", img, "--memory", "2GB"}, `write "2GiB"`},
		"half ovmf":     {[]string{"run", img, "--ovmf-code", img}, "both --ovmf-code and --ovmf-vars"},
		"bad machine":   {[]string{"run", img, "--machine", "pc"}, `--machine "pc": want virtio or laptop`},
		"bad disk size": {[]string{"run", img, "--machine", "laptop", "--internal-disk", "32GB"}, `--internal-disk`},
	} {
		_, stderr, code := runCLI(t, c.args...)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want failure mentioning %q", name, code, stderr, c.want)
		}
	}
}

func TestTerraformStyleFlags(t *testing.T) {
	got := terraformStyle([]string{"build", "-var", "a=b", "-var=c=d", "-var-file", "f", "-v", "--", "-var"})
	want := []string{"build", "--var", "a=b", "--var=c=d", "--var-file", "f", "-v", "--", "-var"}
	if !cmp.Equal(got, want) {
		t.Errorf("terraformStyle = %q, want %q", got, want)
	}
}

func TestParseMemory(t *testing.T) {
	for in, want := range map[string]int{"1024": 1024, "1GiB": 1024, "768MiB": 768} {
		if got, err := parseMemory(in); err != nil || got != want {
			t.Errorf("parseMemory(%q) = %d, %v", in, got, err)
		}
	}
	for _, bad := range []string{"0", "-5", "1GB", "1.5KiB"} {
		if _, err := parseMemory(bad); err == nil {
			t.Errorf("parseMemory(%q) accepted", bad)
		}
	}
}

func TestHelpNamesEveryCommand(t *testing.T) {
	stdout, _, code := runCLI(t, "--help")
	if code != 0 {
		t.Fatal(code)
	}
	for _, c := range []string{"validate", "build", "run"} {
		if !regexp.MustCompile(`(?m)^\s+` + c + `\s`).MatchString(stdout) {
			t.Errorf("help lacks %s:\n%s", c, stdout)
		}
	}
}

// TestFlashNeedsConfirmation: with no terminal and no --yes, flash refuses
// and the target keeps every byte.
func TestFlashNeedsConfirmation(t *testing.T) {
	dir := t.TempDir()
	image, _ := imagetest.WriteSmall(t, dir)
	target := filepath.Join(dir, "target.raw")
	if err := os.WriteFile(target, bytes.Repeat([]byte("old data "), 40<<20/9), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(target, 300<<20); err != nil {
		t.Fatal(err)
	}
	before := imagetest.Hash(t, target)
	_, stderr, code := runCLI(t, "flash", image, target, "--allow-file")
	if code == 0 || !strings.Contains(stderr, "no terminal to confirm on; pass --yes") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if imagetest.Hash(t, target) != before {
		t.Error("flash wrote without confirmation")
	}
	stdout, stderr, code := runCLI(t, "flash", image, target, "--allow-file", "--yes")
	if code != 0 || !strings.Contains(stdout, "holds the image") {
		t.Errorf("with --yes: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// TestVMArgsLaptop is the acceptance of `thinhost vm args`: the laptop
// profile's Windows 11 guest gets q35, secure pflash with OVMF's Secure
// Boot code and a per-VM variable store, an emulated TPM, virtio-blk and
// virtio-net.
func TestVMArgsLaptop(t *testing.T) {
	stdout, stderr, code := runCLI(t, "vm", "args", "../../../examples/laptop.hcl", "--cpus", "8", "--memory", "16GiB", "--cpu-vendor", "GenuineIntel")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"/system/usr/bin/qemu-system-x86_64 \\\n",
		"-machine q35,smm=on,hpet=off",
		"-global driver=cfi.pflash01,property=secure,value=on",
		"if=pflash,format=raw,unit=0,readonly=on,file=/system/usr/share/OVMF/OVMF_CODE_4M.secboot.fd",
		"if=pflash,format=raw,unit=1,file=/data/vms/windows/OVMF_VARS.fd",
		"-tpmdev emulator,id=tpm0,chardev=chrtpm", "-device tpm-tis,tpmdev=tpm0",
		"-device virtio-blk-pci,drive=disk0", "-device virtio-net-pci,netdev=net0",
		"-accel kvm", "hv_relaxed", "-smp 7,", "-m 12288M",
		"file=/dev/disk/by-partlabel/thinhost-windows-install",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("vm args lacks %q:\n%s", want, stdout)
		}
	}
	stdout, _, code = runCLI(t, "vm", "args", "../../../examples/laptop.hcl", "--kvm=false")
	if code != 0 || !strings.Contains(stdout, "-accel tcg,thread=multi") || strings.Contains(stdout, "hv_relaxed") {
		t.Errorf("--kvm=false: exit %d\n%s", code, stdout)
	}
	_, stderr, code = runCLI(t, "vm", "args", "../../../examples/laptop.hcl", "--vm", "nope")
	if code == 0 || !strings.Contains(stderr, `no vm "nope" (it has: windows)`) {
		t.Errorf("--vm nope: exit %d, %q", code, stderr)
	}
}

// TestVMDriveLaptop is the acceptance of `thinhost vm drive`: the laptop
// profile's THINHOST drive holds a well-formed answer file (xmllint) with
// the driver paths, the local account and the first-logon command, the
// setup script, and none of the profile's sensitive values.
func TestVMDriveLaptop(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "drive")
	secrets := []string{"shell-secret-4711", "page-secret-4711"}
	stdout, stderr, code := runCLI(t, "vm", "drive", "../../../examples/laptop.hcl", "-o", dir,
		"-var", "shell_password="+secrets[0], "-var", "page_password="+secrets[1], "-var", "windows_account=anna")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "autounattend.xml") || !strings.Contains(stdout, "note: the setup password") {
		t.Errorf("stdout: %s", stdout)
	}
	xmlPath := filepath.Join(dir, "autounattend.xml")
	answer, err := os.ReadFile(xmlPath)
	if err != nil {
		t.Fatal(err)
	}
	if xmllint, err := exec.LookPath("xmllint"); err == nil {
		if out, err := exec.Command(xmllint, "--noout", xmlPath).CombinedOutput(); err != nil {
			t.Errorf("xmllint: %v\n%s", err, out)
		}
	} else {
		t.Log("no xmllint: the answer file is read with encoding/xml alone")
	}
	var doc struct {
		Paths    []string `xml:"settings>component>DriverPaths>PathAndCredentials>Path"`
		Accounts []string `xml:"settings>component>UserAccounts>LocalAccounts>LocalAccount>Name"`
		Commands []string `xml:"settings>component>FirstLogonCommands>SynchronousCommand>CommandLine"`
	}
	if err := xml.Unmarshal(answer, &doc); err != nil {
		t.Fatalf("the answer file: %v", err)
	}
	if !slices.Contains(doc.Paths, `D:\viostor\w11\amd64`) || !slices.Contains(doc.Paths, `E:\NetKVM\w11\amd64`) {
		t.Errorf("driver paths: %q", doc.Paths)
	}
	if !slices.Equal(doc.Accounts, []string{"anna"}) || len(doc.Commands) != 1 || !strings.Contains(doc.Commands[0], "thinhost-setup.cmd") {
		t.Errorf("accounts %q, first logon %q", doc.Accounts, doc.Commands)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		for _, sec := range secrets {
			if strings.Contains(string(b), sec) {
				t.Errorf("%s carries the sensitive %q", e.Name(), sec)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "thinhost-setup.cmd")); err != nil {
		t.Error(err)
	}
	// The test guest is Linux: no THINHOST drive for it.
	_, stderr, code = runCLI(t, "vm", "drive", "../../../examples/laptop.hcl", "-o", dir, "-var", "test_guest=g.elf")
	if code == 0 || !strings.Contains(stderr, "has no Windows vm") {
		t.Errorf("the test guest: exit %d, %q", code, stderr)
	}
}

// TestParseAnswer: --answer is PROMPT=TEXT, one line; on the laptop its
// text must be typeable, and Enter follows it.
func TestParseAnswer(t *testing.T) {
	a, err := parseAnswer("passphrase: =correct horse", true)
	if err != nil || a.prompt != "passphrase: " || a.text != "correct horse" || a.keys[len(a.keys)-1] != "ret" || len(a.keys) != len("correct horse")+1 {
		t.Errorf("parseAnswer = %+v, %v", a, err)
	}
	for _, bad := range []string{"no equals sign", "=text without a prompt", "p=two\nlines"} {
		if _, err := parseAnswer(bad, false); err == nil {
			t.Errorf("parseAnswer(%q) passed", bad)
		}
	}
	if _, err := parseAnswer("p=ünïcode", true); err == nil {
		t.Error("untypeable text passed on the laptop")
	}
}

// TestConsoleActions: --press is PROMPT=KEYS with QEMU key combinations,
// --screenshot-at PROMPT=FILE; both with the answers, in one list.
func TestConsoleActions(t *testing.T) {
	acts, err := consoleActions(runFlags{answers: []string{"password: =secret12"}, presses: []string{"ready=ctrl-alt-shift-f12,ret"},
		shotsAt: []string{"back to=panel.png"}}, true)
	if err != nil || len(acts) != 3 {
		t.Fatalf("consoleActions = %+v, %v", acts, err)
	}
	if p := acts[1]; p.prompt != "ready" || strings.Join(p.keys, " ") != "ctrl-alt-shift-f12 ret" || p.text != "" || p.shot != "" {
		t.Errorf("--press: %+v", p)
	}
	if s := acts[2]; s.prompt != "back to" || s.shot != "panel.png" || len(s.keys) != 0 {
		t.Errorf("--screenshot-at: %+v", s)
	}
	for _, f := range []runFlags{
		{presses: []string{"no keys="}}, {presses: []string{"=ret"}}, {presses: []string{"p=ctrl+alt"}}, {presses: []string{"no equals"}},
		{shotsAt: []string{"p="}}, {shotsAt: []string{"=f.png"}},
	} {
		if _, err := consoleActions(f, true); err == nil {
			t.Errorf("consoleActions(%+v) passed", f)
		}
	}
}

// TestPlainName: an SSID any access point chose never reaches the
// terminal raw.
func TestPlainName(t *testing.T) {
	for in, want := range map[string]string{"home": "home", "": "", "Cafe 1": `"Cafe 1"`, "x\x1b[2Jy": `"x\x1b[2Jy"`} {
		if got := plainName(in); got != want {
			t.Errorf("plainName(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestJoinedAs: two of the host's networks share an SSID (one passphrase
// refused, the other right): waiting for one by name is over only when
// the host says that one joined; an SSID that is no network's name counts
// by the SSID; an older host that names none counts by the SSID.
func TestJoinedAs(t *testing.T) {
	w := &api.Wifi{Connected: true, SSID: "thinhost test", Network: "right", Networks: []api.WifiNetwork{
		{Name: "wrong", SSID: "thinhost test"}, {Name: "right", SSID: "thinhost test"}}}
	for network, want := range map[string]bool{"right": true, "wrong": false, "thinhost test": true, "other": false} {
		if got := joinedAs(w, network); got != want {
			t.Errorf("joinedAs(%q) = %v, want %v", network, got, want)
		}
	}
	w.Network = ""
	if !joinedAs(w, "thinhost test") || !joinedAs(w, "wrong") {
		t.Error("without the network's name, the SSID decides")
	}
}

// TestVMArgsTPM: vm args shows swtpm as hostd starts it, where hostd
// keeps a guest's files: the state on the data partition, the socket
// under /run.
func TestVMArgsTPM(t *testing.T) {
	var b bytes.Buffer
	printVMArgs(&b, &config.VM{Name: "win", OS: "windows", Firmware: "uefi-secureboot", TPM: true, MemoryBytes: 4 << 30, CPUs: 2, DiskSize: 64 << 30, DiskFormat: "qcow2"},
		vm.Host{Root: "/system", CPUs: 4, MemBytes: 16 << 30, CPUVendor: "intel"})
	want := "# after: /system/usr/bin/swtpm socket --tpm2 --tpmstate dir=/data/vms/win/tpm --ctrl type=unixio,path=/run/vms/win/swtpm.sock --log level=1\n"
	if !strings.Contains(b.String(), want) {
		t.Errorf("vm args lacks %q:\n%s", want, b.String())
	}
	if !strings.Contains(b.String(), "/data/vms/win/disk.qcow2") {
		t.Errorf("vm args does not name the disk where hostd keeps it:\n%s", b.String())
	}
}

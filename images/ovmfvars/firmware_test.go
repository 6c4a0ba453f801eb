package ovmfvars_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/images/ovmfvars"
	"github.com/thinhost/thinhost/internal/testenv"
	"github.com/thinhost/thinhost/internal/testguest"
)

// TestFirmwareReadsIt boots the test guest through OVMF with the new
// store (OVMF's plain code: it reads the same store and does not check
// the guest's kernel), and the guest lists KEK and db as the firmware
// gives them to Linux through efivarfs.
func TestFirmwareReadsIt(t *testing.T) {
	testenv.NeedE2E(t)
	qemu := testenv.NeedTool(t, "qemu-system-x86_64")
	testenv.NeedFile(t, layout.OVMFCode, "apt-get install ovmf")
	testenv.NeedFile(t, layout.OVMFMSVars, "apt-get install ovmf")
	raw, err := os.ReadFile(layout.OVMFMSVars)
	if err != nil {
		t.Fatal(err)
	}
	out, err := ovmfvars.WithMicrosoft2023(raw)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	vars := filepath.Join(dir, "vars.fd")
	if err := os.WriteFile(vars, out, 0o644); err != nil {
		t.Fatal(err)
	}
	kernel, initrd := testguest.ForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, "-nodefaults", "-no-user-config", "-machine", "q35", "-accel", "tcg", "-m", "512M",
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+layout.OVMFCode,
		"-drive", "if=pflash,format=raw,unit=1,file="+vars,
		"-kernel", kernel, "-initrd", initrd, "-append", testguest.Cmdline,
		"-display", "none", "-serial", "stdio")
	var console bytes.Buffer
	cmd.Stdout, cmd.Stderr = &console, &console
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	for !strings.Contains(console.String(), "thinhost-guest: secure boot db:") {
		if ctx.Err() != nil {
			t.Fatalf("the guest did not list db:\n%s", console.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	lines := console.String()
	for _, want := range []string{"Microsoft Corporation KEK CA 2011", "Microsoft Corporation KEK 2K CA 2023"} {
		if !strings.Contains(lineWith(lines, "secure boot KEK:"), want) {
			t.Errorf("the firmware's KEK lacks %s:\n%s", want, lines)
		}
	}
	for _, want := range []string{"Microsoft Windows Production PCA 2011", "Windows UEFI CA 2023", "Microsoft UEFI CA 2023"} {
		if !strings.Contains(lineWith(lines, "secure boot db:"), want) {
			t.Errorf("the firmware's db lacks %s:\n%s", want, lines)
		}
	}
	t.Log(lineWith(lines, "secure boot KEK:"))
	t.Log(lineWith(lines, "secure boot db:"))
}

func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

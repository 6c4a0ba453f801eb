// Package kvm tells whether QEMU can run guests with KVM on this machine.
// Both `thinhost run` (on the build machine) and hostd (on the laptop) ask.
package kvm

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Command builds the QEMU command to run with args.
type Command func(ctx context.Context, args ...string) *exec.Cmd

// Probe reports whether QEMU can run a guest with KVM here, and if not,
// why. Opening /dev/kvm is not enough: on some hosts (nested
// virtualization without VMX/SVM exposed) KVM answers but QEMU aborts when
// it sets the vCPU's MSRs, and on others (this project's CI machine) the
// machine starts but KVM fails at the firmware's first instructions
// ("KVM internal error ... emulation failure" at OVMF's fninit) and the
// guest stops there. So the probe starts a q35 machine with -cpu host
// and firmware, lets it run for runFor, asks QMP (on stdio) whether it
// still runs, and quits it. firmware is the machine's firmware code (OVMF)
// for its flash: a thinhost host carries no SeaBIOS, which QEMU loads by
// default; "" keeps QEMU's default.
func Probe(ctx context.Context, qemu Command, firmware string) (bool, string) {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false, err.Error()
	}
	f.Close()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	args := []string{"-accel", "kvm", "-machine", "q35", "-cpu", "host",
		"-display", "none", "-nodefaults", "-qmp", "stdio"}
	if firmware != "" {
		// As the guests load it: a flash device (OVMF's 4 MiB build is
		// not a -bios image).
		args = append(args, "-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+strings.ReplaceAll(firmware, ",", ",,"))
	}
	cmd := qemu(ctx, args...)
	// A QEMU stuck in the kernel (a broken nested KVM) outlives the
	// timeout's kill; Run must not wait for it forever: the host goes on
	// with TCG.
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return false, err.Error()
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		return false, fmt.Sprintf("QEMU cannot start a KVM guest: %v", err)
	}
	io.WriteString(stdin, `{"execute":"qmp_capabilities"}`+"\n")
	select {
	case <-time.After(runFor):
	case <-ctx.Done():
	}
	io.WriteString(stdin, `{"execute":"query-status"}`+"\n"+`{"execute":"quit"}`+"\n")
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		if ctx.Err() != nil {
			return false, "QEMU did not run a KVM guest within 15s"
		}
		return false, fmt.Sprintf("QEMU cannot start a KVM guest: %s", lastLine(out.String(), err))
	}
	if bytes.Contains(out.Bytes(), []byte("error:")) {
		return false, fmt.Sprintf("QEMU cannot start a KVM guest: %s", lastLine(out.String(), nil))
	}
	if bytes.Contains(out.Bytes(), []byte("KVM internal error")) || bytes.Contains(out.Bytes(), []byte(`"internal-error"`)) {
		return false, "KVM stopped the guest at its firmware's first instructions (KVM internal error)"
	}
	if !bytes.Contains(out.Bytes(), []byte(`"running": true`)) {
		return false, fmt.Sprintf("the KVM guest was not running after %s: %s", runFor, lastLine(out.String(), nil))
	}
	return true, ""
}

// runFor is how long the probe lets its guest run: KVM's failures at the
// firmware's first instructions come within milliseconds.
const runFor = 300 * time.Millisecond

func lastLine(s string, err error) string {
	var last string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "{") {
			last = l
			if strings.Contains(l, "error") {
				return l
			}
		}
	}
	if last == "" && err != nil {
		return err.Error()
	}
	return last
}

// Package kvm tells whether QEMU can run guests with KVM on this machine.
// Both `thinhost run` (on the build machine) and hostd (on the laptop) ask.
package kvm

import (
	"bytes"
	"context"
	"fmt"
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
// it sets the vCPU's MSRs. So the probe starts a paused q35 machine with
// -cpu host — which already loads the vCPU state — and quits it over QMP on
// stdio. It takes a few tens of milliseconds. firmware is the machine's
// firmware code (OVMF) for its flash: a thinhost host carries no
// SeaBIOS, which QEMU loads by default even for a paused machine; ""
// keeps QEMU's default.
func Probe(ctx context.Context, qemu Command, firmware string) (bool, string) {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false, err.Error()
	}
	f.Close()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	args := []string{"-accel", "kvm", "-machine", "q35", "-cpu", "host",
		"-display", "none", "-nodefaults", "-S", "-qmp", "stdio"}
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
	cmd.Stdin = strings.NewReader(`{"execute":"qmp_capabilities"}` + "\n" + `{"execute":"quit"}` + "\n")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return false, "QEMU did not start a paused KVM guest within 15s"
		}
		return false, fmt.Sprintf("QEMU cannot start a KVM guest: %s", lastLine(out.String(), err))
	}
	if bytes.Contains(out.Bytes(), []byte("error:")) {
		return false, fmt.Sprintf("QEMU cannot start a KVM guest: %s", lastLine(out.String(), nil))
	}
	return true, ""
}

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

package kvm

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/thinhost/thinhost/internal/testenv"
)

// TestProbe asks this machine's QEMU with Debian's OVMF. Where it says
// KVM works, a guest's firmware ran under it; where not, it says why.
func TestProbe(t *testing.T) {
	qemu := testenv.NeedTool(t, "qemu-system-x86_64")
	const ovmf = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	if _, err := os.Stat(ovmf); err != nil {
		t.Skip(err)
	}
	ok, why := Probe(context.Background(), func(ctx context.Context, args ...string) *exec.Cmd {
		return exec.CommandContext(ctx, qemu, args...)
	}, ovmf)
	t.Logf("KVM usable: %v %s", ok, why)
	if !ok && why == "" {
		t.Error("KVM refused without a reason")
	}
	if ok && why != "" {
		t.Errorf("KVM usable, with a reason against it: %s", why)
	}
}

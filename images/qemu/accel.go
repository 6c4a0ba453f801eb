package qemu

import (
	"context"
	"os/exec"

	"github.com/thinhost/thinhost/internal/kvm"
)

// Accelerators.
const (
	AccelKVM = "kvm"
	AccelTCG = "tcg"
)

// ProbeKVM reports whether QEMU (binary) can run a guest with KVM here,
// and if not, why (see kvm.Probe).
func ProbeKVM(ctx context.Context, binary, firmware string) (bool, string) {
	return kvm.Probe(ctx, func(ctx context.Context, args ...string) *exec.Cmd {
		return exec.CommandContext(ctx, binary, args...)
	}, firmware)
}

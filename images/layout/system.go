package layout

import "fmt"

// The system image's contract: where the programs and data hostd runs
// guests with are, inside the system image (under /system on the host; at
// / on a build machine that runs them itself). The builder puts them there
// (from Debian's packages) and hostd runs them from there.
const (
	// OVMF's firmware and variable stores (Debian's ovmf package).
	OVMFCode       = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	OVMFVars       = "/usr/share/OVMF/OVMF_VARS_4M.fd"
	OVMFSecureCode = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
	// OVMFMSVars has Microsoft's keys enrolled and Secure Boot on, as
	// Windows expects.
	OVMFMSVars = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"
	// OVMFMSVars2023 is OVMFMSVars with Microsoft's 2023 KEK and db
	// certificates added beside the 2011 ones, which the builder writes
	// (images/ovmfvars): Windows media signed by the "Windows UEFI CA
	// 2023" need it. New Secure Boot guests start from it.
	OVMFMSVars2023 = "/usr/share/OVMF/OVMF_VARS_4M.ms2023.fd"
	// GuestCtlPath is thinhost.exe, thinhost built for Windows (ctl and
	// validate), which a Windows guest's THINHOST drive carries.
	GuestCtlPath = "/usr/share/thinhost/thinhost.exe"
	// QEMUDataDir holds QEMU's own firmware (SeaBIOS, option ROMs).
	QEMUDataDir = "/usr/share/qemu"
	QEMUBinary  = "/usr/bin/qemu-system-x86_64"
	// ALSAConfigDir is alsa-lib's configuration (alsa.conf, cards/).
	ALSAConfigDir = "/usr/share/alsa"
	// ALSAUCMDir is ALSA's use-case configurations (alsa-ucm-conf): how
	// a laptop's card is set up where its driver leaves that to user
	// space (SOF, SoundWire).
	ALSAUCMDir = ALSAConfigDir + "/ucm2"
	// QEMUModuleDir holds QEMU's loadable modules (its TCG accelerator
	// among them); hostd points QEMU_MODULE_DIR at it.
	QEMUModuleDir = "/usr/lib/x86_64-linux-gnu/qemu"
	// EGLVendorDir holds glvnd's EGL vendor files; DRIDir Mesa's drivers
	// (display = "sdl" draws through them); GBMBackendDir the GBM backend
	// of Mesa 24.3 and later, which loads its drivers from libgallium.
	EGLVendorDir  = "/usr/share/glvnd/egl_vendor.d"
	DRIDir        = "/usr/lib/x86_64-linux-gnu/dri"
	GBMBackendDir = "/usr/lib/x86_64-linux-gnu/gbm"
)

// The host's own layout at run time: the data partition's mount point and
// the guests' directories on it (disks, variable stores, TPM state), and
// their sockets under /run.
const (
	DataDir    = "/data"
	VMStateDir = DataDir + "/vms"
	VMRunDir   = "/run/vms"
)

// GuestMAC is a guest's NIC address: QEMU's 52:54:00 prefix and three
// bytes from its name, so it is stable across restarts and rebuilds.
func GuestMAC(name string) string {
	var h uint32 = 2166136261
	for i := 0; i < len(name); i++ {
		h ^= uint32(name[i])
		h *= 16777619
	}
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", byte(h>>16), byte(h>>8), byte(h))
}

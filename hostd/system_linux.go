package hostd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"time"

	"golang.org/x/sys/unix"

	"github.com/thinhost/thinhost/hostd/vm"
	"github.com/thinhost/thinhost/images/layout"
)

// SystemDir is where the read-only system image is mounted.
const SystemDir = layout.SystemDir

// The system image's programs run through its own dynamic loader with its
// own libraries: the initramfs's /lib holds kernel modules, not a libc.
// The directories of its libraries' absolute RUNPATHs (swtpm, Samba,
// PulseAudio for QEMU's SDL interface) are on the path too: the loader
// would look for them outside /system.
const (
	systemLoader  = SystemDir + "/lib64/ld-linux-x86-64.so.2"
	systemLibPath = SystemDir + "/lib/x86_64-linux-gnu:" + SystemDir + "/usr/lib/x86_64-linux-gnu:" +
		SystemDir + "/usr/lib/x86_64-linux-gnu/swtpm:" + SystemDir + "/usr/lib/x86_64-linux-gnu/samba:" +
		SystemDir + "/usr/lib/x86_64-linux-gnu/pulseaudio"
)

// mountSystem mounts the system image of slot (squashfs), the one the
// boot loader booted, read-only on SystemDir.
func mountSystem(ctx context.Context, log *slog.Logger, slot string) error {
	part, _, err := findPartition(ctx, layout.SystemName(slot), 10*time.Second)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(SystemDir, 0o755); err != nil {
		return err
	}
	dev := "/dev/" + part
	if err := unix.Mount(dev, SystemDir, "squashfs", unix.MS_RDONLY|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("mount the system image %s on %s: %w (is squashfs among the kernel's modules?)", dev, SystemDir, err)
	}
	log.Info("system image mounted", "slot", slot, "device", dev, "dir", SystemDir)
	return nil
}

// systemProgram is how a supervised service runs program from the system
// image: the loader's path and its arguments.
func systemProgram(program string, args ...string) (string, []string) {
	return systemLoader, append([]string{"--library-path", systemLibPath, SystemDir + program}, args...)
}

// systemEnv is the environment of the system image's programs: glibc's
// character-set modules and QEMU's modules where the image keeps them.
func systemEnv() []string {
	return append(os.Environ(), "MKE2FS_CONFIG="+SystemDir+"/etc/mke2fs.conf",
		"GCONV_PATH="+SystemDir+"/usr/lib/x86_64-linux-gnu/gconv",
		"QEMU_MODULE_DIR="+SystemDir+vm.QEMUModuleDir,
		// display = "sdl" draws on the panel through KMS, without X: SDL
		// loads EGL (glvnd), which loads Mesa, from the system image.
		"SDL_VIDEODRIVER=kmsdrm",
		// SDL's default renderer is desktop OpenGL, which needs a libGL the
		// image does not carry: SDL creates it anyway, with no functions
		// behind it, and the panel stays black. GLES 2 is in every Mesa
		// driver the image ships.
		"SDL_RENDER_DRIVER=opengles2",
		// Where Mesa has no driver for the GPU it renders with llvmpipe,
		// whose 256-bit (AVX) code crashed under QEMU's TCG (the emulated
		// laptop); 128-bit vectors are plenty for one textured quad a frame.
		"LP_NATIVE_VECTOR_WIDTH=128",
		"__EGL_VENDOR_LIBRARY_DIRS="+SystemDir+vm.EGLVendorDir,
		"LIBGL_DRIVERS_PATH="+SystemDir+vm.DRIDir,
		"GBM_DRIVERS_PATH="+SystemDir+vm.DRIDir,
		"GBM_BACKENDS_PATH="+SystemDir+vm.GBMBackendDir,
		// alsa-lib's configuration, which defines the devices QEMU's
		// ALSA backend opens (plughw) and amixer reads, and its use-case
		// configurations (a compiled-in path otherwise).
		"ALSA_CONFIG_DIR="+SystemDir+layout.ALSAConfigDir,
		"ALSA_CONFIG_UCM2="+SystemDir+layout.ALSAUCMDir)
}

// systemCommand runs program (an absolute path inside the system image,
// such as "/sbin/mke2fs") from the mounted system image.
func systemCommand(ctx context.Context, program string, args ...string) *exec.Cmd {
	path, argv := systemProgram(program, args...)
	cmd := exec.CommandContext(ctx, path, argv...)
	cmd.Env = systemEnv()
	return cmd
}

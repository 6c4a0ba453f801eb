// Package sysimage runs the programs of the mounted system image (Samba,
// swtpm, QEMU, mke2fs, cryptsetup, ...) from the booted host: through the
// image's own dynamic loader and libraries, with the environment they
// need to find their modules and data there.
package sysimage

import (
	"context"
	"os"
	"os/exec"

	"github.com/thinhost/thinhost/images/layout"
)

// Dir is where the read-only system image is mounted.
const Dir = layout.SystemDir

// The system image's programs run through its own dynamic loader with its
// own libraries: the initramfs's /lib holds kernel modules, not a libc.
// The directories of its libraries' absolute RUNPATHs (swtpm, Samba,
// PulseAudio for QEMU's SDL interface) are on the path too: the loader
// would look for them outside /system.
const (
	Loader  = Dir + "/lib64/ld-linux-x86-64.so.2"
	LibPath = Dir + "/lib/x86_64-linux-gnu:" + Dir + "/usr/lib/x86_64-linux-gnu:" +
		Dir + "/usr/lib/x86_64-linux-gnu/swtpm:" + Dir + "/usr/lib/x86_64-linux-gnu/samba:" +
		Dir + "/usr/lib/x86_64-linux-gnu/pulseaudio"
)

// Program is how a supervised service runs program from the system
// image: the loader's path and its arguments.
func Program(program string, args ...string) (string, []string) {
	return Loader, append([]string{"--library-path", LibPath, Dir + program}, args...)
}

// Env is the environment of the system image's programs: glibc's
// character-set modules and QEMU's modules where the image keeps them.
func Env() []string {
	return append(os.Environ(), "MKE2FS_CONFIG="+Dir+"/etc/mke2fs.conf",
		"GCONV_PATH="+Dir+"/usr/lib/x86_64-linux-gnu/gconv",
		"QEMU_MODULE_DIR="+Dir+layout.QEMUModuleDir,
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
		"__EGL_VENDOR_LIBRARY_DIRS="+Dir+layout.EGLVendorDir,
		"LIBGL_DRIVERS_PATH="+Dir+layout.DRIDir,
		"GBM_DRIVERS_PATH="+Dir+layout.DRIDir,
		"GBM_BACKENDS_PATH="+Dir+layout.GBMBackendDir,
		// alsa-lib's configuration, which defines the devices QEMU's
		// ALSA backend opens (plughw) and amixer reads, and its use-case
		// configurations (a compiled-in path otherwise).
		"ALSA_CONFIG_DIR="+Dir+layout.ALSAConfigDir,
		"ALSA_CONFIG_UCM2="+Dir+layout.ALSAUCMDir)
}

// Command runs program (an absolute path inside the system image,
// such as "/sbin/mke2fs") from the mounted system image.
func Command(ctx context.Context, program string, args ...string) *exec.Cmd {
	path, argv := Program(program, args...)
	cmd := exec.CommandContext(ctx, path, argv...)
	cmd.Env = Env()
	return cmd
}

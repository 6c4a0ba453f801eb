// Package initramfs builds the host's initramfs: u-root's init and a small
// set of core commands (enough to debug a host from its console), hostd as
// the uinit, the kernel modules the profile names with their dependency
// closure, and hostd's runtime configuration; compressed with zstd, which
// the kernel unpacks itself.
//
// The builder calls [Build]. The Go programs are compiled with mkuimage as a
// library, in busybox mode, from the thinhost module's source tree, so the
// build machine needs Go but no root, no mkfs and no cpio.
package initramfs

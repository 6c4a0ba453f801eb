// Package qemu boots a thinhost disk image in QEMU on the build machine, the
// way `thinhost run` and the boot tests do: UEFI firmware (OVMF, found on
// the Debian, Fedora and Arch paths), the image as a virtio disk, user
// networking with TCP port forwards on 127.0.0.1, the serial console on a
// writer, and a QMP socket to press the ACPI power button.
//
// KVM is used when it really works (a probe starts a paused VM), else TCG.
// [Args] is a pure function of its inputs and is golden-tested; [Start]
// runs it.
package qemu

// Package images writes thinhost's bootable disk image: a sparse raw disk
// with a GPT, an EFI system partition (FAT32) holding systemd-boot, a loader
// entry, the kernel and the initramfs, two system slots and a data
// partition — in pure Go (go-diskfs), without mtools, mkfs, loop devices or
// root.
//
// The builder calls [Write] with an open file; the partition names and
// types come from images/layout, which hostd shares.
package images

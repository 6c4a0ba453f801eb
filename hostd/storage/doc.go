// Package storage is the booted host's disks: finding the boot disk (the
// loader's EFI variables, USB boot) and its partitions, mounting the
// system image, and the data partition's whole life (made on first boot
// in space hostd itself left empty, grown, checked, encrypted with LUKS
// and unlocked by the TPM or a passphrase, or on an internal disk), with
// the probes that tell what a partition holds before anything writes.
package storage

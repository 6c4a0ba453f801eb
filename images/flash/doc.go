// Package flash writes a thinhost image to a whole disk — a USB stick for
// real hardware — safely, fast and verified:
//
//   - [Inspect] describes a target and [Check] refuses the wrong one: a
//     device with anything mounted (or used as swap, or held by
//     device-mapper or RAID), the disk of the running system's root or of
//     the image itself, a device smaller than the image, a partition or a
//     regular file unless asked for, a non-removable disk unless asked for;
//   - [Write] writes only the image's allocated extents (SEEK_DATA and
//     SEEK_HOLE), zeroes the holes where stale bytes could be misread (the
//     partition table area and each partition's metadata), moves the backup
//     GPT to the end of a larger device, syncs as it goes so its progress
//     is true, and has the kernel re-read the partition table;
//   - [Verify] reads everything written back, bypassing the page cache,
//     and reports the first mismatch by offset.
//
// The CLI's `thinhost flash` drives it; [List] feeds `thinhost flash --list`.
package flash

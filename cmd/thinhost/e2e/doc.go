// Package e2e is thinhost's end-to-end suite: real builds of the example
// profiles, booted under QEMU (TCG) with real OVMF, flashed to loop
// devices, their shares held to smbtorture and Windows' client behaviour,
// their guests started, snapshotted and reset. It runs only with
// THINHOST_E2E=1 (the README's test command sets it); everything else in
// the module tests without it, in seconds.
package e2e

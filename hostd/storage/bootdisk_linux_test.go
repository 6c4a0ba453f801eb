package storage

import (
	"os"
	"path/filepath"
	"testing"
	"unicode/utf16"
)

// efivar is an efivarfs file: attributes, then NUL-terminated UTF-16LE.
func efivar(s string) []byte {
	b := []byte{7, 0, 0, 0}
	for _, c := range utf16.Encode([]rune(s + "\x00")) {
		b = append(b, byte(c), byte(c>>8))
	}
	return b
}

func TestParseLoaderPartUUID(t *testing.T) {
	// systemd-boot writes lower case; GPT GUIDs compare upper case.
	got, err := ParseLoaderPartUUID(efivar("8e3b2c2a-51a0-4b1d-9f4e-0c1d2e3f4a5b"))
	if err != nil || got != "8E3B2C2A-51A0-4B1D-9F4E-0C1D2E3F4A5B" {
		t.Errorf("ParseLoaderPartUUID = %q, %v", got, err)
	}
	for _, bad := range [][]byte{nil, {7, 0, 0}, efivar(""), efivar("not-a-guid"), efivar("8e3b2c2a-51a0-4b1d-9f4e-0c1d2e3f4a5bX"), efivar("8e3b2c2a_51a0-4b1d-9f4e-0c1d2e3f4a5b"), efivar("ÿe3b2c2a-51a0-4b1d-9f4e-0c1d2e3f4a5b")} {
		if g, err := ParseLoaderPartUUID(bad); err == nil {
			t.Errorf("ParseLoaderPartUUID(%q) = %q, want an error", bad, g)
		}
	}
}

func FuzzParseLoaderPartUUID(f *testing.F) {
	f.Add(efivar("8e3b2c2a-51a0-4b1d-9f4e-0c1d2e3f4a5b"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if g, err := ParseLoaderPartUUID(b); err == nil && !isGUID(g) {
			t.Fatalf("accepted %q", g)
		}
	})
}

func TestESPFromCmdline(t *testing.T) {
	for cmdline, want := range map[string]string{
		"console=ttyS0 thinhost.esp=8e3b2c2a-51a0-4b1d-9f4e-0c1d2e3f4a5b quiet": "8E3B2C2A-51A0-4B1D-9F4E-0C1D2E3F4A5B",
		"console=ttyS0 quiet": "",
		"thinhost.espx=1":     "",
	} {
		if got, err := ESPFromCmdline(cmdline); err != nil || got != want {
			t.Errorf("ESPFromCmdline(%q) = %q, %v; want %q", cmdline, got, err, want)
		}
	}
	// GRUB's probe printed nothing (an older GRUB): an error, not a guess.
	if _, err := ESPFromCmdline("thinhost.esp= quiet"); err == nil {
		t.Error("an empty thinhost.esp was accepted")
	}
}

// TestUSBIDOf walks a sysfs tree shaped like a USB stick's: the disk
// under its SCSI host under the USB interface under the USB device.
func TestUSBIDOf(t *testing.T) {
	root := t.TempDir()
	usb := filepath.Join(root, "devices/pci0000:00/0000:00:14.0/usb2/2-1")
	disk := filepath.Join(usb, "2-1:1.0/host0/target0:0:0/0:0:0:0/block/sda")
	if err := os.MkdirAll(disk, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(usb, "idVendor"), []byte("0781\n"), 0o644)
	os.WriteFile(filepath.Join(usb, "idProduct"), []byte("5581\n"), 0o644)
	if id, ok := USBIDOf(disk); !ok || id != "0781:5581" {
		t.Errorf("USBIDOf(stick) = %q, %v", id, ok)
	}
	nvme := filepath.Join(root, "devices/pci0000:00/0000:00:1d.0/nvme/nvme0/nvme0n1")
	os.MkdirAll(nvme, 0o755)
	if id, ok := USBIDOf(nvme); ok {
		t.Errorf("USBIDOf(nvme) = %q, want not USB", id)
	}
}

// TestBootedSlot: the command line's thinhost.slot= names the slot; a
// unified kernel image's names none, and the entry systemd-boot started
// (LoaderEntrySelected, with or without a boot counter) does.
func TestBootedSlot(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "efivars")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, loaderEntryVar), efivar("thinhost-b+2-1.conf"), 0o644)
	for cmdline, want := range map[string]string{
		"console=ttyS0 thinhost.slot=a": "a",
		"console=ttyS0":                 "b",
	} {
		if got := BootedSlot(cmdline, dir); got != want {
			t.Errorf("BootedSlot(%q) = %s, want %s", cmdline, got, want)
		}
	}
	os.WriteFile(filepath.Join(dir, loaderEntryVar), efivar("windows.conf"), 0o644)
	if got := BootedSlot("quiet", dir); got != "a" {
		t.Errorf("another entry: slot %s, want a", got)
	}
}

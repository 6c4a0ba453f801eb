package hostd

import (
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

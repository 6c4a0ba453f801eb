package modules

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/thinhost/thinhost/initramfs"
)

// TestUnpackModule: what the builder packs, hostd unpacks byte for byte;
// a damaged file is an error, not a module.
func TestUnpackModule(t *testing.T) {
	ko := append([]byte("\x7fELF"), bytes.Repeat([]byte("module code "), 10000)...)
	packed, err := initramfs.Pack(ko)
	if err != nil {
		t.Fatal(err)
	}
	if len(packed) >= len(ko)/4 {
		t.Errorf("packed %d bytes into %d", len(ko), len(packed))
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "x.ko.zst")
	os.WriteFile(p, packed, 0o644)
	got, err := unpackModule(p)
	if err != nil || !bytes.Equal(got, ko) {
		t.Fatalf("unpackModule: %d bytes, %v", len(got), err)
	}
	os.WriteFile(p, packed[:len(packed)/2], 0o644)
	if _, err := unpackModule(p); err == nil {
		t.Error("a truncated module unpacked")
	}
}

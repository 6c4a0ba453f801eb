package hostd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSysModaliases: every device's modalias under a sysfs-like tree,
// each once, sorted; links are not followed (sysfs is full of them).
func TestSysModaliases(t *testing.T) {
	root := t.TempDir()
	for p, v := range map[string]string{
		"pci0000:00/0000:00:04.0/modalias":                  "pci:v00001B36d0000000Dsv00001AF4sd00001100bc0Csc03i30\n",
		"pci0000:00/0000:00:04.0/usb2/2-1/2-1:1.0/modalias": "usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00\n",
		"pci0000:00/0000:00:05.0/modalias":                  "pci:v00001B36d0000000Dsv00001AF4sd00001100bc0Csc03i30\n",
		"platform/empty/modalias":                           "\n",
		"platform/x/uevent":                                 "MODALIAS=not-read-here\n",
	} {
		f := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(f), 0o755)
		os.WriteFile(f, []byte(v), 0o444)
	}
	os.Symlink(filepath.Join(root, "pci0000:00"), filepath.Join(root, "platform", "loop"))
	got := strings.Join(sysModaliases(root), "\n")
	want := "pci:v00001B36d0000000Dsv00001AF4sd00001100bc0Csc03i30\nusb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00"
	if got != want {
		t.Errorf("modaliases:\n%s\nwant\n%s", got, want)
	}
}

package imagetest

import (
	"os"
	"testing"

	diskfs "github.com/diskfs/go-diskfs"
)

// WriteESPFile replaces the file name on the ESP of image with data, as
// someone with the stick in hand could.
func WriteESPFile(t testing.TB, image, name string, data []byte) {
	t.Helper()
	d, err := diskfs.Open(image)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	fs, err := d.GetFilesystem(1)
	if err != nil {
		t.Fatalf("read the ESP of %s: %v", image, err)
	}
	f, err := fs.OpenFile("/"+name, os.O_RDWR|os.O_TRUNC)
	if err != nil {
		t.Fatalf("open %s on the ESP of %s: %v", name, image, err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatalf("write %s on the ESP of %s: %v", name, image, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

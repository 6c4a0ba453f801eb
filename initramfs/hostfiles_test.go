package initramfs

import (
	"strings"
	"testing"
)

// TestHostFileList ships a dynamically linked program of the build machine
// and expects its loader and libc, as plain files at the paths the loader
// looks for them.
func TestHostFileList(t *testing.T) {
	got, err := hostFileList([]HostFile{{Src: "/usr/bin/ls", Dst: "/sbin/ls"}})
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(got, "\n")
	for _, want := range []string{":sbin/ls", ":lib64/ld-linux-x86-64.so.2", "libc.so.6"} {
		if !strings.Contains(joined, want) {
			t.Errorf("host files lack %q:\n%s", want, joined)
		}
	}
	if _, err := hostFileList([]HostFile{{Src: "/no/such/program"}}); err == nil {
		t.Error("a missing host program was accepted")
	}
}

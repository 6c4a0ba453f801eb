package builder

import (
	"strings"
	"testing"
)

// TestResolveHostFiles ships a dynamically linked program of the build machine
// and expects its loader and libc, as plain files at the paths the loader
// looks for them.
func TestResolveHostFiles(t *testing.T) {
	got, err := ResolveHostFiles([]HostFile{{Src: "/usr/bin/ls", Dst: "/sbin/ls"}})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, f := range got {
		lines = append(lines, f.Src+":"+strings.TrimPrefix(f.Dst, "/"))
	}
	joined := strings.Join(lines, "\n")
	for _, want := range []string{":sbin/ls", ":lib64/ld-linux-x86-64.so.2", "libc.so.6"} {
		if !strings.Contains(joined, want) {
			t.Errorf("host files lack %q:\n%s", want, joined)
		}
	}
	if _, err := ResolveHostFiles([]HostFile{{Src: "/no/such/program"}}); err == nil {
		t.Error("a missing host program was accepted")
	}
}

package smb

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thinhost/thinhost/images/layout/config"
	"github.com/thinhost/thinhost/internal/testenv"
)

func TestRenderSMBConfGolden(t *testing.T) {
	fs := &config.FileServer{User: "thin", Shares: []config.Share{
		{Name: "files", Path: "files", Drive: "Z"},
		{Name: "media", Path: "media/library", ReadOnly: true},
	}}
	_, link, _ := net.ParseCIDR("10.0.3.0/24")
	link.IP = net.IPv4(10, 0, 3, 1).To4()
	for name, c := range map[string]struct {
		hostNet bool
		link    *net.IPNet
	}{"smb-guest-only": {false, nil}, "smb-host-network": {true, link}, "smb-guest-link": {false, link}} {
		fs.HostNetwork = c.hostNet
		got, err := RenderSMBConf(fs, "/data/shares", HostDirs, c.link)
		if err != nil {
			t.Fatal(err)
		}
		testenv.Golden(t, "testdata/"+name+".conf", got)
	}
}

// TestSMBConfTestparm: Samba's own checker accepts every parameter.
func TestSMBConfTestparm(t *testing.T) {
	testparm := testenv.NeedTool(t, "testparm")
	dir := t.TempDir()
	fs := &config.FileServer{User: "thin", Shares: []config.Share{{Name: "files", Path: "files"}, {Name: "ro", Path: "ro", ReadOnly: true}}}
	for _, d := range append(SambaRunDirs, "files", "ro", "private") {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(dir, "smb.conf")
	rendered, err := RenderSMBConf(fs, dir, Dirs{Run: dir, Private: filepath.Join(dir, "private")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte(rendered), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(testparm, "-s", "--suppress-prompt", conf).CombinedOutput()
	if err != nil {
		t.Fatalf("testparm: %v\n%s", err, out)
	}
	for _, bad := range []string{"Unknown parameter", "Ignoring unknown", "WARNING", "ERROR"} {
		if strings.Contains(string(out), bad) {
			t.Errorf("testparm says %q:\n%s", bad, out)
		}
	}
}

// FuzzRenderSMBConf: whatever names and paths hostd.json holds, smb.conf
// is refused or has exactly the sections and keys hostd writes: no value
// starts a line, a section or a parameter of its own.
func FuzzRenderSMBConf(f *testing.F) {
	f.Add("thin", "files", "files", "media", "media/library")
	f.Add("thin", "x", "x\n  root preexec = id\n[IPC$]\n  path = /data/state", "y", "%U")
	f.Add("thin", "a", "Fotos/\u00dcbersicht 2024", "b", "a b")
	want := func(fs *config.FileServer) []string {
		conf, err := RenderSMBConf(&config.FileServer{User: "u", Shares: fs.Shares[:0]}, "/data/shares", HostDirs, nil)
		if err != nil {
			f.Fatal(err)
		}
		return strings.Split(conf, "\n")
	}
	base := len(want(&config.FileServer{}))
	f.Fuzz(func(t *testing.T, user, name1, path1, name2, path2 string) {
		fs := &config.FileServer{User: user, Shares: []config.Share{{Name: name1, Path: path1}, {Name: name2, Path: path2, ReadOnly: true}}}
		conf, err := RenderSMBConf(fs, "/data/shares", HostDirs, nil)
		if err != nil {
			return
		}
		lines := strings.Split(conf, "\n")
		// Each share adds a blank line, its header and 6 (read-write) or
		// 5 (read-only) parameters.
		if len(lines) != base+8+7 {
			t.Fatalf("%d lines for two shares (want %d):\n%s", len(lines), base+15, conf)
		}
		sections := 0
		for _, l := range lines {
			if strings.HasPrefix(l, "[") {
				sections++
			}
			if strings.ContainsAny(l, "\x00\r%") {
				t.Fatalf("line %q holds a NUL, CR or %%", l)
			}
		}
		if sections != 3 {
			t.Fatalf("%d sections for two shares:\n%s", sections, conf)
		}
	})
}

package console

import (
	"os"
	"path/filepath"
	"testing"
)

func TestPanelMode(t *testing.T) {
	root := t.TempDir()
	conn := func(name, status, modes string) {
		d := filepath.Join(root, "class/drm", name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		_ = os.WriteFile(filepath.Join(d, "status"), []byte(status+"\n"), 0o644)
		_ = os.WriteFile(filepath.Join(d, "modes"), []byte(modes), 0o644)
	}
	if got := PanelMode(root); got != "" {
		t.Errorf("no connectors: %q", got)
	}
	conn("card0-Virtual-1", "connected", "1280x800\n1024x768\n")
	if got := PanelMode(root); got != "1280x800" {
		t.Errorf("QEMU's display: %q", got)
	}
	conn("card1-DP-1", "connected", "3840x2160\n")
	conn("card1-eDP-1", "connected", "2880x1800\n1920x1200\n")
	conn("card1-HDMI-A-1", "disconnected", "")
	if got := PanelMode(root); got != "2880x1800" {
		t.Errorf("the built-in panel before an external screen: %q", got)
	}
	conn("card1-eDP-1", "connected", "1920x1080i\n")
	if got := PanelMode(root); got != "1280x800" {
		t.Errorf("an interlaced mode is not taken: %q", got)
	}
}

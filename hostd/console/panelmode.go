package console

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// PanelMode is the preferred mode ("1920x1200") of the laptop's screen,
// read from DRM's connectors in sysfs (root is "/sys"): a connected
// built-in panel (eDP, LVDS, DSI) first, else the first connected
// connector; "" when none is connected. A Windows guest's display starts
// at it.
func PanelMode(root string) string {
	conns, _ := filepath.Glob(filepath.Join(root, "class/drm/card*-*"))
	sort.Strings(conns)
	best, bestBuiltin := "", false
	for _, c := range conns {
		status, err := os.ReadFile(filepath.Join(c, "status"))
		if err != nil || strings.TrimSpace(string(status)) != "connected" {
			continue
		}
		modes, err := os.ReadFile(filepath.Join(c, "modes"))
		if err != nil {
			continue
		}
		mode, _, _ := strings.Cut(strings.TrimSpace(string(modes)), "\n")
		// Interlaced modes end in "i"; the mode must be WxH.
		w, h, ok := strings.Cut(mode, "x")
		if !ok || !digits(w) || !digits(h) {
			continue
		}
		name := filepath.Base(c)
		builtin := strings.Contains(name, "-eDP-") || strings.Contains(name, "-LVDS-") || strings.Contains(name, "-DSI-")
		if best == "" || builtin && !bestBuiltin {
			best, bestBuiltin = mode, builtin
		}
	}
	return best
}

func digits(s string) bool {
	return s != "" && len(s) <= 5 && strings.Trim(s, "0123456789") == ""
}

package hostd

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Keys that switch the radios: the airplane-mode key and the older
// Wi-Fi key (linux/input-event-codes.h).
const (
	keyWLAN   = 238
	keyRfkill = 247
)

// Radio is one of the kernel's radio switches (/sys/class/rfkill/rfkillN):
// a Wi-Fi card's own, or a laptop's platform switch for it.
type Radio struct {
	Dir  string
	Name string // "phy0", "tpacpi_wlan_sw", "ideapad_wlan"
	Type string // "wlan", "bluetooth", ...
	// Soft is switched off by software (the airplane key, rfkill);
	// Hard by a switch or the firmware, which no software changes.
	Soft, Hard bool
}

// ReadRadios reads the radio switches under root (/sys/class/rfkill) of
// type typ ("" for all), in name order.
func ReadRadios(root, typ string) ([]Radio, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("read radio switches: %w", err)
	}
	var out []Radio
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		read := func(name string) string {
			b, _ := os.ReadFile(filepath.Join(dir, name))
			return strings.TrimSpace(string(b))
		}
		r := Radio{Dir: dir, Name: read("name"), Type: read("type"), Soft: read("soft") == "1", Hard: read("hard") == "1"}
		if typ == "" || r.Type == typ {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// SetSoft switches radios on (block false) or off by software; it returns
// the names it changed.
func SetSoft(radios []Radio, block bool) ([]string, error) {
	want, v := false, "0"
	if block {
		want, v = true, "1"
	}
	var changed []string
	for _, r := range radios {
		if r.Soft == want {
			continue
		}
		if err := os.WriteFile(filepath.Join(r.Dir, "soft"), []byte(v), 0); err != nil {
			return changed, fmt.Errorf("switch radio %s: %w", r.Name, err)
		}
		changed = append(changed, r.Name)
	}
	return changed, nil
}

// AnySoft reports whether any of radios is switched off by software.
func AnySoft(radios []Radio) bool {
	for _, r := range radios {
		if r.Soft {
			return true
		}
	}
	return false
}

// RadioProblem says why Wi-Fi cannot send, from its radio switches: off
// by a switch (hard), or by software (the airplane key); "" when it can.
func RadioProblem(radios []Radio) string {
	var hard, soft []string
	for _, r := range radios {
		if r.Hard {
			hard = append(hard, r.Name)
		}
		if r.Soft {
			soft = append(soft, r.Name)
		}
	}
	switch {
	case len(hard) > 0:
		return fmt.Sprintf("the Wi-Fi radio is switched off by the laptop's switch or its firmware (%s): switch it on", strings.Join(hard, ", "))
	case len(soft) > 0:
		return fmt.Sprintf("the Wi-Fi radio is switched off (airplane mode, %s): the airplane key or `thinhost ctl wifi connect NAME` switches it on", strings.Join(soft, ", "))
	}
	return ""
}

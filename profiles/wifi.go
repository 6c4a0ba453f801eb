package profiles

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/dynblock"

	"github.com/thinhost/thinhost/images/layout/config"
)

// Wifi is the profile's wifi block: the wireless networks the host joins.
type Wifi struct {
	// Interface is the wireless interface ("": the first one).
	Interface string
	// Country is the regulatory domain, ISO 3166 ("DE").
	Country   string
	Networks  []*WifiNetwork
	DeclRange hcl.Range
}

// WifiNetwork is a network block inside wifi.
type WifiNetwork struct {
	Name, SSID string
	// PSK is the passphrase, from a sensitive variable. It never enters
	// the boot files: the builder leaves it on the empty data partition,
	// where hostd takes it at the first boot (layout.Seed).
	PSK       string
	Security  string
	Priority  int
	Hidden    bool
	DeclRange hcl.Range
}

var (
	wifiSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "interface"}, {Name: "country"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "network", LabelNames: []string{"name"}}},
	}
	wifiNetworkSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "ssid", Required: true}, {Name: "psk"}, {Name: "security"},
			{Name: "priority"}, {Name: "hidden"}},
	}
)

// Config is the wifi block as hostd reads it: without the passphrases.
func (w *Wifi) Config() *config.Wifi {
	c := &config.Wifi{Interface: w.Interface, Country: w.Country}
	for _, n := range w.Networks {
		c.Networks = append(c.Networks, config.WifiNetwork{Name: n.Name, SSID: n.SSID, Security: n.Security, Priority: n.Priority, Hidden: n.Hidden})
	}
	return c
}

// Passphrases are the networks' passphrases by name.
func (w *Wifi) Passphrases() map[string]string {
	out := map[string]string{}
	for _, n := range w.Networks {
		if n.PSK != "" {
			out[n.Name] = n.PSK
		}
	}
	return out
}

func decodeWifi(b *hcl.Block, ctx *hcl.EvalContext, prof *Profile) hcl.Diagnostics {
	w := &Wifi{DeclRange: b.DefRange}
	content, diags := dynblock.Expand(b.Body, ctx).Content(wifiSchema)
	attrs := content.Attributes
	if v, attr, d := evalString(attrs, "interface", ctx); attr != nil && !d.HasErrors() {
		w.Interface = v
		if err := (&config.Wifi{Interface: v}).Check(); err != nil {
			diags = append(diags, attrDiag(attr, "Invalid interface", err.Error()+": name it as `ip link` shows it, such as wlan0 or wlp2s0, or leave it out for the first wireless interface."))
		}
	} else {
		diags = append(diags, d...)
	}
	if v, attr, d := evalString(attrs, "country", ctx); attr != nil && !d.HasErrors() {
		w.Country = v
		if err := (&config.Wifi{Country: v}).Check(); err != nil {
			diags = append(diags, attrDiag(attr, "Invalid country", err.Error()+"; it sets the channels and power the radio may use."))
		}
	} else {
		diags = append(diags, d...)
	}
	byName := map[string]*WifiNetwork{}
	for _, nb := range content.Blocks {
		n := &WifiNetwork{Name: nb.Labels[0], Security: config.WifiWPA2WPA3, DeclRange: nb.DefRange}
		nameRng := nb.LabelRanges[0]
		if err := config.CheckWifiName(n.Name); err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid network name", Detail: err.Error() + ".", Subject: &nameRng})
			continue
		}
		if prev := byName[n.Name]; prev != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate network",
				Detail: fmt.Sprintf("Network %q is already declared at %s.", n.Name, prev.DeclRange), Subject: &nameRng})
			continue
		}
		byName[n.Name] = n
		nc, d := nb.Body.Content(wifiNetworkSchema)
		diags = append(diags, d...)
		na := nc.Attributes
		if v, attr, d := evalString(na, "ssid", ctx); attr != nil && !d.HasErrors() {
			n.SSID = v
			if err := config.CheckSSID(v); err != nil {
				diags = append(diags, attrDiag(attr, "Invalid SSID", err.Error()+"."))
			}
		} else {
			diags = append(diags, d...)
		}
		if v, attr, d := evalString(na, "psk", ctx); attr != nil && !d.HasErrors() {
			n.PSK = v
			// Never the value in the message: it is a secret.
			if err := config.CheckPassphrase(v); err != nil {
				diags = append(diags, attrDiag(attr, "Invalid passphrase", err.Error()+" (WPA2/WPA3-personal). Give it in a sensitive variable: -var or a var file."))
			}
		} else {
			diags = append(diags, d...)
		}
		if v, attr, d := evalString(na, "security", ctx); attr != nil && !d.HasErrors() {
			n.Security = v
			if err := config.CheckWifiSecurity(v); err != nil {
				diags = append(diags, attrDiag(attr, "Invalid security", err.Error()+"; wpa2-wpa3 (the default) joins either; open needs no passphrase."+didYouMean(v, config.WifiSecurities)))
			}
		} else {
			diags = append(diags, d...)
		}
		if n.Security == config.WifiOpen && n.PSK != "" {
			rng := na["psk"].Expr.Range()
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Passphrase for an open network",
				Detail: "security = \"open\" joins a network without a passphrase: leave psk out, or name the network's security (wpa2-wpa3, wpa2, wpa3).", Subject: &rng})
		}
		p, d := evalIntIn(na, "priority", 0, 0, 1000, ctx, "Invalid priority", "priority is a whole number from 0 to 1000; where several networks are in range, the highest is joined.")
		n.Priority = p
		diags = append(diags, d...)
		if v, attr, d := evalBool(na, "hidden", ctx); attr != nil && !d.HasErrors() {
			n.Hidden = v
		} else {
			diags = append(diags, d...)
		}
		w.Networks = append(w.Networks, n)
	}
	prof.Wifi = w
	return diags
}

package profiles

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/thinhost/thinhost/images/layout/config"
)

// WindowsSetup is a vm's `windows` block: what Windows setup is told
// instead of asking, which makes the install unattended.
type WindowsSetup struct {
	// Language is setup's and Windows' display language (the ISO's);
	// Locale the formats; Keyboard the layouts, ";"-separated.
	Language, Locale, Keyboard string
	// TimeZone is a Windows time zone id ("W. Europe Standard Time").
	TimeZone string
	// Account is the local administrator account setup creates.
	Account string
	// ComputerName is Windows' network name.
	ComputerName string
	// Edition is a key of WindowsEditions; ProductKey the profile's own
	// key ("" installs with the edition's generic key).
	Edition    string
	ProductKey string
	DeclRange  hcl.Range
}

// WindowsEdition is an edition of Windows on Microsoft's ISOs: its name
// after "Windows 11 " in install.wim, and the generic key that installs
// it without activating it (Microsoft publishes these for deployment).
type WindowsEdition struct {
	Name, GenericKey string
}

// WindowsEditions are the editions a profile may name.
var WindowsEditions = map[string]WindowsEdition{
	"home":             {"Home", "YTMG3-N6DKC-DKB77-7M9GH-8HVX7"},
	"pro":              {"Pro", "VK7JG-NPHTM-C97JM-9MPGT-3V66T"},
	"pro-workstations": {"Pro for Workstations", "DXG7C-N36C4-C4HTG-X4T3X-2YV77"},
	"education":        {"Education", "YNMGQ-8RYV3-4PGQ3-C8XTP-7CFBY"},
	"enterprise":       {"Enterprise", "XGVPP-NMH47-7TTHJ-W3FW7-8HV2C"},
}

// Config is the setup as hostd reads it, for a guest running os.
func (w *WindowsSetup) Config(os string) *config.Windows {
	ed := WindowsEditions[w.Edition]
	key := w.ProductKey
	if key == "" {
		key = ed.GenericKey
	}
	version := "11"
	if os == "windows10" {
		version = "10"
	}
	return &config.Windows{Language: w.Language, Locale: w.Locale, Keyboard: w.Keyboard, TimeZone: w.TimeZone,
		Account: w.Account, ComputerName: w.ComputerName, Image: "Windows " + version + " " + ed.Name, ProductKey: key}
}

var windowsSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "language"}, {Name: "locale"}, {Name: "keyboard"}, {Name: "time_zone"},
		{Name: "account", Required: true}, {Name: "password"}, {Name: "computer_name"},
		{Name: "edition"}, {Name: "product_key"},
	},
}

func decodeWindows(b *hcl.Block, vmName string, ctx *hcl.EvalContext) (*WindowsSetup, hcl.Diagnostics) {
	content, diags := b.Body.Content(windowsSchema)
	attrs := content.Attributes
	w := &WindowsSetup{DeclRange: b.DefRange}
	str := func(name, def string, ok func(string) bool, detail string) string {
		v, attr, d := evalString(attrs, name, ctx)
		diags = append(diags, d...)
		switch {
		case attr == nil || d.HasErrors():
			return def
		case !ok(v):
			diags = append(diags, attrDiag(attr, "Invalid "+strings.ReplaceAll(name, "_", " "), fmt.Sprintf("%s %q: %s", name, v, detail)))
		}
		return v
	}
	w.Language = str("language", "en-US", config.ValidLanguage,
		"give a language tag such as \"en-US\" or \"de-DE\": the language of the Windows ISO (setup stops when they differ).")
	w.Locale = str("locale", w.Language, config.ValidLanguage,
		"give a locale tag such as \"en-GB\": the formats of dates, numbers and currency.")
	w.Keyboard = str("keyboard", w.Locale, config.ValidKeyboard,
		"give keyboard layouts as tags (\"de-DE\") or language:layout pairs (\"0407:00000407\"), several separated by ';'.")
	w.TimeZone = str("time_zone", "UTC", config.ValidTimeZone,
		"give a Windows time zone id as `tzutil /l` lists it, such as \"W. Europe Standard Time\" (not an IANA name like \"Europe/Berlin\").")
	w.Account = str("account", "", func(s string) bool { return config.ValidAccount(s) },
		accountDetail(attrs, ctx))
	def := strings.ToUpper(vmName)
	if len(def) > 15 {
		def = def[:15]
	}
	if def = strings.Trim(def, "-"); !config.ValidComputerName(def) {
		def = "WINDOWS"
	}
	w.ComputerName = str("computer_name", def, config.ValidComputerName,
		"a computer name is 1-15 letters, digits and '-', not all digits, not starting or ending with '-'.")
	editions := make([]string, 0, len(WindowsEditions))
	for e := range WindowsEditions {
		editions = append(editions, e)
	}
	sort.Strings(editions)
	var d hcl.Diagnostics
	w.Edition, _, d = oneOf(attrs, "edition", "pro", editions, ctx)
	diags = append(diags, d...)
	w.ProductKey = str("product_key", "", config.ValidProductKey,
		"a product key is five groups of five letters and digits, such as \"XXXXX-XXXXX-XXXXX-XXXXX-XXXXX\"; leave it out to install the edition with its generic key and activate later.")
	if a, ok := attrs["password"]; ok {
		// An answer file takes the password itself (or a reversible
		// base64 of it), and the image's boot files are readable by
		// whoever holds the stick.
		diags = append(diags, attrDiag(a, "password is not taken",
			"The image would carry it in clear: answer files hold no hashes. hostd makes a one-time password for setup and keeps it on the data partition (`thinhost ctl vm NAME setup-password` shows it); at the first desktop Windows asks you to choose your own. Remove password."))
	}
	return w, diags
}

func accountDetail(attrs hcl.Attributes, ctx *hcl.EvalContext) string {
	if v, _, d := evalString(attrs, "account", ctx); !d.HasErrors() && config.ReservedAccount(v) {
		return "Windows has that account already: name one of your own."
	}
	return "an account name is 1-20 letters, digits, '.', '_' and '-', starting with a letter."
}

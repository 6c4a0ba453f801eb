package config

import (
	"fmt"
	"regexp"
	"strings"
)

// What the values of a Windows block may hold. They are written into an
// XML answer file and into .cmd scripts that Windows runs as the
// administrator at its first logon, so each is refused unless it is plain
// text to both: no quotes, no '&', '|', '<', '>', '^', '%' or '!' that
// cmd.exe would read as syntax, no XML markup. The profile refuses
// anything else with its file and line; hostd checks again before it
// writes the drive, so a hand-edited configuration cannot inject either.
var (
	// A language or locale tag as Windows names them: "en-US",
	// "sr-Latn-RS", "zh-CN".
	langTagRE = regexp.MustCompile(`^[a-z]{2,3}(-[A-Z][a-z]{3})?-[A-Z]{2}$`)
	// A keyboard: a tag, or a language:layout pair such as
	// "0407:00000407".
	keyboardRE = regexp.MustCompile(`^([a-z]{2,3}(-[A-Z][a-z]{3})?-[A-Z]{2}|[0-9a-fA-F]{4}:[0-9a-fA-F]{8})$`)
	// A Windows time zone id as `tzutil /l` prints it: "W. Europe
	// Standard Time", "UTC", "UTC-02".
	timeZoneRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9 .+-]{0,62}[A-Za-z0-9]$|^UTC$`)
	// A local account: Windows allows more, but these characters are
	// plain in every script that names it.
	accountRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._-]{0,19}$`)
	// A NetBIOS computer name: letters, digits and '-', not all digits.
	computerRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,15}$`)
	// An image name of install.wim: "Windows 11 Pro".
	imageRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 .()-]{0,62}$`)
	// A product key: five groups of five.
	productKeyRE = regexp.MustCompile(`^[0-9A-Z]{5}(-[0-9A-Z]{5}){4}$`)
	// Accounts Windows has already or keeps for itself.
	reservedAccounts = map[string]bool{"administrator": true, "guest": true, "defaultaccount": true,
		"wdagutilityaccount": true, "system": true, "administrators": true, "users": true, "everyone": true}
)

// ValidLanguage says whether tag names a Windows language or locale.
func ValidLanguage(tag string) bool { return langTagRE.MatchString(tag) }

// ValidKeyboard says whether s is a ';'-separated list of keyboard
// layouts (tags or "0407:00000407").
func ValidKeyboard(s string) bool {
	if s == "" {
		return false
	}
	for _, k := range strings.Split(s, ";") {
		if !keyboardRE.MatchString(k) {
			return false
		}
	}
	return true
}

// ValidTimeZone says whether s reads as a Windows time zone id.
func ValidTimeZone(s string) bool { return timeZoneRE.MatchString(s) }

// ValidAccount says whether name may be the setup's local account.
func ValidAccount(name string) bool {
	return accountRE.MatchString(name) && !reservedAccounts[strings.ToLower(name)]
}

// ReservedAccount says whether name is one of Windows' own accounts.
func ReservedAccount(name string) bool { return reservedAccounts[strings.ToLower(name)] }

// ValidComputerName says whether name may be Windows' computer name.
func ValidComputerName(name string) bool {
	return computerRE.MatchString(name) && strings.Trim(name, "0123456789") != "" &&
		!strings.HasPrefix(name, "-") && !strings.HasSuffix(name, "-")
}

// ValidImage says whether name may name an image of install.wim.
func ValidImage(name string) bool { return imageRE.MatchString(name) }

// ValidProductKey says whether key is written as Windows product keys are.
func ValidProductKey(key string) bool { return productKeyRE.MatchString(key) }

// Check refuses a Windows block with a value that is not plain text to
// the answer file and the scripts (the Valid* functions).
func (w *Windows) Check() error {
	checks := []struct {
		what, v string
		ok      bool
	}{
		{"language", w.Language, ValidLanguage(w.Language)},
		{"locale", w.Locale, ValidLanguage(w.Locale)},
		{"keyboard", w.Keyboard, ValidKeyboard(w.Keyboard)},
		{"time_zone", w.TimeZone, ValidTimeZone(w.TimeZone)},
		{"account", w.Account, ValidAccount(w.Account)},
		{"computer_name", w.ComputerName, ValidComputerName(w.ComputerName)},
		{"image", w.Image, ValidImage(w.Image)},
		{"product_key", w.ProductKey, w.ProductKey == "" || ValidProductKey(w.ProductKey)},
	}
	for _, c := range checks {
		if !c.ok {
			return fmt.Errorf("windows %s %q is not a plain value for the answer file", c.what, c.v)
		}
	}
	return nil
}

package smb

import (
	"strings"
	"testing"
	"time"
)

// TestPassdbLine: smbpasswd's format, as `smbpasswd -a` writes it (the
// LAN Manager hash disabled), the hash upper-cased; a name or hash that
// would make a field or line of its own is refused.
func TestPassdbLine(t *testing.T) {
	at := time.Unix(0x6563F0A1, 0)
	got, err := PassdbLine("thin", 1000, "8846f7eaee8fb117ad06bdd830b7586c", at)
	want := "thin:1000:XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX:8846F7EAEE8FB117AD06BDD830B7586C:[UX         ]:LCT-6563F0A1:\n"
	if err != nil || got != want {
		t.Errorf("PassdbLine = %q, %v\nwant %q", got, err, want)
	}
	for _, c := range []struct{ user, hash string }{
		{"thin:0", "8846F7EAEE8FB117AD06BDD830B7586C"},
		{"thin\nroot", "8846F7EAEE8FB117AD06BDD830B7586C"},
		{"root", "8846F7EAEE8FB117AD06BDD830B7586C"},
		{"thin", "8846F7EAEE8FB117AD06BDD830B7586"},
		{"thin", "8846F7EAEE8FB117AD06BDD830B7586C:"},
		{"thin", "8846F7EAEE8FB117AD06BDD830B7586Z"},
		{"thin", ""},
	} {
		if line, err := PassdbLine(c.user, 1000, c.hash, at); err == nil {
			t.Errorf("PassdbLine(%q, %q) = %q, accepted", c.user, c.hash, line)
		}
	}
}

// FuzzPassdbLine: whatever the name and hash, an accepted line is one
// line of seven fields.
func FuzzPassdbLine(f *testing.F) {
	f.Add("thin", "8846F7EAEE8FB117AD06BDD830B7586C")
	f.Add("a:b", "00000000000000000000000000000000")
	f.Fuzz(func(t *testing.T, user, hash string) {
		line, err := PassdbLine(user, 1000, hash, time.Unix(1, 0))
		if err != nil {
			return
		}
		if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") || len(strings.Split(line, ":")) != 7 {
			t.Errorf("PassdbLine(%q, %q) = %q", user, hash, line)
		}
	})
}

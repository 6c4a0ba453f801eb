package modules

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// aliasFixture is a slice of a real modules.alias (Debian's 6.1 kernel):
// USB mass storage and UAS by interface class, SCSI disks by type, the
// xHCI controller by PCI class, virtio by device id, an Intel GPU by id.
const aliasFixture = `# Aliases extracted from modules themselves.
alias usb:v*p*d*dc*dsc*dp*ic08isc06ip50in* usb_storage
alias usb:v*p*d*dc*dsc*dp*ic08isc06ip62in* uas
alias usb:v*p*d*dc*dsc*dp*ic08isc06ip50in* uas
alias scsi:t-0x00* sd_mod
alias scsi:t-0x07* sd_mod
alias scsi:t-0x0e* sd_mod
alias pci:v*d*sv*sd*bc0Csc03i30* xhci_pci
alias virtio:d00000002v* virtio_blk
alias pci:v00008086d00009A49sv*sd*bc03sc*i* i915
alias acpi*:PNP0C0A:* battery
alias hid:b0018g*v*p* i2c_hid
`

func TestAliasMatch(t *testing.T) {
	table, err := ParseModulesAlias(strings.NewReader(aliasFixture))
	if err != nil {
		t.Fatal(err)
	}
	if table.Len() != 11 {
		t.Errorf("%d patterns, want 11", table.Len())
	}
	for modalias, want := range map[string]string{
		// A SanDisk stick's mass-storage interface (bulk-only).
		"usb:v0781p5581d0100dc00dsc00dp00ic08isc06ip50in00": "usb_storage uas",
		"usb:v174Cp55AAd0100dc00dsc00dp00ic08isc06ip62in01": "uas",
		"scsi:t-0x00": "sd_mod",
		"scsi:t-0x05": "",
		"pci:v00001B36d0000000Dsv00001AF4sd00001100bc0Csc03i30": "xhci_pci",
		"pci:v00008086d00009A49sv00001028sd00000A38bc03sc00i00": "i915",
		"pci:v00008086d00009A40sv00001028sd00000A38bc03sc00i00": "",
		"virtio:d00000002v00001AF4":                             "virtio_blk",
		"acpi:PNP0C0A:":                                         "battery",
		"hid:b0018g0001v000004F3p00002C82":                      "i2c_hid",
		"":                                                      "",
	} {
		if got := strings.Join(table.Match(modalias), " "); got != want {
			t.Errorf("Match(%q) = %q, want %q", modalias, got, want)
		}
	}
	withFS, _ := ParseModulesAlias(strings.NewReader(aliasFixture + "alias fs-ext4 ext4\nalias char-major-10-200 tun\nalias vfio_pci:v*d*sv*sd*bc*sc*i* vfio_pci\n"))
	for mod, want := range map[string]bool{"usb_storage": true, "sd_mod": true, "battery": true, "ext4": false, "tun": false, "vfio_pci": false, "unknown": false} {
		if got := withFS.DeviceDriven(mod); got != want {
			t.Errorf("DeviceDriven(%s) = %v, want %v", mod, got, want)
		}
	}
	if _, err := ParseModulesAlias(strings.NewReader("alias only-two\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("a malformed line: %v", err)
	}
}

// TestFnmatch: fnmatch(3)'s rules, checked beside path.Match where they
// agree ('*' there stops at '/', fnmatch's does not).
func TestFnmatch(t *testing.T) {
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"*", "a/b", true},
		{"a*c", "abbbc", true},
		{"a*c", "abbb", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"[abc]x", "bx", true},
		{"[a-c]x", "dx", false},
		{"[!a-c]x", "dx", true},
		{"[^a-c]x", "ax", false},
		{"[]]", "]", true},
		{"[a-]", "-", true},
		{"\\*", "*", true},
		{"\\*", "a", false},
		{"[abc", "[abc", true},
		{"*x*y*", "axbxcy", true},
		{"*x*y*", "axbxc", false},
	} {
		if got := fnmatch(c.pattern, c.s); got != c.want {
			t.Errorf("fnmatch(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
		if !strings.ContainsAny(c.pattern+c.s, "/\\[^!]") {
			if pm, err := filepath.Match(c.pattern, c.s); err == nil && pm != c.want {
				t.Errorf("path.Match(%q, %q) = %v disagrees", c.pattern, c.s, pm)
			}
		}
	}
}

func FuzzFnmatch(f *testing.F) {
	f.Add("usb:v*p*d*dc*dsc*dp*ic08isc06ip50in*", "usb:v0781p5581d0100dc00dsc00dp00ic08isc06ip50in00")
	f.Add("[!a-", "x")
	f.Add("\\", "\\")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		fnmatch(pattern, s) // must not panic or loop
		if !strings.ContainsAny(pattern, "*?[\\") && fnmatch(pattern, s) != (pattern == s) {
			t.Errorf("a pattern without metacharacters %q matched %q wrongly", pattern, s)
		}
	})
}

func TestParseUevent(t *testing.T) {
	msg := "add@/devices/pci0000:00/0000:00:04.0/usb2/2-1/2-1:1.0\x00ACTION=add\x00DEVPATH=/devices/pci0000:00/0000:00:04.0/usb2/2-1/2-1:1.0\x00SUBSYSTEM=usb\x00MODALIAS=usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00\x00SEQNUM=1234\x00"
	ev, ok := ParseUevent([]byte(msg))
	if !ok || ev.Action != "add" || ev.Env["SUBSYSTEM"] != "usb" || ev.Env["MODALIAS"] != "usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00" {
		t.Errorf("ParseUevent = %+v, %v", ev, ok)
	}
	for _, bad := range []string{"", "libudev\x00\xfe\xed", "add@/x\x00ACTION=remove\x00"} {
		if _, ok := ParseUevent([]byte(bad)); ok {
			t.Errorf("ParseUevent(%q) accepted", bad)
		}
	}
}

func FuzzParseUevent(f *testing.F) {
	f.Add([]byte("add@/devices/x\x00ACTION=add\x00MODALIAS=pci:v1\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseUevent(b)
	})
}

// linearMatch is Match without the index: every pattern, in table order.
func linearMatch(t *AliasTable, modalias string) []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range t.entries {
		if !seen[e.module] && fnmatch(e.pattern, modalias) {
			seen[e.module] = true
			out = append(out, e.module)
		}
	}
	return out
}

// indexFixture adds patterns whose bus is a pattern or missing, escapes
// and sets before the colon, and a catch-all, to aliasFixture.
const indexFixture = aliasFixture + `alias fs-ext4 ext4
alias * catchall
alias pci* pcistar
alias ?ci:v00008086* anyci
alias pc[i]:v*bc03* pcset
alias pci\:v00008086* escaped
alias usb:v0781p* sandisk
alias :v* emptybus
alias platform:i8042 i8042
alias dmi*:svnLENOVO:* thinkpad_acpi
`

// TestAliasMatchIndexed: the index finds what trying every pattern
// finds, in the same order.
func TestAliasMatchIndexed(t *testing.T) {
	table, err := ParseModulesAlias(strings.NewReader(indexFixture))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{
		"pci:v00008086d00009A49sv00001028sd00000A38bc03sc00i00", "pci:v00001B36d0000000Dsv00001AF4sd00001100bc0Csc03i30",
		"usb:v0781p5581d0100dc00dsc00dp00ic08isc06ip50in00", "acpi:PNP0C0A:", "platform:i8042", "platform:i8042x",
		"dmi:bvnLENOVO:svnLENOVO:pn20XW:", "fs-ext4", "pcix:v00008086", ":v1", "", ":", "pci", "pci:", "scsi:t-0x00",
	} {
		got, want := strings.Join(table.Match(m), " "), strings.Join(linearMatch(table, m), " ")
		if got != want {
			t.Errorf("Match(%q) = %q, trying every pattern %q", m, got, want)
		}
	}
}

// FuzzAliasMatch: for any pattern and modalias, the index agrees with
// trying every pattern.
func FuzzAliasMatch(f *testing.F) {
	f.Add("pci:v*d*sv*sd*bc0Csc03i30*", "pci:v00001B36d0000000Dsv00001AF4sd00001100bc0Csc03i30")
	f.Add("acpi*:PNP0C0A:*", "acpi:PNP0C0A:")
	f.Add("\\p:x", "p:x")
	f.Fuzz(func(t *testing.T, pattern, modalias string) {
		if strings.ContainsAny(pattern, " \t\n\r\v\f") || pattern == "" || strings.HasPrefix(pattern, "#") {
			return
		}
		table, err := ParseModulesAlias(strings.NewReader(indexFixture + "alias " + pattern + " fuzzed\n"))
		if err != nil {
			return
		}
		got, want := strings.Join(table.Match(modalias), " "), strings.Join(linearMatch(table, modalias), " ")
		if got != want {
			t.Errorf("pattern %q, Match(%q) = %q, trying every pattern %q", pattern, modalias, got, want)
		}
	})
}

// BenchmarkAliasMatch matches a laptop's devices against a table the size
// of Debian's 6.1 kernel's (26,000 patterns: 9,000 PCI, 8,500 USB).
func BenchmarkAliasMatch(b *testing.B) {
	var sb strings.Builder
	for i := 0; i < 9000; i++ {
		fmt.Fprintf(&sb, "alias pci:v%08Xd%08Xsv*sd*bc*sc*i* pci%d\n", 0x8086+i%40, i, i%700)
	}
	for i := 0; i < 8500; i++ {
		fmt.Fprintf(&sb, "alias usb:v%04Xp%04Xd*dc*dsc*dp*ic*isc*ip*in* usb%d\n", i%300, i, i%500)
	}
	for i := 0; i < 8700; i++ {
		fmt.Fprintf(&sb, "alias %s:dev%d* other%d\n", []string{"of", "i2c", "hid", "pcmcia", "spi", "hdaudio", "platform"}[i%7], i, i%900)
		if i%12 == 0 {
			fmt.Fprintf(&sb, "alias acpi*:ABCD%04X:* acpi%d\n", i, i)
		}
	}
	table, err := ParseModulesAlias(strings.NewReader(sb.String()))
	if err != nil {
		b.Fatal(err)
	}
	devices := []string{
		"pci:v00008086d00009A49sv00001028sd00000A38bc03sc00i00", "pci:v00008086d0000A0EFsv00001028sd00000A38bc04sc03i80",
		"pci:v00008086d0000A0E0sv00001028sd00000A38bc07sc80i00", "usb:v8087p0026d0002dcE0dsc01dp01icE0isc01ip01in00",
		"acpi:PNP0C0C:", "acpi:INT33D5:", "platform:i8042", "hid:b0018g0001v000004F3p00002C82", "cpu:type:x86,ven0000fam0006mod008C:feature:,0000",
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, d := range devices {
			table.Match(d)
		}
	}
}

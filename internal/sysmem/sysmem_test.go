package sysmem

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	m := Parse("MemTotal:       16318164 kB\nMemFree:         1000 kB\nMemAvailable:   12000000 kB\nBogus: x kB\nHuge: 99999999999999999999 kB\n")
	if m.Total != 16318164<<10 || m.Available != 12000000<<10 {
		t.Errorf("Parse = %+v", m)
	}
	if m := Parse("MemTotal: -5 kB\nMemAvailable: 9999999999999999 kB"); m.Total != 0 || m.Available != 0 {
		t.Errorf("nonsense figures taken: %+v", m)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("MemTotal: 1 kB\nMemAvailable: 2 kB\n")
	f.Fuzz(func(t *testing.T, s string) {
		if m := Parse(s); m.Total < 0 || m.Available < 0 {
			t.Fatalf("negative: %+v", m)
		}
	})
}

func TestParseStatus(t *testing.T) {
	name, anon, ok := ParseStatus("Name:\tsmbd\nUmask:\t0022\nVmRSS:\t  20000 kB\nRssAnon:\t    4096 kB\nRssFile:\t 15000 kB\n")
	if !ok || name != "smbd" || anon != 4096<<10 {
		t.Errorf("ParseStatus = %q %d %v", name, anon, ok)
	}
	if _, _, ok := ParseStatus("Name:\tkworker/0:1\nUmask:\t0000\n"); ok {
		t.Error("a kernel thread has memory of its own")
	}
	for _, bad := range []string{"Name:\tx\nRssAnon:\t-5 kB\n", "Name:\tx\nRssAnon:\t5 MB\n", "RssAnon:\t5 kB\n"} {
		if _, _, ok := ParseStatus(bad); ok {
			t.Errorf("ParseStatus(%q) took it", bad)
		}
	}
}

func TestPrograms(t *testing.T) {
	dir := t.TempDir()
	for pid, status := range map[string]string{
		"1": "Name:\thostd\nRssAnon:\t 30000 kB\n", "10": "Name:\tsmbd\nRssAnon:\t 5000 kB\n", "11": "Name:\tsmbd\nRssAnon:\t 3000 kB\n",
		"2": "Name:\tkthreadd\n", "self": "Name:\tx\nRssAnon:\t 1 kB\n",
	} {
		os.MkdirAll(filepath.Join(dir, pid), 0o755)
		os.WriteFile(filepath.Join(dir, pid, "status"), []byte(status), 0o644)
	}
	// smbd's forked helper shares most of its pages with smbd: its share
	// (Pss_Anon) counts, where the kernel gives it.
	os.WriteFile(filepath.Join(dir, "11", "smaps_rollup"), []byte("Rss: 4000 kB\nPss_Anon: 1000 kB\nAnonymous: 3000 kB\n"), 0o644)
	got := Programs(dir, nil)
	want := []Program{{"hostd", 1, 30000 << 10}, {"smbd", 2, 6000 << 10}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Programs = %+v, want %+v", got, want)
	}
}

// FuzzParseStatus: any status text gives a name and a sane figure or
// nothing, never a panic or a negative size.
func FuzzParseStatus(f *testing.F) {
	f.Add("Name:\tsmbd\nRssAnon:\t4096 kB\n")
	f.Add("Name:\t\nRssAnon:\t99999999999999999999 kB\n")
	f.Fuzz(func(t *testing.T, text string) {
		name, anon, ok := ParseStatus(text)
		if ok && (name == "" || anon < 0) {
			t.Fatalf("ParseStatus(%q) = %q, %d", text, name, anon)
		}
	})
}

func TestProgramName(t *testing.T) {
	for _, c := range []struct {
		name    string
		cmdline []string
		want    string
	}{
		{"smbd", []string{"smbd"}, "smbd"},
		{"ld-linux-x86-64", []string{"/system/lib64/ld-linux-x86-64.so.2", "--library-path", "/system/lib:/system/usr/lib", "/system/usr/sbin/smbd", "--foreground"}, "smbd"},
		{"ld-linux-x86-64", []string{"/lib64/ld-linux-x86-64.so.2"}, "ld-linux-x86-64"},
	} {
		if got := ProgramName(c.name, c.cmdline); got != c.want {
			t.Errorf("ProgramName(%q, %q) = %q, want %q", c.name, c.cmdline, got, c.want)
		}
	}
}

// zoneinfo is /proc/zoneinfo's shape, cut down: a booted 1 GiB host with
// transparent huge pages (its DMA zone protected against DMA32's
// allocations), and an empty zone.
const zoneinfo = `Node 0, zone      DMA
  per-node stats
      nr_inactive_anon 49096
  pages free     3565
        min      169
        low      211
        high     253
        spanned  4095
        present  3998
        managed  3598
        cma      0
        protection: (0, 892, 892, 892, 892)
      nr_free_pages 3565
Node 0, zone    DMA32
  pages free     192551
        min      11094
        low      13867
        high     16640
        managed  240178
        protection: (0, 0, 0, 0, 0)
Node 0, zone   Normal
  pages free     0
        min      0
        low      0
        high     0
        managed  0
        protection: (0, 0, 0, 0, 0)
`

// TestParseReserve: the high watermarks and the largest protection, each
// zone's at most its managed pages.
func TestParseReserve(t *testing.T) {
	if got, want := ParseReserve(zoneinfo, 4096), int64(253+892+16640)*4096; got != want {
		t.Errorf("ParseReserve = %d, want %d", got, want)
	}
	// A zone smaller than its reserve counts what it has.
	small := "Node 0, zone DMA\n  high 100\n  managed 40\n  protection: (0, 500)\n"
	if got := ParseReserve(small, 4096); got != 40*4096 {
		t.Errorf("a small zone: %d, want %d", got, 40*4096)
	}
	if got := ParseReserve("", 4096); got != 0 {
		t.Errorf("no zones: %d", got)
	}
}

// FuzzParseReserve: any text gives a reserve, never a negative one.
func FuzzParseReserve(f *testing.F) {
	f.Add(zoneinfo)
	f.Add("Node 0, zone X\n high -5\n managed 9\n protection: (99999999999999999999)\n")
	f.Fuzz(func(t *testing.T, text string) {
		if r := ParseReserve(text, 4096); r < 0 {
			t.Errorf("ParseReserve(%q) = %d", text, r)
		}
	})
}

// TestKernelMinFree: the kernel's own figures (init_per_zone_wmark_min)
// for a 1 GiB test host, a 16 GiB laptop, and the bounds.
func TestKernelMinFree(t *testing.T) {
	for _, c := range []struct{ total, want int64 }{
		{975104 << 10, 3949}, // the 1 GiB test host's MemTotal
		{16 << 30, 16384},
		{1 << 20, 128},
		{0, 128},
		{-1, 128},
		{1 << 50, 262144},
	} {
		if got := KernelMinFree(c.total); got != c.want {
			t.Errorf("KernelMinFree(%d) = %d, want %d", c.total, got, c.want)
		}
	}
}

func TestParseRollup(t *testing.T) {
	text := "00400000-7ffd8d9fe000 ---p 00000000 00:00 0                          [rollup]\nRss:              526660 kB\nPss_Anon:         260000 kB\nAnonymous:        520000 kB\nLazyFree:              0 kB\nAnonHugePages:    514048 kB\nShmemPmdMapped:        0 kB\n"
	if r := ParseRollup(text); r != (Rollup{Anonymous: 520000 << 10, AnonHuge: 514048 << 10, PssAnon: 260000 << 10}) {
		t.Errorf("ParseRollup = %+v", r)
	}
	if r := ParseRollup("AnonHugePages: -5 kB\nAnonymous: 99999999999999999999 kB\nAnonymous: 1 MB\n"); r != (Rollup{}) {
		t.Errorf("bad figures read as %+v", r)
	}
}

func FuzzParseRollup(f *testing.F) {
	f.Add("Anonymous:        520000 kB\nAnonHugePages:    514048 kB\nPss_Anon: 12 kB\n")
	f.Fuzz(func(t *testing.T, s string) {
		if r := ParseRollup(s); r.Anonymous < 0 || r.AnonHuge < 0 || r.PssAnon < 0 {
			t.Errorf("negative figures %+v from %q", r, s)
		}
	})
}

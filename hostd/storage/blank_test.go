package storage

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/internal/testenv"
)

func TestJudgeBlank(t *testing.T) {
	const size = 64 << 20
	marked := func() []byte {
		b := make([]byte, size)
		copy(b, layout.DataMarker(size/512))
		return b
	}
	with := func(b []byte, off int, s string) []byte { copy(b[off:], s); return b }
	grown := make([]byte, 2*size) // the marker's extent, then a grown tail of old bytes
	copy(grown, layout.DataMarker(size/512))
	for i := size; i < len(grown); i++ {
		grown[i] = 0xAA
	}
	for name, c := range map[string]struct {
		part   []byte
		ok     bool
		marked bool
		why    string
	}{
		"marker, rest empty":           {marked(), true, true, ""},
		"zeros":                        {make([]byte, size), true, false, ""},
		"marker, grown over old bytes": {grown, true, true, ""},
		"small zeros":                  {make([]byte, 4096), true, false, ""},
		"marker and an LVM2 label":     {with(marked(), 512+24, "LVM2 001"), false, false, "holds an LVM2 physical volume"},
		"LVM2 label":                   {with(with(make([]byte, size), 512, "LABELONE"), 512+24, "LVM2 001"), false, false, "holds an LVM2 physical volume"},
		"BitLocker":                    {with(make([]byte, size), 3, "-FVE-FS-"), false, false, "holds BitLocker"},
		"RAID 1.0 at the end":          {with(make([]byte, size), size-8192, "\xfc\x4e\x2b\xa9"), false, false, "holds data at its end"},
		"marker, RAID 1.0 at the end":  {with(marked(), size-8192, "\xfc\x4e\x2b\xa9"), false, false, "holds data at its end"},
		"unknown bytes mid-first-MiB":  {with(make([]byte, size), 700<<10, "x"), false, false, "holds data hostd has no name for"},
		"marker for a larger disk":     {with(make([]byte, size), 0, string(layout.DataMarker(2*size/512))), false, false, "does not fit"},
		"damaged marker":               {with(marked(), 40, "\x01"), false, false, "has no name for"},
	} {
		got, err := JudgeBlank(bytes.NewReader(c.part), int64(len(c.part)))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got.OK != c.ok || got.Marked != c.marked || !strings.Contains(got.Why, c.why) || (c.ok && got.Why != "") {
			t.Errorf("%s: JudgeBlank = %+v, want ok=%v marked=%v why~%q", name, got, c.ok, c.marked, c.why)
		}
	}
}

// TestJudgeBlankFirstBoot: the first-boot secrets after the marker are
// thinhost's own, read back; a damaged record, or one without the
// marker, is someone's data.
func TestJudgeBlankFirstBoot(t *testing.T) {
	const size = 8 << 20
	payload := []byte(`{"wifi_passphrases":{"home":"correct horse"}}`)
	rec, err := layout.FirstBootRecord(payload)
	if err != nil {
		t.Fatal(err)
	}
	part := make([]byte, size)
	copy(part, layout.DataMarker(size/512))
	copy(part[layout.DataMarkerSize:], rec)
	got, err := JudgeBlank(bytes.NewReader(part), size)
	if err != nil || !got.OK || !got.Marked || !bytes.Equal(got.FirstBoot, payload) || got.FirstBootSpan != len(rec) {
		t.Fatalf("JudgeBlank = %+v, %v", got, err)
	}
	damaged := bytes.Clone(part)
	damaged[layout.DataMarkerSize+len(layout.FirstBootMagic)+10] ^= 1
	if got, _ := JudgeBlank(bytes.NewReader(damaged), size); got.OK {
		t.Errorf("a damaged record is blank: %+v", got)
	}
	unmarked := bytes.Clone(part)
	clear(unmarked[:layout.DataMarkerSize])
	if got, _ := JudgeBlank(bytes.NewReader(unmarked), size); got.OK {
		t.Errorf("a record without the marker is blank: %+v", got)
	}
}

// TestJudgeBlankExt4WithoutSuperblock: ext4 made by Debian's mke2fs whose
// primary superblock was zeroed reads as no ext4 to Probe, and is still
// someone's data (its group descriptors and backups are there).
func TestJudgeBlankExt4WithoutSuperblock(t *testing.T) {
	mke2fs := testenv.NeedTool(t, "mke2fs")
	p := filepath.Join(t.TempDir(), "part")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 64<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mke2fs, "-q", "-F", "-t", "ext4", p).CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, 1024), 1024); err != nil {
		t.Fatal(err)
	}
	head := make([]byte, ProbeBytes)
	f.ReadAt(head, 0)
	if fs := Probe(head); fs != "" {
		t.Fatalf("Probe still finds %q", fs)
	}
	got, err := JudgeBlank(f, 64<<20)
	if err != nil || got.OK {
		t.Errorf("ext4 without its primary superblock: %+v, %v; want not blank", got, err)
	}
}

func FuzzJudgeBlank(f *testing.F) {
	f.Add(layout.DataMarker(8192), int64(4<<20))
	f.Add([]byte{}, int64(0))
	f.Fuzz(func(t *testing.T, head []byte, size int64) {
		if size < 0 || size > 8<<20 {
			return
		}
		part := make([]byte, size)
		copy(part, head)
		got, err := JudgeBlank(bytes.NewReader(part), size)
		if err != nil {
			t.Fatal(err)
		}
		if got.OK {
			if sectors, ok := layout.ParseDataMarker(part); ok {
				clear(part[:512])
				part = part[:sectors*512]
			}
			if !allZero(part[:min(len(part), blankSpan)]) {
				t.Fatalf("blank with a non-empty first MiB: %+v", got)
			}
		}
	})
}

package layout

import (
	"bytes"
	"testing"
)

func TestFirstBootRecord(t *testing.T) {
	payload := []byte(`{"wifi_passphrases":{"home":"correct horse"}}`)
	rec, err := FirstBootRecord(payload)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec)%DataMarkerSize != 0 {
		t.Fatalf("record of %d bytes is not whole sectors", len(rec))
	}
	got, span, ok := ParseFirstBoot(append(rec, make([]byte, 4096)...))
	if !ok || span != len(rec) || !bytes.Equal(got, payload) {
		t.Fatalf("ParseFirstBoot = %q, %d, %v", got, span, ok)
	}
	for i := range rec {
		bad := bytes.Clone(rec)
		bad[i] ^= 1
		if _, _, ok := ParseFirstBoot(bad); ok {
			t.Fatalf("a record with byte %d flipped still parses", i)
		}
	}
	if _, err := FirstBootRecord(make([]byte, FirstBootMax)); err == nil {
		t.Error("an oversized record was made")
	}
}

func FuzzParseFirstBoot(f *testing.F) {
	rec, _ := FirstBootRecord([]byte(`{}`))
	f.Add(rec)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, span, ok := ParseFirstBoot(b)
		if ok && (span > len(b) || len(p) > span) {
			t.Fatalf("span %d of %d bytes, payload %d", span, len(b), len(p))
		}
	})
}

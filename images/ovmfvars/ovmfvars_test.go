package ovmfvars

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"slices"
	"testing"

	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/internal/testenv"
)

// The SHA-256 fingerprints of Microsoft's 2023 certificates (what
// `openssl x509 -fingerprint -sha256` prints for Debian's copies).
var fingerprints = map[string]string{
	"Microsoft Corporation KEK 2K CA 2023": "3cd3f0309edae228767a976dd40d9f4affc4fbd5218f2e8cc3c9dd97e8ac6f9d",
	"Windows UEFI CA 2023":                 "076f1fea90ac29155ebf77c17682f75f1fdd1be196da302dc8461e350a9ae330",
	"Microsoft UEFI CA 2023":               "f6124e34125bee3fe6d79a574eaa7b91c0e7bd9d929c1a321178efd611dad901",
}

func TestEmbeddedCertificates(t *testing.T) {
	kek, db := Microsoft2023()
	for _, der := range append(kek, db...) {
		sum := sha256.Sum256(der)
		found := false
		for _, fp := range fingerprints {
			found = found || fp == hex.EncodeToString(sum[:])
		}
		if !found {
			t.Errorf("an embedded certificate with fingerprint %x is not one of Microsoft's 2023 ones", sum)
		}
	}
}

func names(t *testing.T, s *Store, name string) []string {
	t.Helper()
	vendor := GlobalVariable
	if name == "db" || name == "dbx" {
		vendor = ImageSecurityDatabase
	}
	certs, err := s.Certificates(name, vendor)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range certs {
		out = append(out, c.Subject.CommonName)
	}
	return out
}

// debianStore is the variable store with Microsoft's keys of Debian's
// ovmf package, on this machine.
func debianStore(t *testing.T) []byte {
	t.Helper()
	testenv.NeedFile(t, layout.OVMFMSVars, "apt-get install ovmf")
	raw, err := os.ReadFile(layout.OVMFMSVars)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestWithMicrosoft2023 reads Debian's store, adds the 2023 certificates,
// and lists KEK and db: the 2011 ones and the 2023 ones; PK and every
// other variable as they were; a second pass adds nothing.
func TestWithMicrosoft2023(t *testing.T) {
	raw := debianStore(t)
	before, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(t, before, "KEK"); !slices.Contains(got, "Microsoft Corporation KEK CA 2011") || slices.Contains(got, "Microsoft Corporation KEK 2K CA 2023") {
		t.Fatalf("Debian's KEK: %q", got)
	}
	out, err := WithMicrosoft2023(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(raw) {
		t.Fatalf("the store changed size: %d, was %d", len(out), len(raw))
	}
	after, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	kek, db := names(t, after, "KEK"), names(t, after, "db")
	t.Logf("KEK: %q", kek)
	t.Logf("db: %q", db)
	for _, want := range []string{"Microsoft Corporation KEK CA 2011", "Microsoft Corporation KEK 2K CA 2023"} {
		if !slices.Contains(kek, want) {
			t.Errorf("KEK lacks %s: %q", want, kek)
		}
	}
	for _, want := range []string{"Microsoft Windows Production PCA 2011", "Microsoft Corporation UEFI CA 2011", "Windows UEFI CA 2023", "Microsoft UEFI CA 2023"} {
		if !slices.Contains(db, want) {
			t.Errorf("db lacks %s: %q", want, db)
		}
	}
	// Everything else reads as it did.
	bv, av := before.Variables(), after.Variables()
	if len(bv) != len(av) {
		t.Fatalf("%d live variables, were %d", len(av), len(bv))
	}
	for _, b := range bv {
		a := after.Lookup(b.Name, b.Vendor)
		switch {
		case a == nil:
			t.Errorf("%s is gone", b.Name)
		case a.Attributes != b.Attributes:
			t.Errorf("%s: attributes %#x, were %#x", b.Name, a.Attributes, b.Attributes)
		case b.Name != "KEK" && b.Name != "db" && !bytes.Equal(a.Data, b.Data):
			t.Errorf("%s changed", b.Name)
		case !bytes.Equal(a.header[8:32], b.header[8:32]):
			t.Errorf("%s: monotonic count or time stamp changed", b.Name)
		}
	}
	// Before the variable area and after the store, not a byte moved.
	if !bytes.Equal(out[:before.storeStart+28], raw[:before.storeStart+28]) || !bytes.Equal(out[before.storeEnd:], raw[before.storeEnd:]) {
		t.Error("bytes outside the variable area changed")
	}
	again, err := WithMicrosoft2023(out)
	if err != nil || !bytes.Equal(again, out) {
		t.Errorf("a second pass changed the store: %v", err)
	}
}

// TestParseRefuses: what is not a variable store is refused, not
// misread.
func TestParseRefuses(t *testing.T) {
	raw := debianStore(t)
	for name, mut := range map[string]func([]byte){
		"no _FVH":              func(b []byte) { b[40] = 'x' },
		"store overruns":       func(b []byte) { b[0x48+16+3] = 0x7f },
		"name overruns":        func(b []byte) { b[0x64+36+3] = 0x7f },
		"junk after variables": func(b []byte) { b[0x5998+100] = 0 },
	} {
		b := append([]byte(nil), raw...)
		mut(b)
		if _, err := Parse(b); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func FuzzParse(f *testing.F) {
	if raw, err := os.ReadFile(layout.OVMFMSVars); err == nil {
		f.Add(raw[:0x6000])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			return
		}
		for _, v := range s.Variables() {
			_, _ = s.Certificates(v.Name, v.Vendor)
		}
		_, _ = WithMicrosoft2023(b)
	})
}

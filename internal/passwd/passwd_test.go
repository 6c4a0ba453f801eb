package passwd

import (
	"strings"
	"testing"
)

func TestHashVerify(t *testing.T) {
	h, err := Hash("correct horse", []byte("thinhost-salt"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q", h)
	}
	again, _ := Hash("correct horse", []byte("thinhost-salt"))
	if again != h {
		t.Error("the same password and salt hash differently: builds would not be reproducible")
	}
	if !Verify(h, "correct horse") {
		t.Error("the right password is refused")
	}
	for _, bad := range []string{"", "correct hors", "correct horse ", "Correct horse"} {
		if Verify(h, bad) {
			t.Errorf("%q is accepted", bad)
		}
	}
	for _, enc := range []string{"", "plain", "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
		strings.Replace(h, "m=19456", "m=99999999", 1), strings.Replace(h, "t=2", "t=0", 1)} {
		if Verify(enc, "correct horse") {
			t.Errorf("a bad hash %q matches", enc)
		}
	}
	if _, err := Hash("x", []byte("short")); err == nil {
		t.Error("a short salt is accepted")
	}
}

func FuzzVerify(f *testing.F) {
	h, _ := Hash("pw", []byte("saltsalt"))
	f.Add(h, "pw")
	f.Fuzz(func(t *testing.T, enc, pw string) {
		Verify(enc, pw)
	})
}

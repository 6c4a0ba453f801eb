package smb

import (
	"encoding/binary"
	"strings"
	"testing"
)

// TestMachineSID: the same filesystem gives the same SID, another
// another, each one smbd takes.
func TestMachineSID(t *testing.T) {
	a, b := [16]byte{1, 2, 3}, [16]byte{1, 2, 4}
	if MachineSID(a) != MachineSID(a) {
		t.Error("MachineSID differs for the same UUID")
	}
	if MachineSID(a) == MachineSID(b) {
		t.Error("two filesystems got one SID")
	}
	for _, id := range [][16]byte{a, b, {}} {
		if _, err := ParseMachineSID(MachineSID(id)); err != nil {
			t.Error(err)
		}
	}
}

func TestParseMachineSID(t *testing.T) {
	for in, ok := range map[string]bool{
		"S-1-5-21-111-222-333":                    true,
		" S-1-5-21-4294967295-0-1\n":              true,
		"S-1-5-21-4294967296-0-1":                 false,
		"S-1-5-21-1-2":                            false,
		"S-1-5-21-1-2-3-4":                        false,
		"S-1-5-21-01-2-3":                         false,
		"S-1-5-21-+1-2-3":                         false,
		"S-1-5-32-1-2-3":                          false,
		"S-1-5-21-1-2-3\n[global]\nroot preexec=": false,
		"": false,
	} {
		if _, err := ParseMachineSID(in); (err == nil) != ok {
			t.Errorf("ParseMachineSID(%q): %v, want ok %v", in, err, ok)
		}
	}
}

// tdbRecord is a live TDB record as tdb lays it out: next, record
// length, key length, data length, hash, magic, key, data.
func tdbRecord(key string, data []byte, magic uint32) []byte {
	h := make([]byte, 24)
	le := binary.LittleEndian
	le.PutUint32(h[4:], uint32(len(key)+len(data)))
	le.PutUint32(h[8:], uint32(len(key)))
	le.PutUint32(h[12:], uint32(len(data)))
	le.PutUint32(h[20:], magic)
	return append(append(h, key...), data...)
}

// domSID is a dom_sid of S-1-5-21-a-b-c as Samba stores it.
func domSID(a, b, c uint32) []byte {
	d := make([]byte, 68)
	d[0], d[1], d[7] = 1, 4, 5
	le := binary.LittleEndian
	le.PutUint32(d[8:], 21)
	le.PutUint32(d[12:], a)
	le.PutUint32(d[16:], b)
	le.PutUint32(d[20:], c)
	return d
}

func TestSecretsSID(t *testing.T) {
	file := make([]byte, 100)
	// A deleted record first (tdb's free magic), then the workgroup's,
	// then the server's.
	file = append(file, tdbRecord("SECRETS/SID/THINHOST", domSID(7, 7, 7), 0xd9fee666)...)
	file = append(file, tdbRecord("SECRETS/SID/WORKGROUP", domSID(9, 9, 9), tdbMagic)...)
	file = append(file, tdbRecord("SECRETS/SID/THINHOST", domSID(111, 222, 333), tdbMagic)...)
	if sid, err := SecretsSID(file, "thinhost"); err != nil || sid != "S-1-5-21-111-222-333" {
		t.Errorf("SecretsSID = %q, %v", sid, err)
	}
	if _, err := SecretsSID(file[:len(file)-10], "THINHOST"); err == nil {
		t.Error("a record cut short was read")
	}
	if _, err := SecretsSID(file, "OTHER"); err == nil || !strings.Contains(err.Error(), "SECRETS/SID/OTHER") {
		t.Errorf("another server's name: %v", err)
	}
	bad := append(make([]byte, 30), tdbRecord("SECRETS/SID/THINHOST", make([]byte, 68), tdbMagic)...)
	if _, err := SecretsSID(bad, "THINHOST"); err == nil {
		t.Error("a record without a machine SID was read")
	}
}

// FuzzSecretsSID: any file is read without a panic, and what is read is
// a machine SID.
func FuzzSecretsSID(f *testing.F) {
	f.Add(append(make([]byte, 24), tdbRecord("SECRETS/SID/THINHOST", domSID(1, 2, 3), tdbMagic)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		if sid, err := SecretsSID(b, NetbiosName); err == nil {
			if _, err := ParseMachineSID(sid); err != nil {
				t.Error(err)
			}
		}
	})
}

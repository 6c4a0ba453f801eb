package smb

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// MachineSID is the server's SID on a host whose data filesystem has the
// UUID fsID: S-1-5-21- and three numbers made of the UUID (SHA-256, so
// that nothing of the UUID itself shows). The Windows ACLs smbd stores
// with the files (acl_xattr) name the share user by a SID made of it, so
// it must stay the same from boot to boot: the filesystem's UUID does,
// and it is known from the superblock before the filesystem is checked
// or mounted, so smbd can start while that goes on. A filesystem made
// anew (another disk, a reset) gets another.
func MachineSID(fsID [16]byte) string {
	sum := sha256.Sum256(append([]byte("thinhost smbd machine SID\x00"), fsID[:]...))
	le := binary.LittleEndian
	return fmt.Sprintf("S-1-5-21-%d-%d-%d", le.Uint32(sum[0:]), le.Uint32(sum[4:]), le.Uint32(sum[8:]))
}

// ParseMachineSID returns s, trimmed, if it is a machine SID smbd takes:
// S-1-5-21- and three 32-bit numbers.
func ParseMachineSID(s string) (string, error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, "S-1-5-21-")
	parts := strings.Split(rest, "-")
	if !ok || len(parts) != 3 {
		return "", fmt.Errorf("%q is not a machine SID (S-1-5-21-A-B-C)", s)
	}
	for _, p := range parts {
		// Plain decimal: no sign, no leading zero.
		if v, err := strconv.ParseUint(p, 10, 32); err != nil || strconv.FormatUint(v, 10) != p {
			return "", fmt.Errorf("%q is not a machine SID (S-1-5-21-A-B-C)", s)
		}
	}
	return s, nil
}

// tdbMagic marks a live record in a TDB file (tdb's TDB_MAGIC).
const tdbMagic = 0x26011999

// SecretsSID reads the machine SID of the server named netbios from
// Samba's secrets.tdb (its record SECRETS/SID/<NAME>), as an image before
// this one left it on the data partition. It reads the file's records as
// they lie (a TDB of a little-endian host): each is a header (next,
// record length, key length, data length, hash, magic) followed by the
// key and the data, here a dom_sid of 68 bytes.
func SecretsSID(tdb []byte, netbios string) (string, error) {
	key := []byte("SECRETS/SID/" + strings.ToUpper(netbios))
	le := binary.LittleEndian
	for off := 0; ; {
		i := bytes.Index(tdb[off:], key)
		if i < 0 {
			return "", fmt.Errorf("no live record %s", key)
		}
		at := off + i
		off = at + 1
		if at < 24 {
			continue
		}
		h := tdb[at-24 : at]
		keyLen, dataLen, magic := le.Uint32(h[8:]), le.Uint32(h[12:]), le.Uint32(h[20:])
		if magic != tdbMagic || keyLen != uint32(len(key)) || dataLen != 68 || at+len(key)+68 > len(tdb) {
			continue
		}
		d := tdb[at+len(key) : at+len(key)+68]
		rev, n := d[0], int(d[1])
		if rev != 1 || n != 4 || !bytes.Equal(d[2:8], []byte{0, 0, 0, 0, 0, 5}) || le.Uint32(d[8:]) != 21 {
			return "", fmt.Errorf("record %s holds no machine SID", key)
		}
		return fmt.Sprintf("S-1-5-21-%d-%d-%d", le.Uint32(d[12:]), le.Uint32(d[16:]), le.Uint32(d[20:])), nil
	}
}

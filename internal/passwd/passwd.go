// Package passwd hashes the debug shell's password into the image and
// checks what is typed against it: Argon2id in the PHC string format
// ("$argon2id$v=19$m=19456,t=2,p=1$SALT$HASH"). The hash sits in hostd's
// configuration on the ESP, which anyone holding the stick can read, so
// it is slow to guess; the salt comes from the caller (the builder
// derives it from the host's name), which keeps builds reproducible.
package passwd

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Parameters: OWASP's minimum for Argon2id (19 MiB, 2 passes).
const (
	memoryKiB = 19 * 1024
	passes    = 2
	threads   = 1
	keyLen    = 32
)

var b64 = base64.RawStdEncoding

// Hash returns the PHC string of password with salt (at least 8 bytes).
func Hash(password string, salt []byte) (string, error) {
	if len(salt) < 8 {
		return "", errors.New("hash password: salt shorter than 8 bytes")
	}
	key := argon2.IDKey([]byte(password), salt, passes, memoryKiB, threads, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, memoryKiB, passes, threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify reports whether password matches encoded (a Hash result). An
// encoded string it cannot read, or whose costs are out of bounds, never
// matches.
func Verify(encoded, password string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false
	}
	// Bounds against a configuration that would exhaust the host.
	if m < 8*1024 || m > 256*1024 || t < 1 || t > 10 || p < 1 || p > 4 {
		return false
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return false
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) < 16 || len(want) > 64 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

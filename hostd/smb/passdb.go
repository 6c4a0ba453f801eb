package smb

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/thinhost/thinhost/images/layout/config"
)

// PassdbFile is Samba's password database in its private directory: the
// smbpasswd format (passdb backend = smbpasswd), which WritePassdb writes
// afresh each boot.
func PassdbFile(privateDir string) string { return filepath.Join(privateDir, "smbpasswd") }

// WritePassdb writes user's account (Unix uid, NT hash ntHash as 32 hex
// digits, password set at changed) as Samba's password database in
// privateDir, for root alone: no LAN Manager hash, a normal account whose
// password does not expire. It refuses a name smb.conf would not take
// (config.ValidShareUser) and a hash that is not one, so that no value
// becomes a line or field of its own.
func WritePassdb(privateDir, user string, uid int, ntHash string, changed time.Time) error {
	line, err := PassdbLine(user, uid, ntHash, changed)
	if err != nil {
		return err
	}
	path := PassdbFile(privateDir)
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(line), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// PassdbLine is user's line in smbpasswd's format:
// name:uid:LM hash:NT hash:[account flags]:LCT-<seconds, hex>:
func PassdbLine(user string, uid int, ntHash string, changed time.Time) (string, error) {
	if !config.ValidShareUser(user) {
		return "", fmt.Errorf("share user %q is not a plain user name", user)
	}
	if uid < 0 {
		return "", fmt.Errorf("share user %s: uid %d", user, uid)
	}
	h := strings.ToUpper(ntHash)
	if len(h) != 32 || strings.Trim(h, "0123456789ABCDEF") != "" {
		return "", fmt.Errorf("share user %s: the password's NT hash is not 32 hex digits (the profile's password_nt_hash?)", user)
	}
	// U: a normal user account; X: its password does not expire. The
	// flags field is 11 wide between its brackets.
	return fmt.Sprintf("%s:%d:%s:%s:[%-11s]:LCT-%08X:\n", user, uid, strings.Repeat("X", 32), h, "UX", changed.Unix()), nil
}

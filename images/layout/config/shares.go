package config

import (
	"encoding/hex"
	"fmt"
	"path"
	"regexp"
	"strings"
	"unicode/utf16"

	"golang.org/x/crypto/md4"
)

// What a share's name, user and path may hold: plain text to smb.conf
// (no newline, NUL, '%' substitution, quotes, '[' sections, '\'
// continuations) and names Windows can use. The profile refuses anything
// else with its file and line; hostd checks again before it writes
// smb.conf, so a hand-edited configuration cannot inject either.
var (
	shareNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_-]{0,31}$`)
	shareUserRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	// A folder name: letters, digits, '.', '_', '-' and inner spaces,
	// not starting with '.' nor ending in '.' or a space.
	pathSegmentRE = regexp.MustCompile(`^[\p{L}\p{N}_-]([\p{L}\p{N}._ -]*[\p{L}\p{N}_-])?$`)
	// Names smb.conf gives a meaning of its own.
	reservedShares = map[string]bool{"global": true, "homes": true, "printers": true, "print$": true, "ipc$": true}
	// System accounts a share user may not be.
	reservedUsers = map[string]bool{"root": true, "nobody": true, "daemon": true, "bin": true, "sys": true}
)

// MaxSharePath is the longest share path, in bytes.
const MaxSharePath = 200

// ValidShareName says whether name may name a share.
func ValidShareName(name string) bool {
	return shareNameRE.MatchString(name) && !reservedShares[strings.ToLower(name)]
}

// ValidShareUser says whether user may be the share user.
func ValidShareUser(user string) bool {
	return shareUserRE.MatchString(user) && !reservedUsers[user]
}

// ReservedShareUser says whether user is a system account.
func ReservedShareUser(user string) bool { return reservedUsers[user] }

// ValidSharePath says whether p, relative to the data partition's
// shares/, is a clean path of folder names smb.conf and Windows read as
// plain names.
func ValidSharePath(p string) bool {
	if p == "" || len(p) > MaxSharePath || path.Clean(p) != p {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if !pathSegmentRE.MatchString(seg) {
			return false
		}
	}
	return true
}

// Check refuses a file server whose user, share names or paths are not
// plain names (ValidShareUser, ValidShareName, ValidSharePath).
func (fs *FileServer) Check() error {
	if !ValidShareUser(fs.User) {
		return fmt.Errorf("share user %q is not a plain user name", fs.User)
	}
	for _, s := range fs.Shares {
		if !ValidShareName(s.Name) {
			return fmt.Errorf("share name %q is not a plain share name", s.Name)
		}
		if !ValidSharePath(s.Path) {
			return fmt.Errorf("share %s: path %q is not made of plain folder names", s.Name, s.Path)
		}
	}
	return nil
}

// NTHash is the NT hash of a password, all Samba's password database
// keeps: MD4 of its UTF-16LE encoding, in upper-case hex ("" for none).
func NTHash(pw string) string {
	if pw == "" {
		return ""
	}
	h := md4.New()
	for _, c := range utf16.Encode([]rune(pw)) {
		h.Write([]byte{byte(c), byte(c >> 8)})
	}
	return strings.ToUpper(hex.EncodeToString(h.Sum(nil)))
}

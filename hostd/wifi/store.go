package wifi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/thinhost/thinhost/images/layout/config"
)

// Store is the passphrases the host knows, kept (0600) on the data
// partition: the profile's networks' by name, from the first boot's seed
// (layout.Seed), and the networks `ctl wifi connect` added.
type Store struct {
	Passphrases map[string]string `json:"passphrases,omitempty"`
	Added       []Saved           `json:"added,omitempty"`
	// Path is where Save writes ("": nowhere, this boot only).
	Path string `json:"-"`
}

// Saved is a network added with `ctl wifi connect`.
type Saved struct {
	SSID       string `json:"ssid"`
	Security   string `json:"security"`
	Passphrase string `json:"passphrase"`
}

// LoadStore reads the store at path; a missing file is an empty store.
func LoadStore(path string) (*Store, error) {
	s := &Store{Path: path}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, s); err != nil {
		return &Store{Path: path}, fmt.Errorf("parse %s: %w", path, err)
	}
	// What a hand or a bug put there that the supplicant would refuse.
	for k, v := range s.Passphrases {
		if config.CheckPassphrase(v) != nil {
			delete(s.Passphrases, k)
		}
	}
	var ok []Saved
	for _, a := range s.Added {
		open := a.Security == config.WifiOpen && a.Passphrase == ""
		if config.CheckSSID(a.SSID) == nil && (open || config.CheckPassphrase(a.Passphrase) == nil) && config.CheckWifiSecurity(a.Security) == nil {
			ok = append(ok, a)
		}
	}
	s.Added = ok
	return s, nil
}

// Merge takes the passphrases of seed (the first boot's), keeping none of
// s's for the same names.
func (s *Store) Merge(seed map[string]string) {
	for k, v := range seed {
		if config.CheckPassphrase(v) != nil {
			continue
		}
		if s.Passphrases == nil {
			s.Passphrases = map[string]string{}
		}
		s.Passphrases[k] = v
	}
}

// Save writes the store to its Path, root's alone, replacing the old one
// at once.
func (s *Store) Save() error {
	if s.Path == "" {
		return nil
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.Path), 0o700); err != nil {
		return err
	}
	tmp := s.Path + ".new"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, s.Path)
}

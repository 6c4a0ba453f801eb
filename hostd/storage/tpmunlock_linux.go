package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"strconv"
	"strings"

	"github.com/google/go-tpm/tpm2/transport/linuxtpm"

	"github.com/thinhost/thinhost/hostd/sysimage"
	"github.com/thinhost/thinhost/hostd/tpmseal"
)

// Unlocking the encrypted data partition with the laptop's TPM 2.0
// (storage { encrypt = true  tpm = true }): a random key in a LUKS2
// keyslot of its own, sealed to the TPM and PCR 7 (the firmware's Secure
// Boot state and keys), the sealed blob in a LUKS2 token beside it. No
// key is on the ESP, and the sealed blob opens nothing without this TPM
// in this state. A recovery key, shown once at the first boot, opens the
// partition when the TPM does not (another machine, a cleared TPM,
// Secure Boot changed); the TPM key is then sealed again to what the
// firmware measures now.
const (
	tpmDevice    = "/dev/tpmrm0"
	tpmTokenType = "thinhost-tpm2"
)

// tpmPCRs are the PCRs the key is sealed to: 7, the Secure Boot policy.
// (PCRs 0-4, firmware and boot loader code, change with every firmware
// or boot loader update, which would ask for the recovery key after each
// of thinhost's own A/B updates.)
var tpmPCRs = []uint{7}

// tpmToken is the LUKS2 token holding the sealed key.
type tpmToken struct {
	Type     string   `json:"type"`
	Keyslots []string `json:"keyslots"`
	tpmseal.Sealed
}

// readTPMToken finds thinhost's TPM token in dev's LUKS2 header: its id,
// and the token (nil when there is none).
func readTPMToken(ctx context.Context, dev string) (string, *tpmToken, error) {
	meta, err := luksMetadata(ctx, dev)
	if err != nil {
		return "", nil, err
	}
	for id, raw := range meta.Tokens {
		var tok tpmToken
		if json.Unmarshal(raw, &tok) == nil && tok.Type == tpmTokenType && len(tok.Keyslots) == 1 {
			return id, &tok, nil
		}
	}
	return "", nil, nil
}

// unlockTPM opens dev with the key its TPM token seals; an error says why
// not (no token, no TPM, the TPM refused).
func unlockTPM(ctx context.Context, log *slog.Logger, dev string) error {
	_, tok, err := readTPMToken(ctx, dev)
	if err != nil {
		return err
	}
	if tok == nil {
		return errors.New("the partition has no TPM key yet")
	}
	tpm, err := linuxtpm.Open(tpmDevice)
	if err != nil {
		return fmt.Errorf("no TPM: %w", err)
	}
	defer tpm.Close()
	key, err := tpmseal.Unseal(tpm, &tok.Sealed)
	if err != nil {
		return err
	}
	if out, err := cryptRun(ctx, string(key), "open", "--type", "luks2", "--key-slot", tok.Keyslots[0], "--key-file", "-", dev, DataMapper); err != nil {
		return fmt.Errorf("the TPM's key does not open %s: %v: %s", dev, err, strings.TrimSpace(string(out)))
	}
	log.Info("data partition unlocked by the TPM", "device", dev, "pcrs", tok.PCRs, "keyslot", tok.Keyslots[0])
	return nil
}

// enrollTPM gives dev a new TPM key: a random key added in a keyslot of
// its own (existing, a key dev takes, authorizes it), sealed to the TPM
// and PCR 7 as they are now, in a token beside it. An earlier TPM key and
// token go first. The recovery key's keyslot is never touched.
func enrollTPM(ctx context.Context, log *slog.Logger, dev, existing string, secureBootOn bool) error {
	if !secureBootOn {
		return errors.New("Secure Boot is not on, so PCR 7 would not tell this system from any other: the key is not sealed to the TPM, and the recovery key opens the partition")
	}
	tpm, err := linuxtpm.Open(tpmDevice)
	if err != nil {
		return fmt.Errorf("no TPM to seal the key to: %w", err)
	}
	defer tpm.Close()
	if id, old, err := readTPMToken(ctx, dev); err != nil {
		return err
	} else if old != nil {
		if out, err := cryptRun(ctx, "", "token", "remove", "--token-id", id, dev); err != nil {
			return fmt.Errorf("remove the old TPM token of %s: %v: %s", dev, err, strings.TrimSpace(string(out)))
		}
		if out, err := cryptRun(ctx, "", "luksKillSlot", "--batch-mode", dev, old.Keyslots[0]); err != nil {
			return fmt.Errorf("remove the old TPM key of %s: %v: %s", dev, err, strings.TrimSpace(string(out)))
		}
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	key := hex.EncodeToString(raw)
	sealed, err := tpmseal.Seal(tpm, []byte(key), tpmPCRs)
	if err != nil {
		return err
	}
	slot, err := addKey(ctx, dev, existing, key)
	if err != nil {
		return err
	}
	tok, err := json.Marshal(tpmToken{Type: tpmTokenType, Keyslots: []string{}, Sealed: *sealed})
	if err != nil {
		return err
	}
	cmd := sysimage.Command(ctx, cryptsetup, "token", "import", "--json-file", "-", "--key-slot", slot, dev)
	cmd.Stdin = bytes.NewReader(tok)
	if out, err := cmd.CombinedOutput(); err != nil {
		// A keyslot nobody can unseal is of no use: remove it again.
		cryptRun(ctx, "", "luksKillSlot", "--batch-mode", dev, slot)
		return fmt.Errorf("store the sealed key in %s's header: %v: %s", dev, err, strings.TrimSpace(string(out)))
	}
	log.Info("data partition key sealed to the TPM", "device", dev, "pcrs", tpmPCRs, "keyslot", slot)
	return nil
}

// addKey adds key to dev in a new keyslot, authorized by existing, and
// says which slot. Both reach cryptsetup on pipes: existing on standard
// input, key on descriptor 3 (/proc/self/fd/3: the host has no /dev/fd);
// neither is ever in a file. The key is
// random and long, so its keyslot's key derivation is PBKDF2 at its
// minimum: Argon2id's cost buys nothing against 256 random bits.
func addKey(ctx context.Context, dev, existing, key string) (string, error) {
	before, err := keyslots(ctx, dev)
	if err != nil {
		return "", err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return "", err
	}
	go func() {
		w.WriteString(key)
		w.Close()
	}()
	cmd := sysimage.Command(ctx, cryptsetup, "luksAddKey", "--batch-mode", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000",
		"--key-file", "-", "--new-keyfile", "/proc/self/fd/3", dev)
	cmd.Stdin = strings.NewReader(existing)
	cmd.ExtraFiles = []*os.File{r}
	out, err := cmd.CombinedOutput()
	r.Close()
	if err != nil {
		return "", fmt.Errorf("add the TPM key to %s: %v: %s", dev, err, strings.TrimSpace(string(out)))
	}
	after, err := keyslots(ctx, dev)
	if err != nil {
		return "", err
	}
	for s := range after {
		if !before[s] {
			return s, nil
		}
	}
	return "", fmt.Errorf("add the TPM key to %s: no new keyslot appeared", dev)
}

// keyslots are the keyslot numbers dev's header uses.
func keyslots(ctx context.Context, dev string) (map[string]bool, error) {
	meta, err := luksMetadata(ctx, dev)
	if err != nil {
		return nil, err
	}
	got := map[string]bool{}
	for s := range meta.Keyslots {
		got[s] = true
	}
	return got, nil
}

// recoveryGroups and recoveryDigits shape a recovery key: 8 groups of 6
// digits (about 159 bits), typeable on any keyboard layout, as BitLocker's.
const recoveryGroups, recoveryDigits = 8, 6

// newRecoveryKey makes a recovery key.
func newRecoveryKey() (string, error) {
	groups := make([]string, recoveryGroups)
	for i := range groups {
		n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
		if err != nil {
			return "", err
		}
		groups[i] = fmt.Sprintf("%06d", n.Int64())
	}
	return strings.Join(groups, "-"), nil
}

// normalRecoveryKey writes a typed recovery key as newRecoveryKey does
// (digits grouped by dashes), whatever spaces or dashes were typed; other
// input (a passphrase) comes back as typed.
func normalRecoveryKey(s string) string {
	digits := strings.Map(func(r rune) rune {
		switch {
		case r >= '0' && r <= '9':
			return r
		case r == '-' || r == ' ':
			return -1
		}
		return 'x'
	}, s)
	if len(digits) != recoveryGroups*recoveryDigits || strings.ContainsRune(digits, 'x') {
		return s
	}
	var g []string
	for i := 0; i < len(digits); i += recoveryDigits {
		g = append(g, digits[i:i+recoveryDigits])
	}
	return strings.Join(g, "-")
}

// showRecoveryKey shows the recovery key on every console and waits until
// someone confirms it is written down by typing its last group back: the
// key is shown this once (never logged, never stored), and a boot that
// went on without anyone seeing it would leave a disk only this TPM in
// this state can open.
func showRecoveryKey(ctx context.Context, ask Asker, key string) error {
	last := key[strings.LastIndex(key, "-")+1:]
	prompt := "thinhost: the data partition opens with this laptop's TPM; if the TPM cannot (another machine,\r\n" +
		"thinhost: Secure Boot changed, the TPM cleared), only this recovery key opens it. It is shown once:\r\n" +
		"thinhost:\r\n" +
		"thinhost:     " + key + "\r\n" +
		"thinhost:\r\n" +
		"thinhost: write it down, then type its last group to go on: "
	for {
		got, err := ask(ctx, prompt)
		if err != nil {
			return err
		}
		if strings.TrimSpace(got) == last {
			return nil
		}
		prompt = "thinhost: that is not the last group of the recovery key above (" + strconv.Itoa(recoveryDigits) + " digits); type it: "
	}
}

// luksHeader is the part of a LUKS2 header's JSON metadata hostd reads.
type luksHeader struct {
	Keyslots map[string]json.RawMessage `json:"keyslots"`
	Tokens   map[string]json.RawMessage `json:"tokens"`
}

// luksMetadata reads dev's LUKS2 header metadata (cryptsetup luksDump
// --dump-json-metadata).
func luksMetadata(ctx context.Context, dev string) (*luksHeader, error) {
	out, err := sysimage.Command(ctx, cryptsetup, "luksDump", "--dump-json-metadata", dev).Output()
	if err != nil {
		return nil, fmt.Errorf("cryptsetup luksDump %s: %w", dev, err)
	}
	var meta luksHeader
	if err := json.Unmarshal(out, &meta); err != nil {
		return nil, fmt.Errorf("read the LUKS2 metadata of %s: %w", dev, err)
	}
	return &meta, nil
}

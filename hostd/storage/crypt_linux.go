package storage

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/thinhost/thinhost/hostd/api"
	"github.com/thinhost/thinhost/hostd/sysimage"
)

// The encrypted data partition (storage { encrypt = true }): LUKS2 made
// by cryptsetup from the system image, opened as DataMapper.
const (
	cryptsetup = "/sbin/cryptsetup"
	// DataMapper is the opened data partition's device-mapper name.
	DataMapper = "thinhost-data"
	// luksLabel marks a LUKS2 header whose filesystem hostd made;
	// luksLabelNew one it made and has not yet put a filesystem in (a
	// boot that stopped between the two finds it empty inside and makes
	// the filesystem again: hostd formats only what it left empty).
	luksLabel    = "thinhost-data"
	luksLabelNew = "thinhost-data-new"
	// minPassphrase is the shortest passphrase taken for a new partition.
	minPassphrase = 8
	// wrongPause is how long a wrong passphrase costs, on top of the
	// key derivation's own time.
	wrongPause = 2 * time.Second
)

// cryptsetup's exit status for a passphrase no keyslot takes.
const cryptWrongPassphrase = 2

// Asker asks a person for a secret (a passphrase), showing prompt
// (console.AskConsoles asks on the host's consoles).
type Asker func(ctx context.Context, prompt string) (string, error)

// newPassphrase asks for the new partition's passphrase twice until both
// agree and it is long enough.
func newPassphrase(ctx context.Context, ask Asker) (string, error) {
	prompt := "thinhost: the data partition is encrypted; choose its passphrase: "
	for {
		p, err := ask(ctx, prompt)
		if err != nil {
			return "", err
		}
		if len(p) < minPassphrase {
			prompt = fmt.Sprintf("thinhost: at least %d characters, please; choose the data partition's passphrase: ", minPassphrase)
			continue
		}
		again, err := ask(ctx, "thinhost: the same passphrase again: ")
		if err != nil {
			return "", err
		}
		if again == p {
			return p, nil
		}
		prompt = "thinhost: the two differed; choose the data partition's passphrase: "
	}
}

// cryptRun runs cryptsetup from the system image with the passphrase on
// its standard input (never on its command line or in a file).
func cryptRun(ctx context.Context, passphrase string, args ...string) ([]byte, error) {
	cmd := sysimage.Command(ctx, cryptsetup, args...)
	if passphrase != "" {
		cmd.Stdin = strings.NewReader(passphrase)
	}
	return cmd.CombinedOutput()
}

// formatLUKS makes LUKS2 on the empty partition dev, labelled
// luksLabelNew until a filesystem is inside, and opens it. The key
// derivation is Argon2id with cryptsetup's time target, its memory capped
// at 256 MiB so a small host can open it.
//
// With tpm, the first key is a recovery key, shown once (showRecoveryKey)
// instead of a passphrase asked for, and a TPM key is enrolled beside it
// (enrollTPM); the partition is usable with the recovery key alone when
// that fails, and the returned problem says why.
func formatLUKS(ctx context.Context, log *slog.Logger, dev string, ask Asker, tpm, secureBootOn bool) (tpmProblem string, err error) {
	var pass string
	if tpm {
		if pass, err = newRecoveryKey(); err == nil {
			err = showRecoveryKey(ctx, ask, pass)
		}
	} else {
		pass, err = newPassphrase(ctx, ask)
	}
	if err != nil {
		return "", err
	}
	log.Info("encrypting the empty data partition", "device", dev, "format", "LUKS2, aes-xts-plain64, argon2id")
	if out, err := cryptRun(ctx, pass, "luksFormat", "--batch-mode", "--type", "luks2", "--label", luksLabelNew,
		"--pbkdf", "argon2id", "--pbkdf-memory", "262144", "--key-file", "-", dev); err != nil {
		return "", fmt.Errorf("cryptsetup luksFormat %s: %v: %s", dev, err, strings.TrimSpace(string(out)))
	}
	if tpm {
		if err := enrollTPM(ctx, log, dev, pass, secureBootOn); err != nil {
			log.Warn("the data partition opens with its recovery key alone", "device", dev, "err", err)
			tpmProblem = err.Error()
		}
	}
	if out, err := cryptRun(ctx, pass, "open", "--type", "luks2", "--key-file", "-", dev, DataMapper); err != nil {
		return tpmProblem, fmt.Errorf("cryptsetup open %s: %v: %s", dev, err, strings.TrimSpace(string(out)))
	}
	return tpmProblem, nil
}

// openLUKS opens dev: with its TPM key when it has one (or tpm asks for
// one) and the TPM gives it back; otherwise it asks for the passphrase or
// recovery key until one opens dev (a wrong one is said and asked again,
// and nothing is ever formatted or changed here). It says what opened the
// partition, why the TPM did not, and the key typed (for enrollTPM, once
// the caller knows the container is thinhost's).
func openLUKS(ctx context.Context, log *slog.Logger, dev string, ask Asker, tpm bool) (unlock, tpmProblem, typed string, err error) {
	prompt := "thinhost: passphrase for the data partition: "
	if _, tok, _ := readTPMToken(ctx, dev); tok != nil || tpm {
		err := unlockTPM(ctx, log, dev)
		if err == nil {
			return api.UnlockTPM, "", "", nil
		}
		tpmProblem = err.Error()
		log.Warn("the TPM did not unlock the data partition", "device", dev, "err", err)
		prompt = "thinhost: the TPM did not unlock the data partition (" + err.Error() + ");\r\nthinhost: recovery key (or passphrase): "
	}
	for {
		answer, err := ask(ctx, prompt)
		if err != nil {
			return "", tpmProblem, "", err
		}
		pass := normalRecoveryKey(answer)
		out, err := cryptRun(ctx, pass, "open", "--type", "luks2", "--key-file", "-", dev, DataMapper)
		if err == nil {
			log.Info("data partition unlocked", "device", dev, "mapper", "/dev/mapper/"+DataMapper)
			unlock = api.UnlockPassphrase
			if pass != answer || tpmProblem != "" {
				unlock = api.UnlockRecovery
			}
			return unlock, tpmProblem, pass, nil
		}
		if exitCode(err) != cryptWrongPassphrase {
			return "", tpmProblem, "", fmt.Errorf("cryptsetup open %s: %v: %s", dev, err, strings.TrimSpace(string(out)))
		}
		log.Warn("data partition: wrong passphrase", "device", dev)
		prompt = "thinhost: wrong passphrase; passphrase for the data partition: "
		select {
		case <-ctx.Done():
			return "", tpmProblem, "", ctx.Err()
		case <-time.After(wrongPause):
		}
	}
}

// luksLabelOf reads the LUKS2 header's label of dev.
func luksLabelOf(ctx context.Context, dev string) (string, error) {
	out, err := sysimage.Command(ctx, cryptsetup, "luksDump", dev).Output()
	if err != nil {
		return "", fmt.Errorf("cryptsetup luksDump %s: %w", dev, err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "Label:"); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", nil
}

// setLUKSLabel relabels dev's LUKS2 header.
func setLUKSLabel(ctx context.Context, dev, label string) error {
	if out, err := sysimage.Command(ctx, cryptsetup, "config", "--label", label, dev).CombinedOutput(); err != nil {
		return fmt.Errorf("cryptsetup config --label %s %s: %v: %s", label, dev, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// closeLUKS closes the data partition's mapping, so its key leaves the
// kernel's memory; it is a no-op when there is none.
func closeLUKS(log *slog.Logger) {
	if _, err := os.Stat("/dev/mapper/" + DataMapper); err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := sysimage.Command(ctx, cryptsetup, "close", DataMapper).CombinedOutput(); err != nil {
		log.Warn("close the encrypted data partition", "err", err, "out", strings.TrimSpace(string(out)))
	}
}

package builder

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/thinhost/thinhost/images/uki"
	"github.com/thinhost/thinhost/internal/secureboot"
)

// StubPath is systemd's EFI stub, from the systemd-boot-efi package like
// the loader: the own-keys chain builds its unified kernel image on it.
const StubPath = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"

// ownChain is what the own-keys chain (secure_boot = "own") puts on the
// ESP: systemd-boot and the unified kernel image, both signed with the
// profile's db key, and the files that enroll the key set.
type ownChain struct {
	Loader, UKI string
	Enroll      map[string][]byte
}

// buildOwnChain signs loader and assembles and signs the unified kernel
// image of kernel, the initrds (the early microcode first, when there is
// one) and cmdline on stub, writing both into dir.
func buildOwnChain(log *slog.Logger, keys *secureboot.Keys, dir, loader, stub, kernel string, initrds []string, cmdline, osRelease string) (*ownChain, error) {
	read := func(what, p string) ([]byte, error) {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read %s for the unified kernel image: %w", what, err)
		}
		return b, nil
	}
	stubBytes, err := read("systemd's EFI stub", stub)
	if err != nil {
		return nil, err
	}
	kern, err := read("the kernel", kernel)
	if err != nil {
		return nil, err
	}
	var rds [][]byte
	for _, p := range initrds {
		b, err := read("an initrd", p)
		if err != nil {
			return nil, err
		}
		rds = append(rds, b)
	}
	img, err := uki.Assemble(stubBytes, uki.Sections(osRelease, cmdline, kern, rds...))
	if err != nil {
		return nil, fmt.Errorf("assemble the unified kernel image on %s: %w", stub, err)
	}
	signed, err := keys.Sign(img)
	if err != nil {
		return nil, fmt.Errorf("unified kernel image: %w", err)
	}
	out := &ownChain{UKI: filepath.Join(dir, "linux.efi"), Loader: filepath.Join(dir, "systemd-bootx64.efi")}
	if err := os.WriteFile(out.UKI, signed, 0o644); err != nil {
		return nil, fmt.Errorf("write the unified kernel image: %w", err)
	}
	lb, err := os.ReadFile(loader)
	if err != nil {
		return nil, fmt.Errorf("read systemd-boot: %w", err)
	}
	signedLoader, err := keys.Sign(lb)
	if err != nil {
		return nil, fmt.Errorf("systemd-boot: %w", err)
	}
	if err := os.WriteFile(out.Loader, signedLoader, 0o644); err != nil {
		return nil, fmt.Errorf("write signed systemd-boot: %w", err)
	}
	if out.Enroll, err = keys.AuthFiles(); err != nil {
		return nil, err
	}
	log.Info("own Secure Boot keys", "keys", keys.Dir, "db", keys.DB.Cert.Subject.CommonName, "uki_bytes", len(signed))
	return out, nil
}

// osRelease is the unified kernel image's .osrel: systemd-boot's menu
// names the image by it.
func osRelease(title, build string) string {
	return fmt.Sprintf("ID=thinhost\nNAME=thinhost\nPRETTY_NAME=%q\nIMAGE_VERSION=%s\n", title, build)
}

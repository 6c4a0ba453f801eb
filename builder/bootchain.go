package builder

import (
	"fmt"
	"os"

	"github.com/thinhost/thinhost/internal/secureboot"
	"github.com/thinhost/thinhost/profiles"
)

// bootChain is the ESP's boot chain: systemd-boot, or (stock Secure
// Boot) Debian's signed shim and GRUB, or (own keys) systemd-boot and
// systemd's stub with the keys that sign them.
type bootChain struct {
	Bootloader, Shim, GRUB, Stub string
	Keys                         *secureboot.Keys
}

// findBootChain finds the boot chain's loaders in the locked packages
// (hp), or, without a packages block, on the build machine.
func findBootChain(prof *profiles.Profile, hp *hostPackages, bootloader string) (*bootChain, error) {
	loader := func(what, path, pkg string) (string, error) {
		if hp != nil {
			f, err := hp.Tree.Lookup(path)
			if err != nil {
				return "", fmt.Errorf("find %s in the locked packages (%s): %w", what, hp.LockPath, err)
			}
			return f.File, nil
		}
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("find %s %s: %w (on Debian: apt-get install %s, or give the profile a packages block)", what, path, err, pkg)
		}
		return path, nil
	}
	c := &bootChain{}
	var err error
	if prof.Boot.SecureBoot == profiles.SecureBootOwn {
		if c.Keys, err = secureboot.Load(prof.Boot.Keys); err != nil {
			return nil, fmt.Errorf("boot block (%s): %w", prof.Boot.DeclRange, err)
		}
		if c.Stub, err = loader("systemd's EFI stub (the unified kernel image)", StubPath, BootloaderPackage); err != nil {
			return nil, err
		}
	}
	if prof.Boot.SecureBoot == profiles.SecureBootStock {
		if c.Shim, err = loader("shim (Secure Boot)", ShimPath, ShimPackage); err != nil {
			return nil, err
		}
		if c.GRUB, err = loader("GRUB (Secure Boot)", GRUBPath, GRUBPackage); err != nil {
			return nil, err
		}
	} else if c.Bootloader = bootloader; c.Bootloader == "" {
		if c.Bootloader, err = loader("systemd-boot", DefaultBootloader, BootloaderPackage); err != nil {
			return nil, err
		}
	}
	return c, nil
}

package builder

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/thinhost/thinhost/images/layout/config"
	"github.com/thinhost/thinhost/initramfs"
	"github.com/thinhost/thinhost/internal/passwd"
	"github.com/thinhost/thinhost/profiles"
)

// tokenHash is the hex SHA-256 of a profile's API token ("" for none).
func tokenHash(token string) string {
	if token == "" {
		return ""
	}
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// HostdConfig is hostd's configuration for prof, without what the kernel
// decides (its release and the modules to load): the host, its storage,
// guests, shares and services, with the profile's secrets as hashes.
func HostdConfig(prof *profiles.Profile) (*config.Config, error) {
	hcfg := &config.Config{Hostname: prof.Host.Hostname,
		APIPort: prof.Host.APIPort, APIOnHostNetwork: prof.Host.APIOnHostNetwork, LowBattery: prof.Host.LowBattery, Lid: prof.Host.Lid, APITokenSHA256: tokenHash(prof.Host.APIToken), DataEncrypt: prof.Storage.Encrypt, DataTPM: prof.Storage.TPM, DataDiskSerial: prof.Storage.DataDiskSerial, VMs: VMSpecs(prof), FileServer: FileServerSpec(prof), Services: ServiceSpecs(prof)}
	if prof.Storage.DataDisk == profiles.DataDiskInternal {
		hcfg.DataDisk = profiles.DataDiskInternal
	}
	hcfg.BrightnessKeysToGuest = prof.Host.BrightnessKeys == "guest"
	hcfg.VolumeKeysToGuest = prof.Host.VolumeKeys == "guest"
	if prof.Wifi != nil {
		hcfg.Wifi = prof.Wifi.Config()
	}
	var err error
	if pw := prof.Host.ShellPassword; pw != "" {
		salt := sha256.Sum256([]byte("thinhost shell password\x00" + prof.Host.Hostname))
		if hcfg.ShellPasswordHash, err = passwd.Hash(pw, salt[:16]); err != nil {
			return nil, err
		}
	}
	if pw := prof.Host.PagePassword; pw != "" {
		salt := sha256.Sum256([]byte("thinhost page password\x00" + prof.Host.Hostname))
		if hcfg.PagePasswordHash, err = passwd.Hash(pw, salt[:16]); err != nil {
			return nil, err
		}
	}
	return hcfg, nil
}

// hostConfigJSON is hostd's configuration file for the initramfs
// (/etc/thinhost/hostd.json): the profile's, with the kernel's release and
// the modules hostd loads.
func hostConfigJSON(prof *profiles.Profile, kern *Kernel, mods *initramfs.ModuleSet) ([]byte, error) {
	hcfg, err := HostdConfig(prof)
	if err != nil {
		return nil, err
	}
	hcfg.KernelRelease = kern.Release
	hostdModules(hcfg, prof, mods)
	b, err := hcfg.Marshal()
	if err != nil {
		return nil, fmt.Errorf("encode hostd config: %w", err)
	}
	return b, nil
}

// FirstBoot is the payload the image leaves on its empty data partition
// for hostd's first boot (layout.FirstBootRecord): the wifi networks'
// passphrases, which the boot files never carry. nil when the profile
// has none.
func FirstBoot(prof *profiles.Profile) ([]byte, error) {
	if prof.Wifi == nil || len(prof.Wifi.Passphrases()) == 0 {
		return nil, nil
	}
	return json.Marshal(config.FirstBoot{WifiPassphrases: prof.Wifi.Passphrases()})
}

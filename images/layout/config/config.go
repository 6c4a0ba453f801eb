// Package config is the runtime configuration contract between the builder,
// which compiles a profile into it, and hostd, which reads only this: hostd
// never parses HCL. It is versioned so an image and its hostd can tell when
// they disagree.
package config

import (
	"encoding/json"
	"fmt"
	"os"
)

// Version is the configuration format this package writes and reads.
const Version = 1

// Config is hostd's configuration, stored as JSON in the initramfs.
type Config struct {
	Version  int    `json:"version"`
	Hostname string `json:"hostname"`
	// KernelRelease names the /lib/modules directory of the image.
	KernelRelease string `json:"kernel_release"`
	// Modules are loaded at boot, with their dependencies from
	// modules.dep, in parallel where the dependency graph allows.
	Modules []string `json:"modules,omitempty"`
	// BootModules are the ones the profile names itself: loaded at boot
	// whether or not a device asks for them (mac80211_hwsim makes its
	// radios, yet also drives a virtio device).
	BootModules []string `json:"boot_modules,omitempty"`
	// OptionalModules are loaded when present; failures are not reported
	// as errors (hostd's own needs such as the power button).
	OptionalModules []string `json:"optional_modules,omitempty"`
	// APIPort is the management API's TCP port; APIToken its token ("":
	// generated on first boot and kept on the data partition).
	APIPort  int    `json:"api_port,omitempty"`
	APIToken string `json:"api_token,omitempty"`
	// APIOnHostNetwork serves the API on every address; otherwise on
	// loopback only (where the guests' NAT reaches it).
	APIOnHostNetwork bool `json:"api_on_host_network,omitempty"`
	// APITokenSHA256 is the hex SHA-256 of the profile's token: the
	// builder writes this, never the token, so the boot files hold no
	// secret that opens the API.
	APITokenSHA256 string `json:"api_token_sha256,omitempty"`
	// ShellPasswordHash is the bcrypt hash of the password the debug
	// shell asks for on the panel's consoles; "": no shell there.
	ShellPasswordHash string `json:"shell_password_hash,omitempty"`
	// DataEncrypt makes an empty data partition LUKS2, with a passphrase
	// chosen on a console at first boot (storage { encrypt = true }).
	DataEncrypt bool `json:"data_encrypt,omitempty"`
	// DataTPM seals the encrypted data partition's key to the TPM (PCR
	// 7), with a recovery key shown once at the first boot.
	DataTPM bool `json:"data_tpm,omitempty"`
	// Lid is what closing the lid does: "suspend" (also ""), "poweroff"
	// or "ignore".
	Lid string `json:"lid,omitempty"`
	// BrightnessKeysToGuest leaves the brightness keys alone; otherwise
	// hostd sets the backlight with them.
	BrightnessKeysToGuest bool `json:"brightness_keys_to_guest,omitempty"`
	// VolumeKeysToGuest leaves the volume and mute keys alone; otherwise
	// hostd moves the sound card's volume with them.
	VolumeKeysToGuest bool `json:"volume_keys_to_guest,omitempty"`
	// DataDisk is "internal" for a data partition on an internal disk
	// (made by hostd on an empty one), "" for the boot disk's.
	DataDisk string `json:"data_disk,omitempty"`
	// DataDiskSerial limits DataDisk "internal" to the disk with this
	// serial number.
	DataDiskSerial string `json:"data_disk_serial,omitempty"`
	// PagePasswordHash is the Argon2id hash (internal/passwd) of the
	// password that logs in to the host's page beside the API token;
	// empty: the token alone.
	PagePasswordHash string `json:"page_password_hash,omitempty"`
	// ShutdownTimeout bounds a clean shutdown, in seconds.
	ShutdownTimeout int `json:"shutdown_timeout,omitempty"`
	// LowBattery is the charge (percent) at which a host on battery shuts
	// down cleanly; 0 never.
	LowBattery int `json:"low_battery,omitempty"`
	// VMs are the guests hostd runs, in profile order.
	VMs []VM `json:"vms,omitempty"`
	// FileServer serves the shares (nil: none).
	FileServer *FileServer `json:"file_server,omitempty"`
	// Services are programs from the system image hostd supervises.
	Services []Service `json:"services,omitempty"`
	// Wifi joins wireless networks (nil: the host leaves Wi-Fi alone).
	Wifi *Wifi `json:"wifi,omitempty"`
}

// Wifi is the host's wireless link, joined by wpa_supplicant under hostd's
// supervisor. The networks' passphrases are not here: the image's boot
// files carry no secret. The builder leaves them on the empty data
// partition (layout.Seed), hostd moves them onto the filesystem it makes
// there at the first boot, and `ctl wifi connect` adds more.
type Wifi struct {
	// Interface is the wireless interface to use; "": the first one the
	// kernel names (wlan0, wlp2s0, ...).
	Interface string `json:"interface,omitempty"`
	// Country is the ISO 3166 code of the regulatory domain ("DE"); "":
	// the world domain, which the access points' beacons may refine.
	Country  string        `json:"country,omitempty"`
	Networks []WifiNetwork `json:"networks,omitempty"`
}

// FirstBoot is what the builder leaves on the empty data partition for
// hostd's first boot (layout.FirstBootRecord): the profile's secrets that
// hostd needs in clear and the boot files must not carry.
type FirstBoot struct {
	// WifiPassphrases are the wifi networks' passphrases by name.
	WifiPassphrases map[string]string `json:"wifi_passphrases,omitempty"`
}

// WifiNetwork is one network of the profile, in the profile's order.
type WifiNetwork struct {
	// Name is the profile's label for it; its passphrase is kept under
	// this name.
	Name string `json:"name"`
	SSID string `json:"ssid"`
	// Security is "wpa2", "wpa3" or "wpa2-wpa3" (either, SAE preferred).
	Security string `json:"security"`
	Priority int    `json:"priority,omitempty"`
	// Hidden networks are probed for by name: they send no beacon with it.
	Hidden bool `json:"hidden,omitempty"`
}

// Service is a program from a Debian package, run under hostd's
// supervisor as a user of its own, with /data/services/NAME its home and
// the one place on the data partition it may write.
type Service struct {
	Name string `json:"name"`
	// Program is the path inside the system image; Args its arguments.
	Program string   `json:"program"`
	Args    []string `json:"args,omitempty"`
	// Env is NAME=VALUE entries added to its environment.
	Env []string `json:"env,omitempty"`
	// Restart is "always", "on-failure" or "never".
	Restart string `json:"restart"`
	// ShareUser runs it as the share user (reading and writing the
	// shares as Windows does) instead of a user of its own.
	ShareUser bool `json:"share_user,omitempty"`
}

// FileServer is the SMB file share, served by smbd.
type FileServer struct {
	User string `json:"user"`
	// Password is a password in clear ("" makes hostd generate one on
	// first boot and keep it on the data partition). The builder writes
	// the profile's password only as PasswordNTHash instead: the image
	// then carries no password.
	Password string `json:"password,omitempty"`
	// PasswordNTHash is the NT hash (MD4 of the UTF-16LE password, hex),
	// all Samba's password database keeps.
	PasswordNTHash string `json:"password_nt_hash,omitempty"`
	// HostNetwork serves on every address; otherwise on loopback only,
	// which the guest reaches as 10.0.2.2.
	HostNetwork bool    `json:"host_network,omitempty"`
	Shares      []Share `json:"shares"`
}

// Share is one folder under the data partition's shares/.
type Share struct {
	Name     string `json:"name"`
	Path     string `json:"path"`
	ReadOnly bool   `json:"read_only,omitempty"`
	Drive    string `json:"drive,omitempty"`
}

// VM is one guest, resolved by the builder: file paths are where the image
// carries them (under /system, or partitions by /dev/disk/by-partlabel).
type VM struct {
	Name string `json:"name"`
	// OS is "windows11", "windows10" or "linux".
	OS string `json:"os"`
	// MemoryBytes, or MemoryPercent of the host's RAM when non-zero.
	MemoryBytes   int64 `json:"memory_bytes,omitempty"`
	MemoryPercent int   `json:"memory_percent,omitempty"`
	// CPUs, or all host CPUs but CPUsAllBut when CPUsAll is set.
	CPUs       int  `json:"cpus,omitempty"`
	CPUsAll    bool `json:"cpus_all,omitempty"`
	CPUsAllBut int  `json:"cpus_all_but,omitempty"`
	// Firmware is "uefi", "uefi-secureboot" or "bios".
	Firmware   string `json:"firmware"`
	TPM        bool   `json:"tpm,omitempty"`
	DiskSize   int64  `json:"disk_size"`
	DiskFormat string `json:"disk_format"`
	// InstallMedia and Drivers are CD-ROM images attached in install mode.
	InstallMedia string `json:"install_media,omitempty"`
	Drivers      string `json:"drivers,omitempty"`
	// Kernel, Initrd and Cmdline boot a Linux guest directly.
	Kernel  string `json:"kernel,omitempty"`
	Initrd  string `json:"initrd,omitempty"`
	Cmdline string `json:"cmdline,omitempty"`
	// Display is "none", "vnc" or "sdl"; VNC is the VNC listen address.
	Display string `json:"display"`
	VNC     string `json:"vnc,omitempty"`
	// USB devices passed through, "vvvv:pppp".
	USB []string `json:"usb,omitempty"`
	// USBHotplug gives the guest the USB devices plugged in while the
	// host runs (all but the host's boot disk and hubs).
	USBHotplug bool   `json:"usb_hotplug,omitempty"`
	Network    string `json:"network"`
	// MAC is the guest NIC's address, fixed per VM so Windows keeps its
	// network profile across restarts.
	MAC       string `json:"mac,omitempty"`
	Autostart bool   `json:"autostart,omitempty"`
	// OnShutdown "poweroff" powers the host off when the guest shuts
	// itself down; "" (stay) leaves the host on.
	OnShutdown string `json:"on_shutdown,omitempty"`
	// ShutdownTimeout bounds the guest's ACPI shutdown, in seconds.
	ShutdownTimeout int `json:"shutdown_timeout"`
	// Nested exposes the CPU's virtualisation to the guest (WSL2,
	// Hyper-V, Windows Sandbox inside it); off by default.
	Nested bool `json:"nested,omitempty"`
	// NoSound leaves the guest without an audio device.
	NoSound bool `json:"no_sound,omitempty"`
	// Windows, for a Windows guest, makes its install unattended: hostd
	// writes an answer file from it onto the guest's helper drive while
	// the guest is in install mode. nil: setup asks its questions.
	Windows *Windows `json:"windows,omitempty"`
}

// Windows is what Windows setup is told instead of asking. Names are
// Windows' own: language tags ("en-US"), keyboard layouts as tags or
// "0407:00000407", time zones as `tzutil /l` lists them.
type Windows struct {
	// Language is setup's and Windows' display language: the ISO's.
	Language string `json:"language"`
	// Locale is the formats (dates, numbers, currency) and Keyboard the
	// input layouts, ";"-separated.
	Locale   string `json:"locale"`
	Keyboard string `json:"keyboard"`
	TimeZone string `json:"time_zone"`
	// Account is the local administrator account setup creates. Its
	// password is made by hostd for setup alone: Windows asks the user
	// for their own at the first desktop.
	Account string `json:"account"`
	// ComputerName is Windows' network name (at most 15 characters).
	ComputerName string `json:"computer_name"`
	// Image is the edition's image name in the ISO's install.wim
	// ("Windows 11 Pro"); ProductKey installs it (the edition's generic
	// key, which does not activate, unless the profile gives its own).
	Image      string `json:"image"`
	ProductKey string `json:"product_key"`
}

// Marshal renders c as indented JSON.
func (c *Config) Marshal() ([]byte, error) {
	c.Version = Version
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Load reads the configuration at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read hostd config: %w", err)
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("parse hostd config %s: %w", path, err)
	}
	if c.Version != Version {
		return nil, fmt.Errorf("hostd config %s has version %d, this hostd reads version %d: rebuild the image with a matching thinhost", path, c.Version, Version)
	}
	return &c, nil
}

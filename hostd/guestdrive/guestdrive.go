// Package guestdrive is the THINHOST drive a Windows guest finds: a small
// read-only CD that hostd writes at each start of the guest. It always
// carries the script that maps the host's shares and a shortcut to the
// host's page; while the guest is in install mode, also the answer file
// that makes Windows setup unattended (autounattend.xml, which setup looks
// for at the root of every CD) and the script that finishes the install at
// the first logon.
//
// Files is a pure function of the host's configuration, the guest and the
// secrets hostd holds, so `thinhost vm drive` writes what hostd would.
package guestdrive

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/thinhost/thinhost/hostd/api"
	"github.com/thinhost/thinhost/images/layout/config"
)

// NATHostAddress is the host as a guest on QEMU's user network sees it:
// QEMU takes it to the host's loopback.
const NATHostAddress = "10.0.2.2"

// Label is the drive's volume label.
const Label = "THINHOST"

// The drive's files.
const (
	AnswerFile  = "autounattend.xml"
	SetupScript = "thinhost-setup.cmd"
	MapDrives   = "map-drives.cmd"
	Readme      = "README.txt"
	PageLink    = "thinhost-page.url"
	// CtlProgram is thinhost for Windows, with the guest's token beside
	// it (api.GuestConfigFile).
	CtlProgram = "thinhost.exe"
)

// InstalledMarker is the file the setup script leaves in the guest once it
// has finished; hostd reads it through the guest agent to end install
// mode.
const InstalledMarker = `C:\ProgramData\thinhost\installed`

// Guest is one guest's side of the drive.
type Guest struct {
	VM *config.VM
	// Install is set when the guest starts in install mode: the answer
	// file and the setup script go on the drive (for a guest with a
	// Windows block).
	Install bool
	// SetupPassword is the one-time password of the account setup
	// creates (hostd makes it, and keeps it on the data partition).
	SetupPassword string
	// APIToken is the guest's own API token (api.GuestMay says what it
	// reaches); with the API on, the drive carries it for thinhost ctl
	// (api.GuestConfigFile).
	APIToken string
}

// Input is everything the drive is made from.
type Input struct {
	Config *config.Config
	Guest  Guest
	// SharePassword is the share user's password when the host knows it;
	// "" when the profile gave its own, which the host keeps only as a
	// hash: then the guest asks the user once.
	SharePassword string
	// HostAddress is the host as the guest reaches it: its address on the
	// host-only link, or ("") QEMU's NAT's, NATHostAddress.
	HostAddress string
	// Ctl is thinhost.exe (thinhost for Windows: ctl), which the drive
	// carries beside the guest's token; "" leaves it off.
	Ctl string
}

// Files returns the drive's files, name to content; nil when the guest
// gets no drive (not Windows, nothing to put on it).
func Files(in Input) (map[string]string, error) {
	vm := in.Guest.VM
	if vm == nil || !strings.HasPrefix(vm.OS, "windows") {
		return nil, nil
	}
	host := in.HostAddress
	if host == "" {
		host = NATHostAddress
	}
	if ip := net.ParseIP(host); ip == nil || ip.To4() == nil {
		return nil, fmt.Errorf("write the helper drive: host address %q is not an IPv4 address", host)
	}
	out := map[string]string{}
	cfg := in.Config
	ctl := false
	if cfg != nil && cfg.APIPort != 0 {
		out[PageLink] = PageShortcut(host, cfg.APIPort)
		if tok := in.Guest.APIToken; tok != "" {
			if !alnum(tok, 26) {
				return nil, fmt.Errorf("write the helper drive of vm %s: the API token must be 26 to 64 letters and digits", vm.Name)
			}
			b, err := json.MarshalIndent(api.GuestConfig{Addr: net.JoinHostPort(host, strconv.Itoa(cfg.APIPort)), VM: vm.Name, Token: tok}, "", "  ")
			if err != nil {
				return nil, err
			}
			out[api.GuestConfigFile] = string(b) + "\r\n"
			ctl = true
			if in.Ctl != "" {
				out[CtlProgram] = in.Ctl
			}
		}
	}
	var fs *config.FileServer
	if cfg != nil && cfg.FileServer != nil && len(cfg.FileServer.Shares) > 0 {
		fs = cfg.FileServer
		if err := fs.Check(); err != nil {
			return nil, fmt.Errorf("write the helper drive: %w", err)
		}
		out[MapDrives] = mapDrives(fs, host)
	}
	if fs != nil || ctl {
		out[Readme] = readme(cfg, host, vm.Name, ctl)
	}
	if in.Guest.Install && vm.Windows != nil {
		w := vm.Windows
		if err := w.Check(); err != nil {
			return nil, fmt.Errorf("write the answer file of vm %s: %w", vm.Name, err)
		}
		if !plainSecret(in.Guest.SetupPassword) {
			return nil, fmt.Errorf("write the answer file of vm %s: the setup password must be 12-64 letters and digits", vm.Name)
		}
		out[AnswerFile] = Unattend(vm, in.Guest.SetupPassword)
		out[SetupScript] = setupScript(vm, fs, in.SharePassword, host)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// plainSecret: a password hostd made, letters and digits only, so it is
// plain text in XML and cmd alike.
func plainSecret(s string) bool { return alnum(s, 12) }

// alnum says whether s is min to 64 ASCII letters and digits.
func alnum(s string, min int) bool {
	if len(s) < min || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// NetUse is the Windows command that maps share s as its drive letter,
// with the host at host.
func NetUse(fs *config.FileServer, s config.Share, host string) string {
	drive := "*"
	if s.Drive != "" {
		drive = s.Drive + ":"
	}
	return fmt.Sprintf(`net use %s \\%s\%s /user:%s /persistent:yes`, drive, host, s.Name, fs.User)
}

// PageShortcut is a Windows Internet Shortcut to the host's page at host.
func PageShortcut(host string, port int) string {
	return fmt.Sprintf("[InternetShortcut]\r\nURL=http://%s:%d/\r\n", host, port)
}

// hosts are the addresses a script tries, host first: the link's, then
// QEMU's NAT's (a boot without the link still maps the drives).
func hosts(host string) []string {
	if host == NATHostAddress {
		return []string{host}
	}
	return []string{host, NATHostAddress}
}

// mapDrives is a script that stores the share user's password in
// Windows' Credential Manager (asking once), maps every share to its
// letter, and copies itself into the Startup folder so the drives come
// back at each logon.
func mapDrives(fs *config.FileServer, host string) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\r\n", a...) }
	w("@echo off")
	w("rem thinhost: map the host's shares as drives. Run it once from the THINHOST")
	w("rem drive; it copies itself into your Startup folder and runs at each logon.")
	w("rem The password is the profile's share password, or the one `thinhost ctl shares` shows.")
	w("rem The drives behave as NTFS folders of your own for what programs use:")
	w("rem full rights on your files, Windows permissions (Security tab), locks,")
	w("rem leases and durable handles (Office, databases), alternate data streams")
	w("rem up to 64 KiB each, long paths where Windows allows them. Not offered:")
	w("rem Previous Versions, EFS encryption, NTFS compression, symlinks made from")
	w("rem Windows. README.txt on this drive says more.")
	for _, h := range hosts(host) {
		w(`cmdkey /list:%s | find /i "%s" >nul || cmdkey /add:%s /user:%s /pass`, h, fs.User, h, fs.User)
	}
	for _, s := range fs.Shares {
		drive := "*"
		if s.Drive != "" {
			drive = s.Drive + ":"
			w(`if exist %s\ net use %s /delete /y >nul 2>&1`, drive, drive)
		}
		var tries []string
		for _, h := range hosts(host) {
			tries = append(tries, fmt.Sprintf(`net use %s \\%s\%s /persistent:yes`, drive, h, s.Name))
		}
		w("%s", strings.Join(tries, " || "))
	}
	w(`set startup=%%APPDATA%%\Microsoft\Windows\Start Menu\Programs\Startup`)
	w(`if /i not "%%~dp0"=="%%startup%%\" copy /y "%%~f0" "%%startup%%\thinhost-map-drives.cmd" >nul`)
	return b.String()
}

func readme(cfg *config.Config, host, vm string, ctl bool) string {
	r := "This drive comes from thinhost, the host this Windows runs on.\r\n"
	if ctl {
		r += "\r\nthinhost.exe on this drive talks to the host, with this guest's own token (" + api.GuestConfigFile + "):\r\n\r\n" +
			"  thinhost ctl status            the host: memory, disks, health, the guests\r\n" +
			"  thinhost ctl shares            the shares, with their user and password\r\n" +
			"  thinhost ctl vm " + vm + " reset    back to the snapshot (your files on the shares stay)\r\n\r\n" +
			"The token reaches the host's status and shares, and stops, snapshots or resets this guest\r\n" +
			"(vm " + vm + ") alone: nothing else of the host, and no other guest.\r\n"
	}
	fs := cfg.FileServer
	if fs == nil || len(fs.Shares) == 0 {
		return r
	}
	r += "\r\nYour files live on the host, not in Windows: resetting or reinstalling Windows loses none of them.\r\n" +
		"Run map-drives.cmd once to map them:\r\n\r\n"
	for _, s := range fs.Shares {
		r += "  " + NetUse(fs, s, host) + "\r\n"
	}
	r += "\r\nWhat works as on a local NTFS drive:\r\n" +
		"  - full rights on your own files: programs run, installers and Office open them for writing;\r\n" +
		"  - Windows permissions, kept by the host (Properties > Security);\r\n" +
		"  - byte-range locks, oplocks, leases and durable handles (Office, databases; an open file\r\n" +
		"    survives a short network blip or sleep);\r\n" +
		"  - alternate data streams (the \"downloaded from the internet\" mark and other metadata),\r\n" +
		"    up to 64 KiB each: a larger one is refused with a \"file system limitation\" error;\r\n" +
		"  - names case-insensitive with their case kept; file names up to 255 bytes and paths beyond\r\n" +
		"    260 characters where Windows' long paths are enabled.\r\n" +
		"Not offered: Previous Versions, EFS encryption, NTFS compression and quotas, symbolic links\r\n" +
		"made from Windows, and SMB1 (Windows XP).\r\n"
	if cfg.APIPort != 0 {
		r += fmt.Sprintf("\r\nThe host's page (thinhost-page on this drive, http://%s:%d/) shows the host, the shares\r\n"+
			"with their password, and the guests, and resets or restarts them.\r\n", host, cfg.APIPort)
	}
	return r
}

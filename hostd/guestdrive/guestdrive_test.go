package guestdrive

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thinhost/thinhost/hostd/api"
	"github.com/thinhost/thinhost/images/layout/config"
)

func windowsVM() *config.VM {
	return &config.VM{Name: "windows", OS: "windows11", Drivers: "/dev/disk/by-partlabel/thinhost-windows-drivers",
		Windows: &config.Windows{Language: "en-US", Locale: "de-DE", Keyboard: "de-DE;en-US", TimeZone: "W. Europe Standard Time",
			Account: "anna", ComputerName: "WINDOWS", Image: "Windows 11 Pro", ProductKey: "VK7JG-NPHTM-C97JM-9MPGT-3V66T"}}
}

func hostConfig() *config.Config {
	return &config.Config{APIPort: 8484, FileServer: &config.FileServer{User: "thin", Shares: []config.Share{
		{Name: "files", Path: "files", Drive: "Z"}, {Name: "media", Path: "media", ReadOnly: true}}}}
}

const setupPW = "Xb7mQ2pL9sKd4RtW"

func TestFilesWithoutInstall(t *testing.T) {
	if f, err := Files(Input{Config: hostConfig(), Guest: Guest{VM: &config.VM{Name: "l", OS: "linux"}}}); f != nil || err != nil {
		t.Errorf("a Linux guest gets a drive: %v %v", f, err)
	}
	if f, err := Files(Input{Guest: Guest{VM: windowsVM()}}); f != nil || err != nil {
		t.Errorf("nothing to carry, yet a drive: %v %v", f, err)
	}
	got, err := Files(Input{Config: &config.Config{APIPort: 8484}, Guest: Guest{VM: windowsVM()}})
	if err != nil || len(got) != 1 || got[PageLink] != "[InternetShortcut]\r\nURL=http://10.0.2.2:8484/\r\n" {
		t.Errorf("page shortcut alone: %q %v", got, err)
	}
	got, err = Files(Input{Config: hostConfig(), Guest: Guest{VM: windowsVM()}, SharePassword: "0123456789abcdef01"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got[AnswerFile]; ok {
		t.Error("an answer file outside install mode: a reboot would wipe the disk")
	}
	script := got[MapDrives]
	// On the host-only link, the link's address first and the NAT's as
	// the fallback.
	linked, err := Files(Input{Config: hostConfig(), Guest: Guest{VM: windowsVM()}, HostAddress: "10.0.3.1"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `net use Z: \\10.0.3.1\files /persistent:yes || net use Z: \\10.0.2.2\files /persistent:yes`; !strings.Contains(linked[MapDrives], want) {
		t.Errorf("map-drives.cmd on the link lacks %q:\n%s", want, linked[MapDrives])
	}
	if !strings.Contains(linked[PageLink], "http://10.0.3.1:8484/") {
		t.Errorf("page link on the link: %q", linked[PageLink])
	}
	if _, err := Files(Input{Config: hostConfig(), Guest: Guest{VM: windowsVM()}, HostAddress: "10.0.3.1 & x"}); err == nil {
		t.Error("a host address that is not an address accepted")
	}
	for _, want := range []string{`net use Z: \\10.0.2.2\files /persistent:yes`, `net use * \\10.0.2.2\media /persistent:yes`, `cmdkey /add:10.0.2.2 /user:thin /pass` + "\r\n"} {
		if !strings.Contains(script, want) {
			t.Errorf("map-drives.cmd lacks %q:\n%s", want, script)
		}
	}
	if strings.Contains(script, "0123456789abcdef01") {
		t.Error("map-drives.cmd, on the drive at every start, carries the share password")
	}
	if !strings.Contains(script, `%APPDATA%\Microsoft\Windows\Start Menu\Programs\Startup`) {
		t.Errorf("map-drives.cmd does not put itself in the Startup folder:\n%s", script)
	}
	if !strings.Contains(got[Readme], "Previous Versions") || !strings.Contains(got[Readme], "http://10.0.2.2:8484/") {
		t.Errorf("README: %q", got[Readme])
	}
}

// unattend is the answer file's structure as far as the tests read it.
type unattend struct {
	XMLName  xml.Name `xml:"urn:schemas-microsoft-com:unattend unattend"`
	Settings []struct {
		Pass       string `xml:"pass,attr"`
		Components []struct {
			Name        string   `xml:"name,attr"`
			DriverPaths []string `xml:"DriverPaths>PathAndCredentials>Path"`
			Accounts    []struct {
				Name     string `xml:"Name"`
				Group    string `xml:"Group"`
				Password string `xml:"Password>Value"`
			} `xml:"UserAccounts>LocalAccounts>LocalAccount"`
			AutoLogonCount int      `xml:"AutoLogon>LogonCount"`
			FirstLogon     []string `xml:"FirstLogonCommands>SynchronousCommand>CommandLine"`
			TimeZone       string   `xml:"TimeZone"`
			ComputerName   string   `xml:"ComputerName"`
			InputLocale    string   `xml:"InputLocale"`
			Image          string   `xml:"ImageInstall>OSImage>InstallFrom>MetaData>Value"`
			ProductKey     string   `xml:"UserData>ProductKey>Key"`
			WipeDisk       string   `xml:"DiskConfiguration>Disk>WillWipeDisk"`
		} `xml:"component"`
	} `xml:"settings"`
}

func parseUnattend(t *testing.T, s string) unattend {
	t.Helper()
	var u unattend
	if err := xml.Unmarshal([]byte(s), &u); err != nil {
		t.Fatalf("the answer file does not parse: %v\n%s", err, s)
	}
	return u
}

func TestInstallDrive(t *testing.T) {
	got, err := Files(Input{Config: hostConfig(), Guest: Guest{VM: windowsVM(), Install: true, SetupPassword: setupPW}, SharePassword: "0123456789abcdef01"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{AnswerFile, SetupScript, MapDrives, Readme, PageLink} {
		if got[name] == "" {
			t.Errorf("no %s on the install drive", name)
		}
	}
	u := parseUnattend(t, got[AnswerFile])
	seen := map[string]bool{}
	for _, s := range u.Settings {
		for _, c := range s.Components {
			key := s.Pass + "/" + c.Name
			seen[key] = true
			switch key {
			case "windowsPE/Microsoft-Windows-PnpCustomizationsWinPE", "offlineServicing/Microsoft-Windows-PnpCustomizationsNonWinPE":
				for _, want := range []string{`D:\viostor\w11\amd64`, `E:\NetKVM\w11\amd64`, `F:\vioserial\w11\amd64`} {
					if !contains(c.DriverPaths, want) {
						t.Errorf("%s: no driver path %s in %q", key, want, c.DriverPaths)
					}
				}
			case "windowsPE/Microsoft-Windows-Setup":
				if c.Image != "Windows 11 Pro" || c.ProductKey != "VK7JG-NPHTM-C97JM-9MPGT-3V66T" || c.WipeDisk != "true" {
					t.Errorf("setup: image %q key %q wipe %q", c.Image, c.ProductKey, c.WipeDisk)
				}
			case "specialize/Microsoft-Windows-Shell-Setup":
				if c.TimeZone != "W. Europe Standard Time" || c.ComputerName != "WINDOWS" {
					t.Errorf("specialize: %q %q", c.TimeZone, c.ComputerName)
				}
			case "oobeSystem/Microsoft-Windows-Shell-Setup":
				if len(c.Accounts) != 1 || c.Accounts[0].Name != "anna" || c.Accounts[0].Group != "Administrators" || c.Accounts[0].Password != setupPW {
					t.Errorf("accounts: %+v", c.Accounts)
				}
				if c.AutoLogonCount != 1 {
					t.Errorf("automatic logons: %d, want 1", c.AutoLogonCount)
				}
				if len(c.FirstLogon) != 1 || !strings.Contains(c.FirstLogon[0], `%d:\thinhost-setup.cmd`) {
					t.Errorf("first logon: %q", c.FirstLogon)
				}
			case "oobeSystem/Microsoft-Windows-International-Core":
				if c.InputLocale != "de-DE;en-US" {
					t.Errorf("keyboard %q", c.InputLocale)
				}
			}
		}
	}
	for _, want := range []string{"windowsPE/Microsoft-Windows-International-Core-WinPE", "windowsPE/Microsoft-Windows-PnpCustomizationsWinPE",
		"windowsPE/Microsoft-Windows-Setup", "offlineServicing/Microsoft-Windows-PnpCustomizationsNonWinPE",
		"specialize/Microsoft-Windows-Deployment", "oobeSystem/Microsoft-Windows-Shell-Setup"} {
		if !seen[want] {
			t.Errorf("the answer file has no %s", want)
		}
	}
	if strings.Contains(got[AnswerFile], "0123456789abcdef01") {
		t.Error("the share password is in the answer file")
	}
	setup := got[SetupScript]
	for _, want := range []string{
		`if exist %%d:\virtio-win-guest-tools.exe set tools=%%d:\virtio-win-guest-tools.exe`,
		`cmdkey /add:10.0.2.2 /user:thin /pass:0123456789abcdef01`,
		`call "%~dp0map-drives.cmd"`,
		`if /i "%~dp0"=="%state%\" goto run`,
		`copy /y "%~f0" "%state%\setup.cmd" >nul`,
		`>>"%log%" echo guest tools: exit %ERRORLEVEL%`,
		`del /f /q "%WINDIR%\Panther\unattend.xml"`,
		`>"C:\ProgramData\thinhost\installed"`,
		"net user anna *\r\n",
	} {
		if !strings.Contains(setup, want) {
			t.Errorf("the setup script lacks %q:\n%s", want, setup)
		}
	}
	if strings.Index(setup, "installed") > strings.Index(setup, "net user anna *") {
		t.Error("the install is marked done only after the password prompt, which may wait forever")
	}

	// Without the drivers CD: no driver paths; with the profile's own
	// share password (the host has its hash only): no cmdkey with it.
	vm := windowsVM()
	vm.Drivers = ""
	vm.OS = "windows10"
	got, err = Files(Input{Config: hostConfig(), Guest: Guest{VM: vm, Install: true, SetupPassword: setupPW}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got[AnswerFile], "DriverPaths") {
		t.Error("driver paths without a drivers CD")
	}
	if strings.Contains(got[SetupScript], "/pass:") {
		t.Error("cmdkey with a password the host does not know")
	}
}

func TestAnswerFileXmllint(t *testing.T) {
	if _, err := exec.LookPath("xmllint"); err != nil {
		t.Skip("no xmllint (apt-get install libxml2-utils; examples/setup-debian.sh does)")
	}
	got, err := Files(Input{Config: hostConfig(), Guest: Guest{VM: windowsVM(), Install: true, SetupPassword: setupPW}})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), AnswerFile)
	if err := os.WriteFile(p, []byte(got[AnswerFile]), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("xmllint", "--noout", p).CombinedOutput(); err != nil {
		t.Fatalf("xmllint: %v\n%s", err, out)
	}
}

func TestHostileValues(t *testing.T) {
	for _, mut := range []func(w *config.Windows){
		func(w *config.Windows) { w.Account = "anna & del C:" },
		func(w *config.Windows) { w.Account = "Administrator" },
		func(w *config.Windows) { w.Account = "a%PATH%" },
		func(w *config.Windows) { w.TimeZone = "UTC</TimeZone><x>" },
		func(w *config.Windows) { w.Language = "en-US\r\n" },
		func(w *config.Windows) { w.Keyboard = "de-DE;;" },
		func(w *config.Windows) { w.ComputerName = "12345" },
		func(w *config.Windows) { w.ComputerName = "a-very-long-computer-name" },
		func(w *config.Windows) { w.Image = "Windows 11 Pro]]>" },
		func(w *config.Windows) { w.ProductKey = "abc" },
	} {
		vm := windowsVM()
		mut(vm.Windows)
		if _, err := Files(Input{Guest: Guest{VM: vm, Install: true, SetupPassword: setupPW}}); err == nil {
			t.Errorf("%+v accepted", *vm.Windows)
		}
	}
	for _, pw := range []string{"", "short", "with space and more", strings.Repeat("a", 65), "abc&defghijkl"} {
		if _, err := Files(Input{Guest: Guest{VM: windowsVM(), Install: true, SetupPassword: pw}}); err == nil {
			t.Errorf("setup password %q accepted", pw)
		}
	}
}

// FuzzAnswerFile: whatever a hand-edited configuration holds, the drive
// is refused or its answer file is well-formed XML whose values are the
// configuration's, and its scripts carry no cmd syntax from it.
func FuzzAnswerFile(f *testing.F) {
	f.Add("en-US", "de-DE", "de-DE;en-US", "W. Europe Standard Time", "anna", "WINDOWS", "Windows 11 Pro", "", setupPW, "files")
	f.Add("en-US", "en-US", "0409:00000409", "UTC", "a.b-c_d", "PC-1", "Windows 10 Home (N)", "VK7JG-NPHTM-C97JM-9MPGT-3V66T", setupPW, "x")
	f.Fuzz(func(t *testing.T, lang, locale, kb, tz, account, computer, image, key, pw, share string) {
		vm := windowsVM()
		vm.Windows = &config.Windows{Language: lang, Locale: locale, Keyboard: kb, TimeZone: tz, Account: account,
			ComputerName: computer, Image: image, ProductKey: key}
		cfg := hostConfig()
		cfg.FileServer.Shares[0].Name = share
		got, err := Files(Input{Config: cfg, Guest: Guest{VM: vm, Install: true, SetupPassword: pw}, SharePassword: pw})
		if err != nil {
			return
		}
		u := parseUnattend(t, got[AnswerFile])
		for _, s := range u.Settings {
			for _, c := range s.Components {
				if s.Pass == "specialize" && c.Name == "Microsoft-Windows-Shell-Setup" && (c.TimeZone != tz || c.ComputerName != computer) {
					t.Errorf("specialize reads %q %q, the configuration says %q %q", c.TimeZone, c.ComputerName, tz, computer)
				}
			}
		}
		for name, content := range got {
			if !strings.HasSuffix(name, ".cmd") {
				continue
			}
			for _, v := range []string{account, share, pw} {
				if strings.ContainsAny(v, "&|<>^%!\"\r\n()") {
					t.Errorf("%s carries %q, cmd syntax from the configuration", name, v)
				}
			}
			if strings.Contains(content, "\n\n") {
				t.Errorf("%s has a bare line feed", name)
			}
		}
	})
}

func TestWriteISO(t *testing.T) {
	got, err := Files(Input{Config: hostConfig(), Guest: Guest{VM: windowsVM(), Install: true, SetupPassword: setupPW}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	iso := filepath.Join(dir, "helper.iso")
	if err := WriteISO(iso, got); err != nil {
		t.Fatal(err)
	}
	if err := WriteISO(filepath.Join(dir, "bad.iso"), map[string]string{"../x": "y"}); err == nil {
		t.Error("a name that climbs out accepted")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("left behind in %s: %v", dir, entries)
	}
	if fi, err := os.Stat(iso); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the CD, which holds passwords, is %v %v", fi.Mode(), err)
	}
	// xorriso reads it back by its Joliet names, as Windows does (this
	// machine's kernel has no iso9660 driver to mount it).
	if _, err := exec.LookPath("osirrox"); err != nil {
		t.Skip("no osirrox (apt-get install xorriso; examples/setup-debian.sh does)")
	}
	out := filepath.Join(t.TempDir(), "x")
	if b, err := exec.Command("osirrox", "-indev", iso, "-rockridge", "off", "-joliet", "on", "-extract", "/", out).CombinedOutput(); err != nil {
		t.Fatalf("osirrox: %v\n%s", err, b)
	}
	for name, content := range got {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || string(b) != content {
			t.Errorf("%s on the CD: %v (%d bytes, want %d)", name, err, len(b), len(content))
		}
	}
	if b, err := exec.Command("xorriso", "-indev", iso, "-pvd_info").CombinedOutput(); err != nil || !strings.Contains(string(b), "Volume Id    : "+Label) {
		t.Errorf("the CD's label: %v\n%s", err, b)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestNetUse(t *testing.T) {
	fs := &config.FileServer{User: "thin"}
	if got := NetUse(fs, config.Share{Name: "files", Drive: "Z"}, NATHostAddress); got != `net use Z: \\10.0.2.2\files /user:thin /persistent:yes` {
		t.Errorf("NetUse = %s", got)
	}
	if got := NetUse(fs, config.Share{Name: "media"}, "10.0.3.1"); got != `net use * \\10.0.3.1\media /user:thin /persistent:yes` {
		t.Errorf("NetUse = %s", got)
	}
}

// TestCtlConfig: with the API on, the drive carries the guest's own
// token and the API's address for thinhost ctl, and the README says what
// the token reaches; a token hostd did not make is refused.
func TestCtlConfig(t *testing.T) {
	const tok = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	const exe = "MZ\x90\x00 thinhost for Windows"
	got, err := Files(Input{Config: &config.Config{APIPort: 8484}, Guest: Guest{VM: windowsVM(), APIToken: tok}, HostAddress: "10.0.3.1", Ctl: exe})
	if err != nil {
		t.Fatal(err)
	}
	if got[CtlProgram] != exe {
		t.Errorf("the drive lacks %s", CtlProgram)
	}
	var c api.GuestConfig
	if err := json.Unmarshal([]byte(got[api.GuestConfigFile]), &c); err != nil {
		t.Fatalf("%s: %v\n%s", api.GuestConfigFile, err, got[api.GuestConfigFile])
	}
	if c != (api.GuestConfig{Addr: "10.0.3.1:8484", VM: "windows", Token: tok}) {
		t.Errorf("%s = %+v", api.GuestConfigFile, c)
	}
	if r := got[Readme]; !strings.Contains(r, "thinhost ctl vm windows reset") || !strings.Contains(r, "no other guest") {
		t.Errorf("the README does not explain thinhost ctl:\n%s", r)
	}
	// Without the API, no token.
	noAPI := hostConfig()
	noAPI.APIPort = 0
	if got, _ := Files(Input{Config: noAPI, Guest: Guest{VM: windowsVM(), APIToken: tok}, Ctl: exe}); got[api.GuestConfigFile] != "" || got[CtlProgram] != "" {
		t.Errorf("the API is off, yet the drive carries a token or thinhost.exe")
	}
	for _, bad := range []string{"short", tok + `"x`, strings.Repeat("a", 65)} {
		if _, err := Files(Input{Config: &config.Config{APIPort: 8484}, Guest: Guest{VM: windowsVM(), APIToken: bad}}); err == nil {
			t.Errorf("token %q accepted", bad)
		}
	}
}

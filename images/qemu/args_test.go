package qemu

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thinhost/thinhost/internal/testenv"
)

func TestArgsGolden(t *testing.T) {
	base := Spec{
		Image:     "/images/test.img",
		Firmware:  Firmware{Code: "/usr/share/OVMF/OVMF_CODE_4M.fd", Vars: "/run/x/OVMF_VARS.fd"},
		Accel:     AccelTCG,
		MemoryMiB: 1024,
		CPUs:      2,
		QMPSocket: "/run/x/qmp.sock",
	}
	cases := map[string]func(*Spec){
		"tcg-check": func(s *Spec) { s.NoReboot = true },
		"kvm-interactive-forwards": func(s *Spec) {
			s.Accel = AccelKVM
			s.Interactive = true
			s.Forwards = []Forward{{8080, 80}, {44445, 445}}
			s.MemoryMiB = 4096
			s.CPUs = 4
		},
		"usb-stick": func(s *Spec) {
			s.USB = true
			s.Image = "/dev/sdb"
		},
		"laptop": func(s *Spec) {
			s.Machine = MachineLaptop
			s.InternalDisk = "/run/x/nvme.raw"
			s.Forwards = []Forward{{8484, 8484}}
			s.NoReboot = true
		},
		"secure-boot": func(s *Spec) {
			s.Firmware = Firmware{Code: "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd", Vars: "/run/x/OVMF_VARS.fd", SecureBoot: true}
		},
		"second-disk": func(s *Spec) {
			s.Disks = []string{"/images/other,stick.img"}
			s.Snapshot = true
		},
		"laptop-second-stick": func(s *Spec) {
			s.Machine = MachineLaptop
			s.Disks = []string{"/dev/sdc"}
		},
		"snapshot-comma-path": func(s *Spec) {
			s.Snapshot = true
			s.Image = "/images/a,b.img"
		},
	}
	for name, mod := range cases {
		t.Run(name, func(t *testing.T) {
			s := base
			mod(&s)
			args, err := Args(s)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(args, "\n") + "\n"
			testenv.Golden(t, filepath.Join("testdata", name+".golden"), got)
		})
	}
}

func TestArgsErrors(t *testing.T) {
	ok := Spec{Image: "i", Firmware: Firmware{Code: "c", Vars: "v"}, Accel: AccelTCG, MemoryMiB: 512, CPUs: 1}
	for name, c := range map[string]struct {
		mod  func(*Spec)
		want string
	}{
		"no image":     {func(s *Spec) { s.Image = "" }, "image and firmware"},
		"tiny memory":  {func(s *Spec) { s.MemoryMiB = 64 }, "128 MiB"},
		"no cpus":      {func(s *Spec) { s.CPUs = 0 }, "at least 1"},
		"bad accel":    {func(s *Spec) { s.Accel = "hvf" }, "unknown accelerator"},
		"dup forwards": {func(s *Spec) { s.Forwards = []Forward{{80, 80}, {80, 81}} }, "forwarded twice"},
		"bad machine":  {func(s *Spec) { s.Machine = "pc" }, `unknown machine "pc"`},
		"disk, virtio": {func(s *Spec) { s.InternalDisk = "d" }, "internal disk goes with the laptop machine"},
	} {
		s := ok
		c.mod(&s)
		if _, err := Args(s); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
	}
}

func TestParseForward(t *testing.T) {
	f, err := ParseForward("44445:445")
	if err != nil || f != (Forward{44445, 445}) {
		t.Errorf("ParseForward = %v, %v", f, err)
	}
	for _, bad := range []string{"80", "a:b", "0:80", "80:70000", ":80"} {
		if _, err := ParseForward(bad); err == nil {
			t.Errorf("ParseForward(%q) accepted", bad)
		}
	}
}

func TestFindFirmware(t *testing.T) {
	dir := t.TempDir()
	code, vars := filepath.Join(dir, "CODE.fd"), filepath.Join(dir, "VARS.fd")
	os.WriteFile(code, []byte("c"), 0o644)
	os.WriteFile(vars, []byte("v"), 0o644)
	paths := []Firmware{
		{Code: filepath.Join(dir, "missing.fd"), Vars: vars},
		{Code: code, Vars: vars},
	}
	fw, err := findFirmware(paths)
	if err != nil || fw.Code != code {
		t.Errorf("findFirmware = %+v, %v; want the first complete pair", fw, err)
	}
	_, err = findFirmware(paths[:1])
	if err == nil || !strings.Contains(err.Error(), "apt-get install ovmf") || !strings.Contains(err.Error(), "missing.fd") {
		t.Errorf("error should name what was tried and how to install: %v", err)
	}
}

func TestSplitOpts(t *testing.T) {
	for in, want := range map[string]string{
		"if=none,file=/a,,b.img,snapshot=on": "if=none file=/a,b.img snapshot=on",
		"w,,id=x,process=p":                  "=w,id=x process=p",
		"id=x,process=p":                     "id=x process=p",
		"virtio-blk-pci,drive=d,readonly":    "=virtio-blk-pci drive=d readonly=on",
		"":                                   "=",
	} {
		keys, values := SplitOpts(in)
		var got []string
		for i := range keys {
			got = append(got, keys[i]+"="+values[i])
		}
		if strings.Join(got, " ") != want {
			t.Errorf("SplitOpts(%q) = %q, want %q", in, strings.Join(got, " "), want)
		}
	}
}

// FuzzArgs: whatever the image and firmware paths hold, every option
// list in QEMU's argv has the keys thinhost wrote, and each path comes
// back whole as its value: no path can add an option (snapshot=off,
// readonly=off) or split an argument.
func FuzzArgs(f *testing.F) {
	f.Add("/images/test.img", "/run/x/OVMF_VARS.fd", "/dev/sdb")
	f.Add("/a,snapshot=off,b", "v,,readonly=off", "x,file=/etc/shadow")
	f.Fuzz(func(t *testing.T, image, vars, disk string) {
		if image == "" || vars == "" || disk == "" {
			return
		}
		spec := Spec{Image: image, Firmware: Firmware{Code: "/c.fd", Vars: vars}, Accel: AccelTCG, MemoryMiB: 512, CPUs: 1,
			Disks: []string{disk}, Snapshot: true, QMPSocket: "/run/q.sock"}
		benign := spec
		benign.Image, benign.Firmware.Vars, benign.Disks = "/i", "/v", []string{"/d"}
		got, err := Args(spec)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := Args(benign)
		if len(got) != len(want) {
			t.Fatalf("%d arguments, %d for plain paths", len(got), len(want))
		}
		for i := range got {
			gk, gv := SplitOpts(got[i])
			wk, _ := SplitOpts(want[i])
			if strings.Join(gk, ",") != strings.Join(wk, ",") {
				t.Fatalf("argument %d is %q: keys %q, want %q", i, got[i], gk, wk)
			}
			for j, k := range gk {
				if k == "file" && gv[j] != image && gv[j] != vars && gv[j] != disk && gv[j] != "/c.fd" {
					t.Fatalf("argument %q: file is %q", got[i], gv[j])
				}
			}
		}
	})
}

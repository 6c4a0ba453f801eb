// Package vm runs the host's guests: the QEMU command line as a pure
// function of the guest's spec and the host's facts (Args), and the
// per-guest lifecycle in hostd (Manager): state on the data partition,
// swtpm, QEMU under the supervisor, QMP control, install mode and instant
// reset through a qcow2 overlay.
package vm

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/images/layout/config"
)

// Host is what the launcher needs to know about the machine it runs on.
type Host struct {
	// KVM reports whether /dev/kvm works; without it QEMU runs with TCG.
	KVM bool
	// CPUVendor is the CPU's vendor id ("GenuineIntel", "AuthenticAMD").
	CPUVendor string
	// MemBytes is the host's RAM; CPUs its online CPUs.
	MemBytes int64
	CPUs     int
	// Root is where the system image is mounted ("/system"); QEMU's
	// firmware and OVMF are found under it.
	Root string
	// Panel is the laptop's screen mode ("1920x1200"; "" unknown): a
	// Windows guest's display starts at it.
	Panel string
	// Sound is the ALSA device guests play through ("plughw:0"; "": no
	// sound card, or no ALSA configuration in the image).
	Sound string
	// Vhost says whether the kernel moves the host-only link's packets
	// (/dev/vhost-net).
	Vhost bool
}

// CPUVendor reads this machine's CPU vendor id from /proc/cpuinfo
// ("GenuineIntel", "AuthenticAMD"; "" when unknown).
func CPUVendor() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "vendor_id" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// HostReserve is the RAM a share such as "75%" always leaves to the host.
const HostReserve = 512 << 20

// cdDevices are the qdev ids of the install and driver CD drives.
var cdDevices = [2]string{InstallCD, DriversCD}

// InstallCD, DriversCD and HelperCD are the qdev ids of the CD drives: the
// install media, the drivers and the THINHOST drive.
const (
	InstallCD = "cdrom-install"
	DriversCD = "cdrom-drivers"
	HelperCD  = "cdrom-helper"
)

// Paths are a guest's files. State lives on the data partition, sockets
// under /run.
type Paths struct {
	// Dir holds the guest's persistent state: disk, overlay, UEFI
	// variables, TPM state.
	Dir string
	// RunDir holds its sockets.
	RunDir string
}

// GuestPaths are the files of the guest name, under stateDir (on the data
// partition: layout.VMStateDir on the host) and runDir (sockets:
// layout.VMRunDir).
func GuestPaths(stateDir, runDir, name string) Paths {
	return Paths{Dir: filepath.Join(stateDir, name), RunDir: filepath.Join(runDir, name)}
}

// SwtpmBinary is swtpm in the system image.
const SwtpmBinary = "/usr/bin/swtpm"

// SwtpmArgs is swtpm's argv (after the program) for a guest's TPM: its
// state in the guest's directory, its control socket where QEMU's
// tpm-emulator connects.
func SwtpmArgs(p Paths) []string {
	return []string{"socket", "--tpm2", "--tpmstate", "dir=" + p.TPMState(), "--ctrl", "type=unixio,path=" + p.TPMSocket(), "--log", "level=1"}
}

// Disk is the guest's base disk (the only one until a snapshot).
func (p Paths) Disk(format string) string { return filepath.Join(p.Dir, "disk."+format) }

// Overlay holds the writes made since the snapshot.
func (p Paths) Overlay() string { return filepath.Join(p.Dir, "overlay.qcow2") }

// Vars is the guest's copy of the UEFI variable store.
func (p Paths) Vars() string { return filepath.Join(p.Dir, "OVMF_VARS.fd") }

// TPMState is swtpm's state directory.
func (p Paths) TPMState() string { return filepath.Join(p.Dir, "tpm") }

// Running marks a guest whose QEMU was started and has not stopped
// cleanly since: found at a snapshot, its disk may hold half-written
// data (a guest killed after its shutdown timeout, a host that lost
// power).
func (p Paths) Running() string { return filepath.Join(p.Dir, "running") }

// SnapshotVars and SnapshotTPM are the UEFI variables and TPM state as
// they were at the last snapshot: reset puts them back with the disk.
func (p Paths) SnapshotVars() string { return filepath.Join(p.Dir, "snapshot", "OVMF_VARS.fd") }

// SnapshotTPM is the TPM state at the last snapshot.
func (p Paths) SnapshotTPM() string { return filepath.Join(p.Dir, "snapshot", "tpm") }

// DiskBusFile records the bus the disk was made for (State.DiskBus).
func (p Paths) DiskBusFile() string { return filepath.Join(p.Dir, "disk-bus") }

// InstallMarker exists while the guest is in install mode.
func (p Paths) InstallMarker() string { return filepath.Join(p.Dir, "install-mode") }

// APIToken holds the guest's own API token, which its THINHOST drive
// carries (Manager.apiToken).
func (p Paths) APIToken() string { return filepath.Join(p.Dir, "api-token") }

// VNCSecret holds the guest's VNC password (made by hostd at the first
// start of a display beyond loopback), which QEMU reads from the file.
func (p Paths) VNCSecret() string { return filepath.Join(p.Dir, "vnc-password") }

// VNCPassworded says whether a VNC display on addr (IP:PORT) takes a
// password: one beyond loopback does (an address that does not parse, too).
func VNCPassworded(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return true
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

// QMP and TPMSocket are the guest's control sockets.
func (p Paths) QMP() string { return filepath.Join(p.RunDir, "qmp.sock") }

// QGA is the socket of the guest agent's channel (a virtio serial port
// named org.qemu.guest_agent.0 in the guest).
func (p Paths) QGA() string { return filepath.Join(p.RunDir, "qga.sock") }

// HelperISO is the THINHOST CD hostd writes for a Windows guest at each
// start (package guestdrive): beside the guest's disk, not in /run, whose
// memory thinhost.exe on it (11 MB) would take for as long as the guest
// runs.
func (p Paths) HelperISO() string { return filepath.Join(p.Dir, "helper.iso") }

// SetupPassword holds the one-time password of the account an unattended
// Windows install creates (made by hostd, 0600).
func (p Paths) SetupPassword() string { return filepath.Join(p.Dir, "setup-password") }

// TPMSocket is swtpm's control socket, which QEMU connects to.
func (p Paths) TPMSocket() string { return filepath.Join(p.RunDir, "swtpm.sock") }

// State is what changes between starts of the same guest.
type State struct {
	// Install attaches the install media and drivers and boots from them
	// first.
	Install bool
	// Overlay is set after a snapshot: the guest writes to the overlay.
	Overlay bool
	// HelperISO, when set, is the THINHOST CD: the script that maps the
	// host's shares and, in install mode, the answer file.
	HelperISO string
	// Tap, when set, is the guest's tap device on the host-only link: a
	// second NIC, where it reaches the host's shares and API at
	// layout.GuestLinkHost.
	Tap string
	// DiskBus is the bus the guest's disk was made for: "virtio" (also
	// "") or "sata", fixed at the disk's creation — Windows installed on
	// one does not boot from the other.
	DiskBus string
}

// DiskBusFor is the bus a new disk of spec gets: virtio, which needs a
// driver in Windows, when the virtio drivers come with it (the answer file
// or setup's "Load driver" loads viostor); SATA otherwise, which Windows
// setup reads without one.
func DiskBusFor(spec *config.VM) string {
	if strings.HasPrefix(spec.OS, "windows") && spec.Drivers == "" {
		return "sata"
	}
	return "virtio"
}

// The system image's programs and data, relative to Host.Root: the
// contract in images/layout, which the builder fills.
const (
	OVMFCode       = layout.OVMFCode
	OVMFVars       = layout.OVMFVars
	OVMFSecureCode = layout.OVMFSecureCode
	OVMFMSVars     = layout.OVMFMSVars
	OVMFMSVars2023 = layout.OVMFMSVars2023
	QEMUDataDir    = layout.QEMUDataDir
	QEMUBinary     = layout.QEMUBinary
	QEMUModuleDir  = layout.QEMUModuleDir
	EGLVendorDir   = layout.EGLVendorDir
	DRIDir         = layout.DRIDir
	GBMBackendDir  = layout.GBMBackendDir
)

// VarsTemplate is the UEFI variable store a new guest starts from, under
// root: Secure Boot guests get Microsoft's 2023 certificates beside the
// 2011 ones (the builder's OVMFMSVars2023; ovmf's own store where an
// image has none).
func VarsTemplate(spec *config.VM, root string) string {
	if spec.Firmware != "uefi-secureboot" {
		return OVMFVars
	}
	if _, err := os.Stat(root + OVMFMSVars2023); err == nil {
		return OVMFMSVars2023
	}
	return OVMFMSVars
}

// Resources are the memory and CPUs a guest gets on a host, with notes on
// any adjustment made.
type Resources struct {
	MemMiB int64
	CPUs   int
	Notes  []string
}

// Size works out the guest's memory and CPUs on host.
func Size(spec *config.VM, host Host) Resources {
	var r Resources
	if spec.MemoryPercent > 0 {
		mem := host.MemBytes * int64(spec.MemoryPercent) / 100
		if max := host.MemBytes - HostReserve; mem > max {
			mem = max
			r.Notes = append(r.Notes, fmt.Sprintf("memory %d%% of %d MiB leaves the host less than %d MiB: the guest gets %d MiB", spec.MemoryPercent, host.MemBytes>>20, HostReserve>>20, mem>>20))
		}
		r.MemMiB = mem >> 20
	} else {
		r.MemMiB = spec.MemoryBytes >> 20
		if host.MemBytes > 0 && spec.MemoryBytes > host.MemBytes-HostReserve {
			r.Notes = append(r.Notes, fmt.Sprintf("memory %d MiB is more than the host can give (%d MiB of RAM): the guest may be killed when it uses it", r.MemMiB, host.MemBytes>>20))
		}
	}
	if r.MemMiB < 64 {
		r.MemMiB = 64
	}
	switch {
	case spec.CPUsAll:
		r.CPUs = host.CPUs - spec.CPUsAllBut
	default:
		r.CPUs = spec.CPUs
		if host.CPUs > 0 && r.CPUs > host.CPUs {
			r.Notes = append(r.Notes, fmt.Sprintf("cpus %d is more than the host's %d: the guest gets %d", spec.CPUs, host.CPUs, host.CPUs))
			r.CPUs = host.CPUs
		}
	}
	if r.CPUs < 1 {
		r.CPUs = 1
	}
	if spec.OS == "windows11" && (r.CPUs < 2 || r.MemMiB < 4096) {
		r.Notes = append(r.Notes, fmt.Sprintf("Windows 11 setup needs 2 CPUs and 4096 MiB; this host gives %d and %d MiB", r.CPUs, r.MemMiB))
	}
	return r
}

// hyperV is the Hyper-V enlightenment list Windows guests get under KVM
// (what quickemu and libvirt's recommended Windows setup enable).
var hyperV = []string{
	"hv_relaxed", "hv_vapic", "hv_spinlocks=0x1fff", "hv_vpindex", "hv_runtime",
	"hv_synic", "hv_stimer", "hv_time", "hv_frequencies", "hv_reset", "hv_tlbflush", "hv_ipi",
	// Windows' stop code in the crash event.
	"hv_crash",
}

// Args is the QEMU command line for spec on host, without the program.
// It is a pure function: the same inputs give the same argv.
func Args(spec *config.VM, host Host, p Paths, st State) []string {
	windows := strings.HasPrefix(spec.OS, "windows")
	uefi := strings.HasPrefix(spec.Firmware, "uefi")
	secure := spec.Firmware == "uefi-secureboot"
	res := Size(spec, host)
	root := host.Root
	var a []string
	add := func(s ...string) { a = append(a, s...) }

	add("-name", "guest="+esc(spec.Name)+",process=thinhost-vm-"+esc(spec.Name), "-nodefaults", "-no-user-config")
	add("-L", root+QEMUDataDir)
	machine := "q35"
	if uefi {
		// SMM keeps the UEFI variable store out of the guest OS's reach,
		// which Secure Boot depends on.
		machine += ",smm=on"
	}
	if windows {
		machine += ",hpet=off"
	}
	add("-machine", machine)
	if host.KVM {
		add("-accel", "kvm")
		amd := strings.Contains(host.CPUVendor, "AMD")
		cpu := "host"
		if windows {
			// An invariant TSC lets Windows keep time with it (it
			// blocks migration, which a laptop's guest never does).
			cpu += ",kvm=on," + strings.Join(hyperV, ",") + ",invtsc=on"
			if amd {
				cpu += ",topoext=on"
			} else if spec.Nested {
				// The enlightened VMCS serves nested guests only.
				cpu += ",hv_evmcs"
			}
		}
		// No nested virtualisation unless the profile asks: it widens
		// what a guest reaches of the host's KVM.
		if !spec.Nested {
			if amd {
				cpu += ",svm=off"
			} else {
				cpu += ",vmx=off"
			}
		}
		add("-cpu", cpu)
	} else {
		// No usable KVM: emulate. "max" offers every feature TCG has.
		add("-accel", "tcg,thread=multi", "-cpu", "max")
	}
	add("-smp", fmt.Sprintf("%d,sockets=1,cores=%d,threads=1", res.CPUs, res.CPUs))
	add("-m", strconv.FormatInt(res.MemMiB, 10)+"M")
	if windows {
		// Windows cannot resume from S3 in QEMU reliably, and keeps local
		// time in the RTC.
		add("-global", "ICH9-LPC.disable_s3=1")
		if host.KVM {
			add("-global", "kvm-pit.lost_tick_policy=discard")
		}
		add("-rtc", "base=localtime,clock=host,driftfix=slew")
	} else {
		add("-rtc", "base=utc,clock=host")
	}

	if uefi {
		code := OVMFCode
		if secure {
			code = OVMFSecureCode
			add("-global", "driver=cfi.pflash01,property=secure,value=on")
		}
		add("-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+esc(root+code))
		add("-drive", "if=pflash,format=raw,unit=1,file="+esc(p.Vars()))
	}
	if spec.TPM {
		add("-chardev", "socket,id=chrtpm,path="+esc(p.TPMSocket()))
		add("-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-tis,tpmdev=tpm0")
	}

	// The system disk. cache=none: the guest's own cache is the one that
	// counts, and the host's page cache stays for the shares; aio=native
	// (Linux AIO, which cache=none's O_DIRECT allows) works on every
	// kernel, where io_uring may be turned off; TRIM passed down so the
	// qcow2 stays small, zeroes written as holes.
	disk, format := p.Disk(spec.DiskFormat), spec.DiskFormat
	if st.Overlay {
		disk, format = p.Overlay(), "qcow2"
	}
	add("-drive", "if=none,id=disk0,file="+esc(disk)+",format="+format+",cache=none,aio=native,discard=unmap,detect-zeroes=unmap")
	if st.DiskBus == "sata" {
		// On q35's AHCI controller, after the three CD drives.
		add("-device", "ide-hd,bus=ide.3,drive=disk0,bootindex=1")
	} else {
		// virtio-blk in an I/O thread of its own, off QEMU's main loop.
		add("-object", "iothread,id=iothread0")
		add("-device", "virtio-blk-pci,drive=disk0,iothread=iothread0,bootindex=1")
	}
	if st.Install {
		for i, m := range []string{spec.InstallMedia, spec.Drivers} {
			if m == "" {
				continue
			}
			id := fmt.Sprintf("cd%d", i)
			add("-drive", "if=none,id="+id+",media=cdrom,readonly=on,format=raw,file="+esc(m))
			// The device's own id is what QMP's eject names (the drive's
			// is the block backend's, which eject no longer takes).
			dev := fmt.Sprintf("ide-cd,bus=ide.%d,drive=%s,id=%s", i, id, cdDevices[i])
			if i == 0 {
				dev += ",bootindex=0"
			}
			add("-device", dev)
		}
	}
	if st.HelperISO != "" {
		// A CD, not a USB disk: setup's "disk 0" must be the guest's own.
		add("-drive", "if=none,id=helper,media=cdrom,readonly=on,format=raw,file="+esc(st.HelperISO))
		add("-device", "ide-cd,bus=ide.2,drive=helper,id="+HelperCD)
	}
	if spec.Kernel != "" {
		add("-kernel", spec.Kernel)
		if spec.Initrd != "" {
			add("-initrd", spec.Initrd)
		}
		if spec.Cmdline != "" {
			add("-append", spec.Cmdline)
		}
	}

	switch spec.Network {
	case "user":
		mac := spec.MAC
		if mac == "" {
			mac = layout.GuestMAC(spec.Name)
		}
		// virtio-net, unless Windows has no drivers for it: then the
		// e1000e it has its own driver for.
		nic := "virtio-net-pci"
		if windows && spec.Drivers == "" {
			nic = "e1000e"
		}
		add("-netdev", "user,id=net0", "-device", nic+",netdev=net0,mac="+mac+",romfile=")
		if st.Tap != "" {
			// The host-only link: the kernel's bridge instead of
			// QEMU's user-space NAT, vhost-net where the kernel has it.
			// (vhost needs KVM's ioeventfds: under TCG QEMU moves them.)
			vhost := "off"
			if host.Vhost && host.KVM {
				vhost = "on"
			}
			add("-netdev", "tap,id=net1,ifname="+esc(st.Tap)+",script=no,downscript=no,vhost="+vhost,
				"-device", nic+",netdev=net1,mac="+layout.GuestLinkMAC(spec.Name)+",romfile=")
		}
	}

	add("-device", "qemu-xhci,id=xhci")
	if windows || spec.Display != "none" {
		add("-device", "usb-tablet,bus=xhci.0")
	}
	for _, u := range spec.USB {
		v, pr, _ := strings.Cut(u, ":")
		add("-device", "usb-host,bus=xhci.0,vendorid=0x"+v+",productid=0x"+pr)
	}
	add("-device", "virtio-rng-pci")
	// Panics reported to QEMU (a GUEST_PANICKED event): Windows'
	// pvpanic driver from virtio-win, Linux's pvpanic module.
	add("-device", "pvpanic")
	// No balloon: the guest's memory is fixed at its start, and the host
	// keeps its own reserve (HostReserve) instead of taking memory back.
	if !spec.NoSound {
		// Intel HDA, which Windows and Linux drive without extra
		// drivers, played on the laptop's sound card through ALSA.
		if host.Sound != "" {
			add("-audiodev", "alsa,id=snd0,out.dev="+esc(host.Sound)+",in.dev="+esc(host.Sound))
		} else {
			add("-audiodev", "none,id=snd0")
		}
		add("-device", "ich9-intel-hda,id=sound0", "-device", "hda-duplex,bus=sound0.0,audiodev=snd0")
	}

	// Windows gets virtio-vga: VGA for setup and the firmware, and with
	// virtio-win's display driver any resolution, starting at the
	// panel's. Linux guests keep the standard VGA.
	vga := []string{"-vga", "std"}
	if windows {
		dev := "virtio-vga"
		if w, h, ok := strings.Cut(host.Panel, "x"); ok && spec.Display == "sdl" && positive(w) && positive(h) {
			dev += ",xres=" + w + ",yres=" + h
		}
		vga = []string{"-device", dev}
	}
	switch spec.Display {
	case "vnc":
		host, port, _ := net.SplitHostPort(spec.VNC)
		n, _ := strconv.Atoi(port)
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		vnc := fmt.Sprintf("%s:%d", esc(host), n-5900)
		if VNCPassworded(spec.VNC) {
			// The password from a file of the guest's own (0600), never
			// on QEMU's command line.
			add("-object", "secret,id=vncpw,file="+esc(p.VNCSecret()))
			vnc += ",password-secret=vncpw"
		}
		add(vga...)
		add("-display", "none", "-vnc", vnc)
	case "sdl":
		// SDL draws on the panel through KMS/DRM, without X (hostd sets
		// SDL_VIDEODRIVER=kmsdrm). window-close=off: SDL's quit event
		// (a signal, a close request) must not power the guest off; its
		// life is hostd's.
		add(vga...)
		add("-display", "sdl,gl=off,show-cursor=off,window-close=off", "-full-screen")
	default:
		if windows {
			add(vga...)
		}
		add("-display", "none")
	}
	// The guest agent's channel: hostd asks it whether an install has
	// finished and sets the guest's clock after the host resumes.
	add("-device", "virtio-serial-pci,id=vserial0")
	add("-chardev", "socket,id=qga0,path="+esc(p.QGA())+",server=on,wait=off")
	add("-device", "virtserialport,bus=vserial0.0,chardev=qga0,name=org.qemu.guest_agent.0")
	// The guest's serial console is QEMU's standard output: hostd logs it.
	add("-chardev", "stdio,id=serial0,signal=off", "-serial", "chardev:serial0")
	// QMP on a socket chardev: its path= takes any path (commas
	// doubled), where -qmp's legacy unix:PATH syntax reads a '=' in it
	// as a key.
	add("-chardev", "socket,id=qmp,path="+esc(p.QMP())+",server=on,wait=off", "-mon", "chardev=qmp,mode=control", "-monitor", "none")
	// A second QMP monitor, which hostd keeps open for QEMU's events.
	add("-chardev", "socket,id=qmpev,path="+esc(p.Events())+",server=on,wait=off", "-mon", "chardev=qmpev,mode=control")
	// A crashed guest is reported (GUEST_PANICKED) and left to restart
	// as it would on a PC, not powered off (QEMU's default), which
	// on_shutdown would take for a shutdown.
	add("-action", "panic=none")
	return a
}

// positive says whether s is a whole number from 1 to 16384.
func positive(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n <= 16384
}

// esc doubles commas, QEMU's escape inside option values.
func esc(s string) string { return strings.ReplaceAll(s, ",", ",,") }

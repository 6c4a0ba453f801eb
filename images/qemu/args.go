package qemu

import (
	"fmt"
	"strconv"
	"strings"
)

// Forward is a TCP port forward from 127.0.0.1:Host on the build machine to
// Guest in the VM.
type Forward struct {
	Host, Guest int
}

func (f Forward) String() string { return fmt.Sprintf("%d:%d", f.Host, f.Guest) }

// ParseForward parses "HOSTPORT:GUESTPORT".
func ParseForward(s string) (Forward, error) {
	h, g, ok := strings.Cut(s, ":")
	if !ok {
		return Forward{}, fmt.Errorf("forward %q: want HOSTPORT:GUESTPORT, such as 8080:80", s)
	}
	hp, err1 := strconv.Atoi(h)
	gp, err2 := strconv.Atoi(g)
	if err1 != nil || err2 != nil || hp < 1 || hp > 65535 || gp < 1 || gp > 65535 {
		return Forward{}, fmt.Errorf("forward %q: ports must be numbers from 1 to 65535, as HOSTPORT:GUESTPORT", s)
	}
	return Forward{Host: hp, Guest: gp}, nil
}

// Spec is a fully resolved QEMU invocation.
type Spec struct {
	// Image is the raw disk image, attached as a virtio disk.
	Image string
	// Firmware.Vars must be the run's own writable copy.
	Firmware Firmware
	// Accel is AccelKVM or AccelTCG.
	Accel     string
	MemoryMiB int
	CPUs      int
	Forwards  []Forward
	// QMPSocket is a unix socket path QEMU listens on.
	QMPSocket string
	// Interactive multiplexes the serial console and QEMU's monitor on
	// stdio (Ctrl-A X quits, Ctrl-A C switches to the monitor); otherwise
	// the serial console goes to stdout and stdin is ignored.
	Interactive bool
	// NoReboot makes a guest reboot (or a kernel panic's reboot) end QEMU.
	NoReboot bool
	// Snapshot discards the run's disk writes when QEMU exits.
	Snapshot bool
	// USB attaches the disk as a USB stick on an xHCI controller, as
	// real hardware boots a flashed stick, instead of a virtio disk.
	USB bool
	// Machine is MachineVirtio (virtio disk, NIC and entropy: the
	// quickest to boot) or MachineLaptop (what a laptop booted from a
	// flashed stick shows its host: see LaptopDevices).
	Machine string
	// InternalDisk is the laptop's internal disk (a raw file), attached
	// as NVMe; MachineLaptop only.
	InternalDisk string
	// Disks are more raw disks (files or block devices) attached after
	// the image and never booted from: another stick, an old disk. On
	// the virtio machine they are virtio disks, on the laptop USB sticks.
	Disks []string
	// TPMSocket, when set, is the control socket of a swtpm (TPM 2.0)
	// the machine gets as its TPM, a CRB device as on current laptops.
	TPMSocket string
}

// The machines Args knows.
const (
	MachineVirtio = "virtio"
	MachineLaptop = "laptop"
)

// LaptopDevices describes MachineLaptop for people: the image as a USB
// stick, and a laptop's devices, none of them virtio.
const LaptopDevices = "the image as a USB stick on xHCI, an internal NVMe disk, an Intel e1000e NIC, Intel HDA audio, a USB keyboard and tablet, and a standard VGA display (DRM driver bochs)"

// Args returns QEMU's argument vector (without the binary) for s. It has no
// side effects.
func Args(s Spec) ([]string, error) {
	if s.Image == "" || s.Firmware.Code == "" || s.Firmware.Vars == "" {
		return nil, fmt.Errorf("qemu arguments: image and firmware are required")
	}
	if s.MemoryMiB < 128 {
		return nil, fmt.Errorf("qemu arguments: memory %d MiB is below the 128 MiB a thinhost image needs", s.MemoryMiB)
	}
	if s.CPUs < 1 {
		return nil, fmt.Errorf("qemu arguments: cpus must be at least 1, got %d", s.CPUs)
	}
	machineOpt := "q35"
	if s.Firmware.SecureBoot {
		// Secure Boot firmware keeps its variables behind SMM, so the OS
		// cannot rewrite the keys.
		machineOpt = "q35,smm=on"
	}
	a := []string{
		"-name", "thinhost",
		"-machine", machineOpt,
		"-m", strconv.Itoa(s.MemoryMiB),
		"-smp", strconv.Itoa(s.CPUs),
		"-nodefaults", "-no-user-config",
		"-display", "none",
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + escapeComma(s.Firmware.Code),
		"-drive", "if=pflash,format=raw,unit=1,file=" + escapeComma(s.Firmware.Vars),
	}
	if s.Firmware.SecureBoot {
		a = append(a, "-global", "driver=cfi.pflash01,property=secure,value=on")
	}
	switch s.Accel {
	case AccelKVM:
		a = append(a, "-accel", "kvm", "-cpu", "host")
	case AccelTCG:
		// No nested virtualization under TCG: the emulated host's KVM
		// (kvm_amd, kvm_intel) hung in kvm_destroy_vm in test runs; its
		// guests run under TCG instead, as hostd falls back.
		a = append(a, "-accel", "tcg", "-cpu", "max,-vmx,-svm")
	default:
		return nil, fmt.Errorf("qemu arguments: unknown accelerator %q (want kvm or tcg)", s.Accel)
	}
	machine := s.Machine
	if machine == "" {
		machine = MachineVirtio
	}
	if machine != MachineVirtio && machine != MachineLaptop {
		return nil, fmt.Errorf("qemu arguments: unknown machine %q (want %s or %s)", machine, MachineVirtio, MachineLaptop)
	}
	if s.InternalDisk != "" && machine != MachineLaptop {
		return nil, fmt.Errorf("qemu arguments: an internal disk goes with the %s machine", MachineLaptop)
	}
	drive := "if=none,id=disk0,format=raw,cache=writeback,discard=unmap,file=" + escapeComma(s.Image)
	if s.Snapshot {
		drive += ",snapshot=on"
	}
	if s.USB || machine == MachineLaptop {
		a = append(a, "-drive", drive, "-device", "qemu-xhci,id=xhci", "-device", "usb-storage,bus=xhci.0,drive=disk0,bootindex=1")
	} else {
		a = append(a, "-drive", drive, "-device", "virtio-blk-pci,drive=disk0,bootindex=1")
	}

	if s.TPMSocket != "" {
		a = append(a, "-chardev", "socket,id=chrtpm,path="+escapeComma(s.TPMSocket),
			"-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-crb,tpmdev=tpm0")
	}
	for i, d := range s.Disks {
		drive := fmt.Sprintf("if=none,id=disk%d,format=raw,cache=writeback,file=%s", i+1, escapeComma(d))
		if s.Snapshot {
			drive += ",snapshot=on"
		}
		dev := fmt.Sprintf("virtio-blk-pci,drive=disk%d", i+1)
		if s.USB || machine == MachineLaptop {
			dev = fmt.Sprintf("usb-storage,bus=xhci.0,drive=disk%d", i+1)
		}
		a = append(a, "-drive", drive, "-device", dev)
	}

	netdev := "user,id=net0"
	seen := map[int]bool{}
	for _, f := range s.Forwards {
		if seen[f.Host] {
			return nil, fmt.Errorf("qemu arguments: host port %d is forwarded twice", f.Host)
		}
		seen[f.Host] = true
		netdev += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:%d", f.Host, f.Guest)
	}
	if machine == MachineLaptop {
		if s.InternalDisk != "" {
			a = append(a, "-drive", "if=none,id=internal,format=raw,cache=writeback,discard=unmap,file="+escapeComma(s.InternalDisk),
				"-device", "nvme,serial=thinhost-internal,drive=internal")
		}
		a = append(a, "-netdev", netdev, "-device", "e1000e,netdev=net0",
			"-audiodev", "none,id=snd0", "-device", "intel-hda", "-device", "hda-duplex,audiodev=snd0",
			"-device", "usb-kbd,bus=xhci.0", "-device", "usb-tablet,bus=xhci.0",
			"-device", "VGA")
	} else {
		a = append(a, "-netdev", netdev, "-device", "virtio-net-pci,netdev=net0")
		a = append(a, "-device", "virtio-rng-pci")
	}

	if s.Interactive {
		a = append(a, "-chardev", "stdio,id=con0,mux=on,signal=off", "-serial", "chardev:con0", "-mon", "chardev=con0,mode=readline")
	} else {
		a = append(a, "-chardev", "stdio,id=con0,signal=off", "-serial", "chardev:con0")
	}
	if s.QMPSocket != "" {
		a = append(a, "-chardev", "socket,id=qmp,path="+escapeComma(s.QMPSocket)+",server=on,wait=off", "-mon", "chardev=qmp,mode=control")
	}
	if s.NoReboot {
		a = append(a, "-no-reboot")
	}
	return a, nil
}

// escapeComma doubles commas, QEMU's escape inside option values.
func escapeComma(s string) string { return strings.ReplaceAll(s, ",", ",,") }

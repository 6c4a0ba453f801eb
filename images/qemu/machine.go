package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/thinhost/thinhost/internal/fsutil"
	"github.com/thinhost/thinhost/internal/qmpc"
)

// DefaultBinary is the QEMU system emulator thinhost runs.
const DefaultBinary = "qemu-system-x86_64"

// Config describes a run. Zero values pick sensible defaults.
type Config struct {
	Image string
	// Binary defaults to DefaultBinary on $PATH.
	Binary string
	// Firmware defaults to FindOVMF.
	Firmware *Firmware
	// VarsFile, when set, is the firmware's variable store kept across
	// runs, as a laptop's NVRAM keeps boot entries and enrolled keys: made
	// from Firmware.Vars when it does not exist, then used in place.
	// Otherwise every run gets a fresh copy of Firmware.Vars.
	VarsFile string
	// Accel is "", "auto" (KVM when ProbeKVM says it works, else TCG),
	// AccelKVM or AccelTCG.
	Accel     string
	MemoryMiB int
	CPUs      int
	Forwards  []Forward
	// Interactive gives QEMU Stdin, Stdout and Stderr (which should be the
	// terminal) for the serial console and monitor.
	Interactive bool
	NoReboot    bool
	Snapshot    bool
	// USB attaches the image as a USB stick (see Spec.USB).
	USB bool
	// Machine is MachineVirtio (default) or MachineLaptop.
	Machine string
	// InternalDiskSize is the size of the laptop's internal NVMe disk, a
	// sparse file made for the run and removed after it (0: none).
	InternalDiskSize int64
	// Disks are more raw disks attached after the image (see Spec.Disks).
	Disks []string
	// TPMDir, when set, gives the machine a TPM 2.0: a swtpm (from PATH)
	// keeping its state in this directory, made when missing, so a
	// laptop's TPM survives its reboots as the real one does.
	TPMDir string
	// Stdin, Stdout and Stderr are QEMU's. Stdout carries the serial
	// console.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Log            *slog.Logger
}

// Machine is a running QEMU.
type Machine struct {
	// Spec is what QEMU was started with; Argv its full command line.
	Spec Spec
	Argv []string
	// AccelReason says why KVM was not used, when it was not.
	AccelReason string
	// VarsKept is true when the run uses the variable store of an earlier
	// one (Config.VarsFile existed).
	VarsKept bool

	cmd     *exec.Cmd
	tpm     *exec.Cmd
	tmp     string
	done    chan struct{}
	waitErr error
	mu      sync.Mutex
}

// Start resolves cfg and starts QEMU. The caller must call Wait or Kill.
func Start(ctx context.Context, cfg Config) (*Machine, error) {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Binary == "" {
		cfg.Binary = DefaultBinary
	}
	bin, err := exec.LookPath(cfg.Binary)
	if err != nil {
		return nil, fmt.Errorf("find QEMU %s: %w (Debian: apt-get install qemu-system-x86)", cfg.Binary, err)
	}
	if fi, err := os.Stat(cfg.Image); err != nil {
		return nil, fmt.Errorf("open image: %w", err)
	} else if !fi.Mode().IsRegular() && fi.Mode()&os.ModeDevice == 0 {
		return nil, fmt.Errorf("open image %s: not an image file or a disk", cfg.Image)
	} else if fi.Mode()&os.ModeCharDevice != 0 {
		return nil, fmt.Errorf("open image %s: a character device, not an image file or a disk", cfg.Image)
	}
	fw := cfg.Firmware
	if fw == nil {
		if fw, err = FindOVMF(); err != nil {
			return nil, err
		}
	}
	m := &Machine{done: make(chan struct{})}
	switch cfg.Accel {
	case "", "auto":
		// The firmware it boots: KVM may fail in it alone.
		if ok, why := ProbeKVM(ctx, bin, fw.Code); ok {
			cfg.Accel = AccelKVM
		} else {
			cfg.Accel = AccelTCG
			m.AccelReason = why
		}
	case AccelKVM, AccelTCG:
	default:
		return nil, fmt.Errorf("accelerator %q: want auto, kvm or tcg", cfg.Accel)
	}
	if cfg.MemoryMiB == 0 {
		cfg.MemoryMiB = 1024
	}
	if cfg.CPUs == 0 {
		cfg.CPUs = 2
	}

	m.tmp, err = os.MkdirTemp("", "thinhost-run-")
	if err != nil {
		return nil, fmt.Errorf("create run directory: %w", err)
	}
	vars := filepath.Join(m.tmp, "OVMF_VARS.fd")
	if cfg.VarsFile != "" {
		vars = cfg.VarsFile
	}
	_, err = os.Stat(vars)
	m.VarsKept = cfg.VarsFile != "" && err == nil
	if cfg.VarsFile == "" || errors.Is(err, fs.ErrNotExist) {
		if err := fsutil.CopyFile(fw.Vars, vars); err != nil {
			os.RemoveAll(m.tmp)
			return nil, fmt.Errorf("copy UEFI variable store %s: %w", fw.Vars, err)
		}
	} else if fi, err := os.Stat(vars); err != nil || !fi.Mode().IsRegular() {
		os.RemoveAll(m.tmp)
		return nil, fmt.Errorf("UEFI variable store %s: not a regular file (%v)", vars, err)
	}
	image, err := filepath.Abs(cfg.Image)
	if err != nil {
		os.RemoveAll(m.tmp)
		return nil, err
	}
	m.Spec = Spec{
		Image:       image,
		Firmware:    Firmware{Code: fw.Code, Vars: vars, SecureBoot: fw.SecureBoot, Setup: fw.Setup},
		Accel:       cfg.Accel,
		MemoryMiB:   cfg.MemoryMiB,
		CPUs:        cfg.CPUs,
		Forwards:    cfg.Forwards,
		QMPSocket:   filepath.Join(m.tmp, "qmp.sock"),
		Interactive: cfg.Interactive,
		NoReboot:    cfg.NoReboot,
		Snapshot:    cfg.Snapshot,
		USB:         cfg.USB,
		Machine:     cfg.Machine,
	}
	if cfg.TPMDir != "" {
		if m.tpm, err = startTPM(cfg.TPMDir, filepath.Join(m.tmp, "swtpm.sock")); err != nil {
			os.RemoveAll(m.tmp)
			return nil, err
		}
		m.Spec.TPMSocket = filepath.Join(m.tmp, "swtpm.sock")
	}
	for _, d := range cfg.Disks {
		abs, err := filepath.Abs(d)
		if err != nil {
			os.RemoveAll(m.tmp)
			return nil, err
		}
		m.Spec.Disks = append(m.Spec.Disks, abs)
	}
	if cfg.InternalDiskSize > 0 {
		m.Spec.InternalDisk = filepath.Join(m.tmp, "internal-nvme.raw")
		if err := makeSparse(m.Spec.InternalDisk, cfg.InternalDiskSize); err != nil {
			os.RemoveAll(m.tmp)
			return nil, fmt.Errorf("create the internal disk: %w", err)
		}
	}
	args, err := Args(m.Spec)
	if err != nil {
		os.RemoveAll(m.tmp)
		return nil, err
	}
	m.Argv = append([]string{bin}, args...)
	m.cmd = exec.Command(bin, args...)
	m.cmd.Stdin, m.cmd.Stdout, m.cmd.Stderr = cfg.Stdin, cfg.Stdout, cfg.Stderr
	if !cfg.Interactive {
		// Headless runs get their own process group, so a Ctrl-C meant for
		// thinhost reaches QEMU only through Kill.
		m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	log.Debug("starting qemu", "argv", m.Argv)
	if err := m.cmd.Start(); err != nil {
		os.RemoveAll(m.tmp)
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		err := m.cmd.Wait()
		m.mu.Lock()
		m.waitErr = err
		m.mu.Unlock()
		if m.tpm != nil {
			// swtpm ends with QEMU's connection (--terminate); this is
			// for a QEMU that never made one.
			m.tpm.Process.Kill()
			m.tpm.Wait()
		}
		os.RemoveAll(m.tmp)
		close(m.done)
	}()
	return m, nil
}

// Done is closed when QEMU has exited.
func (m *Machine) Done() <-chan struct{} { return m.done }

// Wait waits for QEMU to exit and returns its exit error.
func (m *Machine) Wait() error {
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.waitErr
}

// Kill ends QEMU at once and waits for it.
func (m *Machine) Kill() {
	select {
	case <-m.done:
		return
	default:
	}
	_ = m.cmd.Process.Kill()
	<-m.done
}

// Powerdown presses the ACPI power button (QMP system_powerdown).
func (m *Machine) Powerdown() error { return m.qmp("system_powerdown") }

// Quit ends QEMU through QMP, as if the machine's plug were pulled.
func (m *Machine) Quit() error { return m.qmp("quit") }

// Wakeup wakes the machine from suspend (QMP system_wakeup), as opening
// the lid or a key does.
func (m *Machine) Wakeup() error { return m.qmp("system_wakeup") }

// RunState is QEMU's run state (QMP query-status): "running",
// "suspended", "paused", ...
func (m *Machine) RunState() (string, error) {
	select {
	case <-m.done:
		return "", fmt.Errorf("qmp query-status: QEMU has exited")
	default:
	}
	raw, err := qmpc.Run(m.Spec.QMPSocket, "query-status", nil)
	if err != nil {
		return "", err
	}
	var st struct {
		Return struct {
			Status string `json:"status"`
		} `json:"return"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return "", fmt.Errorf("qmp query-status: %w", err)
	}
	return st.Return.Status, nil
}

func (m *Machine) qmp(command string) error {
	select {
	case <-m.done:
		return fmt.Errorf("qmp %s: QEMU has exited", command)
	default:
	}
	_, err := qmpc.Run(m.Spec.QMPSocket, command, nil)
	return err
}

// makeSparse creates an empty (all zeros, unallocated) file of size bytes.
func makeSparse(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// startTPM starts swtpm as a TPM 2.0 with its state in dir, listening for
// QEMU on the control socket sock, and waits for the socket.
func startTPM(dir, sock string) (*exec.Cmd, error) {
	bin, err := exec.LookPath("swtpm")
	if err != nil {
		return nil, fmt.Errorf("find swtpm for the machine's TPM: %w (Debian: apt-get install swtpm)", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create the TPM's state directory: %w", err)
	}
	cmd := exec.Command(bin, "socket", "--tpm2", "--tpmstate", "dir="+dir, "--ctrl", "type=unixio,path="+sock, "--terminate")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start swtpm: %w", err)
	}
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(sock); err == nil {
			return cmd, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	return nil, fmt.Errorf("swtpm did not open %s", sock)
}

// The emulated USB stick PlugUSB plugs in.
const (
	plugNode   = "plugged0"
	plugDevice = "plugged-stick"
)

// PlugUSB plugs an emulated USB stick holding file (read-only) into the
// machine's xHCI controller while it runs, as a person plugs a stick into
// the laptop.
func (m *Machine) PlugUSB(file string) error {
	if _, err := qmpc.Run(m.Spec.QMPSocket, "blockdev-add", map[string]any{"driver": "raw", "node-name": plugNode, "read-only": true,
		"file": map[string]any{"driver": "file", "filename": file, "read-only": true}}); err != nil {
		return fmt.Errorf("plug a USB stick: %w", err)
	}
	if _, err := qmpc.Run(m.Spec.QMPSocket, "device_add", map[string]any{"driver": "usb-storage", "id": plugDevice, "bus": "xhci.0",
		"drive": plugNode, "removable": true}); err != nil {
		return fmt.Errorf("plug a USB stick: %w", err)
	}
	return nil
}

// SetLink plugs the network cable of the machine's NIC in (up) or pulls
// it out, as QMP set_link does: the machine's driver sees the carrier
// change.
func (m *Machine) SetLink(up bool) error {
	if _, err := qmpc.Run(m.Spec.QMPSocket, "set_link", map[string]any{"name": "net0", "up": up}); err != nil {
		return fmt.Errorf("set the network link up=%v: %w", up, err)
	}
	return nil
}

// UnplugUSB pulls PlugUSB's stick out.
func (m *Machine) UnplugUSB() error {
	if _, err := qmpc.Run(m.Spec.QMPSocket, "device_del", map[string]any{"id": plugDevice}); err != nil {
		return fmt.Errorf("unplug the USB stick: %w", err)
	}
	return nil
}

//go:build linux

package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/thinhost/thinhost/hostd/api"
	"github.com/thinhost/thinhost/images"
	"github.com/thinhost/thinhost/images/flash"
	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/images/qemu"
	"github.com/thinhost/thinhost/profiles"
)

// consoleTail is how many console lines a failed check prints.
const consoleTail = 40

// statusPrefixes start the status lines run --check repeats.
var statusPrefixes = []string{api.SecureBootPrefix, api.DataPrefix, api.ServicesPrefix, api.APIPrefix, api.HealthPrefix}

type runFlags struct {
	check      bool
	timeout    time.Duration
	offTimeout time.Duration
	forwards   []string
	memory     string
	cpus       int
	accel      string
	snapshot   bool
	ovmfCode   string
	secureBoot bool
	sbKeys     string
	varsFile   string
	tpmDir     string
	ovmfVars   string
	qemuBinary string
	usb        bool
	machine    string
	internal   string
	disks      []string
	screenshot string
	shotDelay  time.Duration
	sendKeys   []string
	plugUSB    string
	usbSeen    string
	waitFor    []string
	answers    []string
	presses    []string
	shotsAt    []string
}

func runCmd(e *env) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run IMAGE",
		Short: "Boot an image in QEMU under UEFI, with the serial console on the terminal",
		Long: `run boots IMAGE in QEMU with OVMF. KVM is used when it works here, else TCG
(with a notice). The serial console is on the terminal: Ctrl-A X quits QEMU,
Ctrl-A C switches to its monitor.

With --check, run is headless: it boots, waits for hostd's ready line, prints
the time to ready, presses the ACPI power button and waits for the host to
power off; it exits 0 only if all of that happened, and otherwise prints the
last console lines.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImage(cmd.Context(), e, args[0], f)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.check, "check", false, "headless boot check: wait for hostd ready, power off, report")
	fl.DurationVar(&f.timeout, "timeout", 3*time.Minute, "with --check: how long to wait for the ready line and the --wait-for texts, from power-on")
	fl.DurationVar(&f.offTimeout, "poweroff-timeout", 3*time.Minute, "with --check: how long to wait for the power-off (hostd first gives each guest its shutdown_timeout)")
	fl.StringArrayVar(&f.forwards, "forward", nil, "forward TCP 127.0.0.1:HOSTPORT to GUESTPORT in the VM, as HOSTPORT:GUESTPORT (repeatable)")
	fl.StringVar(&f.memory, "memory", "1GiB", "guest memory, such as 1GiB or 768MiB (a bare number is MiB)")
	fl.IntVar(&f.cpus, "cpus", 2, "guest CPUs")
	fl.StringVar(&f.accel, "accel", "auto", "accelerator: auto (KVM when usable, else TCG), kvm or tcg")
	fl.BoolVar(&f.snapshot, "snapshot", false, "discard the run's writes to IMAGE")
	fl.StringVar(&f.ovmfCode, "ovmf-code", "", "UEFI firmware code file (default: search the Debian, Fedora and Arch paths)")
	fl.StringVar(&f.ovmfVars, "ovmf-vars", "", "UEFI variable store template, with --ovmf-code")
	fl.BoolVar(&f.secureBoot, "secure-boot", false, "boot with Secure Boot on, as laptops ship: OVMF's Secure Boot build with Microsoft's keys enrolled, enforcing; an image built with secure_boot = \"own\" starts in setup mode and enrolls its own keys instead (--secure-boot-keys; with --ovmf-code/--ovmf-vars: that pair, run with SMM)")
	fl.StringVar(&f.sbKeys, "secure-boot-keys", "", "with --secure-boot: the firmware's keys: microsoft (as laptops ship) or setup (none: the image's loader enrolls the keys it carries, then enforces them); default: setup for an image signed with its own keys, else microsoft")
	fl.StringVar(&f.varsFile, "vars", "", "keep the firmware's variables (boot entries, enrolled Secure Boot keys) in this file across runs, as a laptop's NVRAM does: made from the firmware's template on first use")
	fl.StringVar(&f.qemuBinary, "qemu", qemu.DefaultBinary, "QEMU binary")
	fl.BoolVar(&f.usb, "usb", false, "attach IMAGE as a USB stick on xHCI (as real hardware boots a flashed stick) instead of a virtio disk")
	fl.StringVar(&f.machine, "machine", qemu.MachineVirtio, "virtio (virtio disk, NIC and entropy) or laptop ("+qemu.LaptopDevices+")")
	fl.StringArrayVar(&f.disks, "disk", nil, "attach another raw disk (a file or a block device not in use here) after IMAGE, never booted from: another stick, an old disk; repeatable")
	fl.StringVar(&f.tpmDir, "tpm", "", "give the machine a TPM 2.0 (swtpm) keeping its state in this directory across runs, as a laptop's TPM does (storage { tpm = true } seals the data partition's key to it)")
	fl.StringVar(&f.internal, "internal-disk", "32GiB", "with --machine laptop: the size of its empty internal NVMe disk (0: none)")
	fl.StringVar(&f.screenshot, "screenshot", "", "with --check and --machine laptop: save what the panel shows as a PNG file, after the ready line, the keys and --screenshot-delay")
	fl.DurationVar(&f.shotDelay, "screenshot-delay", 0, "with --screenshot: how long to wait after the ready line (and the keys) for guests to draw")
	fl.StringArrayVar(&f.waitFor, "wait-for", nil, "with --check: after the ready line, wait (within --timeout) until the console shows this text, such as a guest's line in hostd's log, before the keys and the screenshot; repeatable")
	fl.StringArrayVar(&f.answers, "answer", nil, "with --check: PROMPT=TEXT: when the console shows PROMPT, type TEXT and Enter, on the laptop's keyboard with --machine laptop (the panel), else on the serial console; repeatable, answered in order (a test's passphrase: it is visible in the process list)")
	fl.StringArrayVar(&f.presses, "press", nil, "with --check and --machine laptop: PROMPT=KEYS: when the console shows PROMPT, press these key combinations (as --send-keys) on the laptop's keyboard; repeatable")
	fl.StringArrayVar(&f.shotsAt, "screenshot-at", nil, "with --check and --machine laptop: PROMPT=FILE: when the console shows PROMPT, save what the panel shows a second later as a PNG file; repeatable")
	fl.StringVar(&f.plugUSB, "plug-usb", "", "with --check and a USB controller (--machine laptop or --usb): after the --wait-for texts, plug a USB stick holding this file (read-only) in, wait for hostd to say where it went, and pull it out again")
	fl.StringVar(&f.usbSeen, "usb-seen", "", "with --plug-usb: before pulling the stick out, wait (within --timeout) until the console shows this text anew, such as the guest's word that the device arrived")
	fl.StringSliceVar(&f.sendKeys, "send-keys", nil, "with --check and --machine laptop: type these key combinations on the laptop's keyboard after the ready line, such as ret,shift-a,ctrl-alt-delete (QEMU key codes joined by -)")
	return cmd
}

func parseMemory(s string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 {
			return 0, fmt.Errorf("memory %q: must be positive", s)
		}
		return n, nil
	}
	b, err := profiles.ParseSize(s)
	if err != nil {
		return 0, fmt.Errorf("memory: %w", err)
	}
	if b%(1<<20) != 0 || b <= 0 {
		return 0, fmt.Errorf("memory %q: must be a whole number of MiB", s)
	}
	return int(b >> 20), nil
}

func runImage(ctx context.Context, e *env, image string, f runFlags) error {
	if err := bootable(image); err != nil {
		return err
	}
	for _, d := range f.disks {
		if err := bootable(d); err != nil {
			return fmt.Errorf("--disk: %w", err)
		}
	}
	var internal int64
	switch f.machine {
	case qemu.MachineVirtio:
	case qemu.MachineLaptop:
		if f.internal != "0" {
			var err error
			if internal, err = profiles.ParseSize(f.internal); err != nil {
				return fmt.Errorf("--internal-disk: %w", err)
			}
		}
	default:
		return fmt.Errorf("--machine %q: want %s or %s", f.machine, qemu.MachineVirtio, qemu.MachineLaptop)
	}
	mem, err := parseMemory(f.memory)
	if err != nil {
		return err
	}
	var fwds []qemu.Forward
	for _, s := range f.forwards {
		fw, err := qemu.ParseForward(s)
		if err != nil {
			return err
		}
		fwds = append(fwds, fw)
	}
	var fw *qemu.Firmware
	switch {
	case f.ovmfCode != "" && f.ovmfVars != "":
		fw = &qemu.Firmware{Code: f.ovmfCode, Vars: f.ovmfVars, SecureBoot: f.secureBoot}
	case f.ovmfCode != "" || f.ovmfVars != "":
		return fmt.Errorf("give both --ovmf-code and --ovmf-vars, or neither")
	case f.secureBoot:
		keys := f.sbKeys
		if keys == "" {
			keys = "microsoft"
			if _, err := images.ReadESPFile(image, layout.EnrollKeysDir+"/PK.auth"); err == nil {
				keys = "setup"
			}
		}
		switch keys {
		case "microsoft":
			fw, err = qemu.FindSecureBootOVMF()
		case "setup":
			fw, err = qemu.FindSecureBootSetupOVMF()
		default:
			return fmt.Errorf("--secure-boot-keys %q: want microsoft or setup", keys)
		}
		if err != nil {
			return fmt.Errorf("--secure-boot: %w", err)
		}
		if f.varsFile != "" {
			if _, err := os.Stat(f.varsFile); err == nil {
				// The store of an earlier run: its keys, whatever they are.
				fw.Setup = false
			}
		}
	default:
		if fw, err = qemu.FindOVMF(); err != nil {
			return err
		}
	}
	cfg := qemu.Config{
		Image: image, Binary: f.qemuBinary, Firmware: fw, VarsFile: f.varsFile, Accel: f.accel,
		MemoryMiB: mem, CPUs: f.cpus, Forwards: fwds, Snapshot: f.snapshot, USB: f.usb,
		Machine: f.machine, InternalDiskSize: internal, Disks: f.disks, TPMDir: f.tpmDir,
		Stderr: e.stderr, Log: e.logger(),
	}
	if (f.screenshot != "" || len(f.sendKeys) > 0 || len(f.presses) > 0 || len(f.shotsAt) > 0) && (!f.check || f.machine != qemu.MachineLaptop) {
		return fmt.Errorf("--screenshot, --screenshot-at, --send-keys and --press go with --check and --machine laptop (the virtio machine has no display or keyboard)")
	}
	if f.plugUSB != "" {
		if !f.check || (f.machine != qemu.MachineLaptop && !f.usb) {
			return fmt.Errorf("--plug-usb goes with --check and a USB controller (--machine laptop or --usb)")
		}
		if fi, err := os.Stat(f.plugUSB); err != nil || !fi.Mode().IsRegular() {
			return fmt.Errorf("--plug-usb %s: not a regular file (%v)", f.plugUSB, err)
		}
	}
	if f.usbSeen != "" && f.plugUSB == "" {
		return fmt.Errorf("--usb-seen goes with --plug-usb")
	}
	if len(f.answers) > 0 && !f.check {
		return fmt.Errorf("--answer goes with --check (without it, type on the console yourself)")
	}
	if _, err := consoleActions(f, f.machine == qemu.MachineLaptop); err != nil {
		return err
	}
	for _, k := range f.sendKeys {
		if _, err := qemu.ParseKeyCombo(k); err != nil {
			return fmt.Errorf("--send-keys: %w", err)
		}
	}
	if !f.check {
		return runInteractive(ctx, e, cfg)
	}
	return runCheck(ctx, e, cfg, f)
}

// bootable refuses a block device that is in use here: a disk (a flashed
// stick, say) may be attached to the machine, but never one this machine
// has mounted.
func bootable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("attach %s: %w", path, err)
	}
	if fi.Mode()&os.ModeDevice == 0 || fi.Mode()&os.ModeCharDevice != 0 {
		return nil
	}
	d, err := flash.Host.Inspect(path)
	if err != nil {
		return err
	}
	if use := d.InUse(); len(use) > 0 {
		return fmt.Errorf("attach %s: it is in use here: %s", path, strings.Join(use, "; "))
	}
	return nil
}

func announce(e *env, m *qemu.Machine) {
	accel := "KVM"
	if m.Spec.Accel == qemu.AccelTCG {
		accel = "TCG (software emulation, slow)"
		if m.AccelReason != "" {
			accel += ": KVM not usable: " + m.AccelReason
		}
	}
	fmt.Fprintf(e.stderr, "thinhost: booting %s with %s\n", m.Spec.Image, accel)
	sb := ""
	switch {
	case m.Spec.Firmware.Setup:
		sb = " (Secure Boot in setup mode: the image's loader enrolls its own keys, restarts, and they are enforced)"
	case m.Spec.Firmware.SecureBoot && m.VarsKept:
		sb = " (Secure Boot on: the keys of " + m.Spec.Firmware.Vars + ", enforcing)"
	case m.Spec.Firmware.SecureBoot:
		sb = " (Secure Boot on: Microsoft's keys, enforcing)"
	}
	fmt.Fprintf(e.stderr, "thinhost: firmware %s%s\n", m.Spec.Firmware.Code, sb)
	for _, fw := range m.Spec.Forwards {
		fmt.Fprintf(e.stderr, "thinhost: forwarding 127.0.0.1:%d to guest port %d\n", fw.Host, fw.Guest)
	}
}

func runInteractive(ctx context.Context, e *env, cfg qemu.Config) error {
	cfg.Interactive = true
	cfg.Stdin, cfg.Stdout = e.stdin, e.stdout
	// QEMU puts a terminal into raw mode itself; remember its state so a
	// crash does not leave the user's shell unusable.
	if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if st, err := term.GetState(int(f.Fd())); err == nil {
			defer term.Restore(int(f.Fd()), st)
		}
	}
	m, err := qemu.Start(ctx, cfg)
	if err != nil {
		return err
	}
	announce(e, m)
	fmt.Fprintln(e.stderr, "thinhost: serial console follows; Ctrl-A X quits QEMU")
	select {
	case <-m.Done():
	case <-ctx.Done():
		// SIGTERM to thinhost (Ctrl-C goes to the guest in raw mode).
		_ = m.Powerdown()
		select {
		case <-m.Done():
		case <-time.After(30 * time.Second):
			m.Kill()
		}
	}
	if err := m.Wait(); err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	return nil
}

// What the boot chain prints when Secure Boot refuses an image: shim on
// a loader or kernel it cannot verify, OVMF on a loader its db does not
// allow.
const (
	shimRefusal     = "Security Violation"
	firmwareRefusal = "Access Denied"
)

func runCheck(ctx context.Context, e *env, cfg qemu.Config, f runFlags) error {
	timeout, offTimeout := f.timeout, f.offTimeout
	con := qemu.NewConsole(consoleTail, api.ReadyLine)
	if e.verbose {
		con.Echo = e.stderr
	}
	cfg.Stdout = con
	// A restart ends the check: a host that reboots on its own failed.
	// Setup mode restarts once, by design, after the keys are enrolled.
	cfg.NoReboot = !cfg.Firmware.Setup
	answers, _ := consoleActions(f, cfg.Machine == qemu.MachineLaptop)
	var serialIn *os.File
	if len(answers) > 0 && cfg.Machine != qemu.MachineLaptop {
		// An *os.File QEMU inherits (exec would otherwise copy into it
		// and wait for the copy).
		pr, pw, err := os.Pipe()
		if err != nil {
			return err
		}
		defer pr.Close()
		defer pw.Close()
		cfg.Stdin, serialIn = pr, pw
	}
	start := time.Now()
	m, err := qemu.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer m.Kill()
	announce(e, m)
	// answerErr reports when the console actions are done; nil (never
	// ready) when there are none, or once they are.
	var answerErr chan error
	var left waiting
	if len(answers) > 0 {
		answerErr = make(chan error, 1)
		actx, stop := context.WithCancel(ctx)
		defer stop()
		go func() { answerErr <- answerPrompts(actx, e.stdout, con, m, serialIn, answers, &left) }()
	}

	fail := func(format string, a ...any) error {
		fmt.Fprintf(e.stderr, "thinhost: check failed: "+format+"\n", a...)
		fmt.Fprintf(e.stderr, "--- last %d console lines ---\n", consoleTail)
		for _, l := range con.Tail() {
			fmt.Fprintln(e.stderr, l)
		}
		fmt.Fprintln(e.stderr, "---")
		return errReported
	}

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for waiting := true; waiting; {
		select {
		case <-con.Ready():
			waiting = false
		case err := <-answerErr:
			if err != nil {
				return fail("%v", err)
			}
			answerErr = nil // all typed; a nil channel is never ready
		case <-con.Await(shimRefusal):
			return fail("Secure Boot refused the boot chain: shim found a loader or kernel not signed by a key it trusts (%q on the console)", shimRefusal)
		case <-con.Await(firmwareRefusal):
			return fail("Secure Boot refused the boot chain: the firmware found a loader or kernel image not signed by a key it trusts (%q on the console)", firmwareRefusal)
		case <-m.Done():
			return fail("QEMU exited before hostd was ready (%v)", m.Wait())
		case <-timer.C:
			return fail("hostd was not ready within %s", timeout)
		case <-ctx.Done():
			return fail("interrupted before hostd was ready")
		}
	}
	ready := time.Since(start)
	fmt.Fprintf(e.stdout, "ready in %.1fs (%s)\n", ready.Seconds(), accelName(m.Spec.Accel))
	for _, prefix := range statusPrefixes {
		for _, l := range con.Matching(prefix) {
			fmt.Fprintln(e.stdout, strings.TrimPrefix(l, "thinhost: "))
		}
	}

	for _, text := range f.waitFor {
		select {
		case <-con.Await(text):
		case <-m.Done():
			return fail("QEMU exited before the console showed %q (%v)", text, m.Wait())
		case <-timer.C:
			return fail("the console did not show %q within %s", text, timeout)
		case <-ctx.Done():
			return fail("interrupted while waiting for %q", text)
		}
		fmt.Fprintf(e.stdout, "seen %q after %.1fs\n", text, time.Since(start).Seconds())
	}
	if f.plugUSB != "" {
		// hostd says where the stick went (a guest, or kept by the host)
		// on its console; given to a guest, it says when it took it back.
		// poll waits until found says yes, for what, within --timeout;
		// notDone is said when it does not come.
		poll := func(found func() (string, bool), what, notDone string) (string, error) {
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				if l, ok := found(); ok {
					return l, nil
				}
				select {
				case <-tick.C:
				case <-m.Done():
					return "", fmt.Errorf("QEMU exited before %s (%v)", what, m.Wait())
				case <-timer.C:
					return "", fmt.Errorf("%s within %s", notDone, timeout)
				case <-ctx.Done():
					return "", fmt.Errorf("interrupted before %s", what)
				}
			}
		}
		await := func(text, what string) (string, error) {
			return poll(func() (string, bool) {
				// hostd's console line, not its log line of the same event.
				for _, l := range con.Matching("") {
					if i := strings.Index(l, "thinhost: usb "); i >= 0 && strings.Contains(l[i:], text) {
						return strings.TrimSpace(l[i:]), true
					}
				}
				return "", false
			}, what, "hostd did not say "+what)
		}
		seenBefore := con.Count(f.usbSeen)
		if err := m.PlugUSB(f.plugUSB); err != nil {
			return fail("%v", err)
		}
		line, err := await("plugged in:", "where the plugged-in stick went")
		if err != nil {
			return fail("%v", err)
		}
		fmt.Fprintln(e.stdout, strings.TrimPrefix(line, "thinhost: "))
		if f.usbSeen != "" {
			if _, err := poll(func() (string, bool) { return "", con.Count(f.usbSeen) > seenBefore },
				fmt.Sprintf("the console showed %q", f.usbSeen), fmt.Sprintf("the console did not show %q", f.usbSeen)); err != nil {
				return fail("%v", err)
			}
			fmt.Fprintf(e.stdout, "seen %q after %.1fs\n", f.usbSeen, time.Since(start).Seconds())
		}
		if err := m.UnplugUSB(); err != nil {
			return fail("%v", err)
		}
		if strings.Contains(line, "given to vm") {
			if line, err = await("device unplugged", "that it took the stick back"); err != nil {
				return fail("%v", err)
			}
			fmt.Fprintln(e.stdout, strings.TrimPrefix(line, "thinhost: "))
		}
	}
	if len(f.sendKeys) > 0 {
		if err := m.SendKeys(f.sendKeys...); err != nil {
			return fail("%v", err)
		}
		fmt.Fprintf(e.stdout, "keys sent: %s\n", strings.Join(f.sendKeys, ","))
	}
	if f.screenshot != "" {
		select {
		case <-time.After(f.shotDelay):
		case <-m.Done():
			return fail("QEMU exited before the screenshot (%v)", m.Wait())
		case <-ctx.Done():
			return fail("interrupted before the screenshot")
		}
		if err := m.Screenshot(f.screenshot); err != nil {
			return fail("%v", err)
		}
		fmt.Fprintf(e.stdout, "screenshot %s\n", f.screenshot)
	}

	if answerErr != nil {
		// Every --answer, --press and --screenshot-at is done before the
		// power button.
		select {
		case err := <-answerErr:
			if err != nil {
				return fail("%v", err)
			}
		case <-m.Done():
			return fail("QEMU exited before the console showed every prompt (%v)", m.Wait())
		case <-timer.C:
			return fail("the console did not show the prompts of %s within %s", left.String(), timeout)
		case <-ctx.Done():
			return fail("interrupted while waiting for the prompts")
		}
	}

	offStart := time.Now()
	if err := m.Powerdown(); err != nil {
		return fail("press the power button: %v", err)
	}
	select {
	case <-m.Done():
	case <-time.After(offTimeout):
		return fail("the host did not power off within %s of the ACPI power button", offTimeout)
	case <-ctx.Done():
		return fail("interrupted while waiting for power-off")
	}
	if err := m.Wait(); err != nil {
		return fail("QEMU exited with %v after the power button", err)
	}
	if !con.Seen("thinhost: powering off") {
		return fail("QEMU exited, but hostd never said it was powering off")
	}
	fmt.Fprintf(e.stdout, "powered off cleanly in %s\n", time.Since(offStart).Round(time.Millisecond))
	// hostd's health at ready and at power-off: a host that came up
	// without its data partition, or with a service or guest failing, is
	// not a host that works.
	health := con.Matching(api.HealthPrefix)
	if len(health) == 0 {
		return fail("hostd printed no health line (an image from an older thinhost? rebuild it)")
	}
	for _, l := range health {
		if l != api.HealthOK {
			return fail("the host is degraded: %s", strings.TrimPrefix(l, api.HealthPrefix+"DEGRADED: "))
		}
	}
	return nil
}

// answer is one action on a console prompt: an --answer (text and
// Enter), a --press (keys) or a --screenshot-at (a file).
type answer struct {
	prompt string
	text   string
	// keys are the laptop keyboard's key combinations: text and Enter,
	// or a --press's.
	keys []string
	// shot is a --screenshot-at's file; press is set for a --press.
	shot  string
	press bool
}

// consoleActions reads f's --answer, --press and --screenshot-at.
func consoleActions(f runFlags, laptop bool) ([]answer, error) {
	var out []answer
	for _, a := range f.answers {
		an, err := parseAnswer(a, laptop)
		if err != nil {
			return nil, err
		}
		out = append(out, an)
	}
	for _, p := range f.presses {
		prompt, keys, ok := strings.Cut(p, "=")
		if !ok || prompt == "" || keys == "" {
			return nil, fmt.Errorf("--press %q: want PROMPT=KEYS, such as 'password: =ret' or 'ready=ctrl-alt-shift-f12,ret'", p)
		}
		a := answer{prompt: prompt, keys: strings.Split(keys, ","), press: true}
		for _, k := range a.keys {
			if _, err := qemu.ParseKeyCombo(k); err != nil {
				return nil, fmt.Errorf("--press: %w", err)
			}
		}
		out = append(out, a)
	}
	for _, p := range f.shotsAt {
		prompt, file, ok := strings.Cut(p, "=")
		if !ok || prompt == "" || file == "" {
			return nil, fmt.Errorf("--screenshot-at %q: want PROMPT=FILE, such as 'panel: back to=panel.png'", p)
		}
		out = append(out, answer{prompt: prompt, shot: file})
	}
	return out, nil
}

// parseAnswer reads PROMPT=TEXT; on the laptop, TEXT must be typeable on
// a US keyboard.
func parseAnswer(s string, laptop bool) (answer, error) {
	prompt, text, ok := strings.Cut(s, "=")
	if !ok || prompt == "" {
		return answer{}, fmt.Errorf("--answer %q: want PROMPT=TEXT, such as 'passphrase: =correct horse'", s)
	}
	if strings.ContainsAny(text, "\r\n") {
		return answer{}, fmt.Errorf("--answer %q: one line of text (Enter is typed after it)", s)
	}
	a := answer{prompt: prompt, text: text}
	if laptop {
		keys, err := qemu.TextKeys(text)
		if err != nil {
			return answer{}, fmt.Errorf("--answer: %w", err)
		}
		a.keys = append(keys, "ret")
	}
	return a, nil
}

// kind names an action's flag.
func (a answer) kind() string {
	switch {
	case a.shot != "":
		return "--screenshot-at"
	case a.press:
		return "--press"
	}
	return "--answer"
}

// waiting lists the actions whose prompts have not come yet.
type waiting struct {
	mu   sync.Mutex
	left []string
}

func (w *waiting) set(actions []answer, done []bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.left = w.left[:0]
	for i, a := range actions {
		if !done[i] {
			w.left = append(w.left, fmt.Sprintf("%s %q", a.kind(), a.prompt))
		}
	}
}

func (w *waiting) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.left, ", ")
}

// answerPrompts does each action once the console shows its prompt (the
// n-th time, for a prompt that n actions of one flag name): an answer
// typed on the serial console (serial) or the laptop's keyboard, keys
// pressed, the panel saved. Actions whose prompts have come are done in
// the order given; each waits for its own prompt only. left says which
// still wait.
func answerPrompts(ctx context.Context, stdout io.Writer, con *qemu.Console, m *qemu.Machine, serial *os.File, actions []answer, left *waiting) error {
	nth := make([]int, len(actions))
	seen := map[string]int{}
	for i, a := range actions {
		k := a.kind() + "\x00" + a.prompt
		seen[k]++
		nth[i] = seen[k]
	}
	done := make([]bool, len(actions))
	left.set(actions, done)
	for n := len(actions); n > 0; {
		for i, a := range actions {
			if done[i] || con.Count(a.prompt) < nth[i] {
				continue
			}
			done[i] = true
			n--
			left.set(actions, done)
			switch {
			case a.shot != "":
				select {
				case <-time.After(time.Second):
				case <-ctx.Done():
					return nil
				}
				if err := m.Screenshot(a.shot); err != nil {
					return fmt.Errorf("screenshot at %q: %w", a.prompt, err)
				}
				fmt.Fprintf(stdout, "screenshot %s at %q\n", a.shot, a.prompt)
			case serial != nil:
				if _, err := serial.WriteString(a.text + "\n"); err != nil {
					return fmt.Errorf("answer %q on the serial console: %w", a.prompt, err)
				}
			default:
				if err := m.SendKeys(a.keys...); err != nil {
					return fmt.Errorf("answer %q on the laptop's keyboard: %w", a.prompt, err)
				}
				if a.press {
					fmt.Fprintf(stdout, "pressed %s at %q\n", strings.Join(a.keys, ","), a.prompt)
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-m.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

func accelName(a string) string {
	if a == qemu.AccelKVM {
		return "KVM"
	}
	return "TCG"
}

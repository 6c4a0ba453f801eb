package vm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/thinhost/thinhost/hostd/api"
	"github.com/thinhost/thinhost/hostd/guestdrive"
	"github.com/thinhost/thinhost/hostd/supervise"
	"github.com/thinhost/thinhost/images/layout/config"
	"github.com/thinhost/thinhost/internal/fsutil"
	"github.com/thinhost/thinhost/internal/qga"
	"github.com/thinhost/thinhost/internal/qmpc"
	"github.com/thinhost/thinhost/internal/sysmem"
)

// Status is one guest as the API reports it.
type Status = api.VM

// Actions are what the API and `thinhost ctl vm` may ask of a guest.
var Actions = api.VMActions

// ErrUnknown means no guest has that name; ErrNoSnapshot that reset was
// asked before any snapshot (the API's errors).
var (
	ErrUnknown    = api.ErrNoVM
	ErrNoSnapshot = api.ErrNoSnapshot
)

// Program runs a program of the system image: the path to execute and the
// arguments before the program's own. hostd runs them through the system
// image's dynamic loader.
type Program func(program string, args ...string) (path string, argv []string)

// Manager runs the host's guests.
type Manager struct {
	Log  *slog.Logger
	Sup  *supervise.Supervisor
	Host Host
	// Program maps a system-image program to a command.
	Program Program
	// Env is the environment of QEMU and swtpm.
	Env []string
	// StateDir holds one directory per guest (on the data partition);
	// RunDir their sockets.
	StateDir, RunDir string
	// Notes are said about every guest (such as "KVM unusable: TCG").
	Notes []string
	// Helper returns the files a Windows guest finds on its THINHOST
	// drive (guestdrive.Files with the host's configuration); nil or
	// empty: no drive.
	Helper func(guestdrive.Guest) (map[string]string, error)
	// Panel is the host's screen and keyboard, which a guest with display
	// = "sdl" takes while it runs; nil: none.
	Panel Panel
	// Protected returns the USB devices ("vvvv:pppp") no guest may take:
	// the one holding the host's boot disk. A guest's passthrough of one
	// of them is left out, with a warning. nil: none.
	Protected func() []string
	// ShutByItself, when set, is told the name of a guest that shut itself
	// down (QEMU exited 0 without hostd asking: Windows' Start menu).
	ShutByItself func(name string)
	// Link, when set, names a guest's tap device on the host-only link
	// (false: none).
	Link func(name string) (tap string, ok bool)
	// Notify, when set, gets a line for the console about what a guest
	// cannot show (QEMU's events: paused on a full disk, crashed).
	Notify func(line string)

	mu     sync.Mutex // serialises actions
	guests []*guest
	// stopping is set once StopAll ran: the host is shutting down.
	stopping bool

	// tokens are the SHA-256 of each guest's own API token, by guest,
	// as read or made (apiToken); under tokMu, apart from mu, which an
	// action may hold for long.
	tokMu  sync.Mutex
	tokens map[string][sha256.Size]byte
}

// Panel is what a guest on the host's screen takes from the host.
type Panel interface {
	Take(vm string)
	Give(vm string)
}

type guest struct {
	spec  config.VM
	paths Paths
	// discard is set while a reset stops the guest: its state is thrown
	// away, so no ACPI shutdown is asked of it.
	discard atomic.Bool

	// What QEMU's events said (watchEvents): the standing problem, and
	// whether it is a pause for lack of space; the recent events.
	evMu    sync.Mutex
	problem string
	noSpace bool
	events  []string

	// busy says what long work runs on the guest's files without the
	// manager's lock (a snapshot merging its overlay), with its progress
	// in percent and how to interrupt it; "" when none (guarded by evMu).
	busy       string
	progress   int
	cancelBusy context.CancelFunc
}

// ErrBusy means a guest's files are in the middle of long work (a
// snapshot merging its overlay): other actions on it wait for it.
var ErrBusy = api.ErrVMBusy

// busyErr is ErrBusy with what runs, or nil when the guest is idle.
func (g *guest) busyErr() error {
	g.evMu.Lock()
	defer g.evMu.Unlock()
	if g.busy == "" {
		return nil
	}
	return fmt.Errorf("vm %s: %w: %s (%d%%)", g.spec.Name, ErrBusy, g.busy, g.progress)
}

// NewManager returns a manager for specs.
func NewManager(m *Manager, specs []config.VM) *Manager {
	for _, s := range specs {
		m.guests = append(m.guests, &guest{spec: s, paths: GuestPaths(m.StateDir, m.RunDir, s.Name)})
	}
	return m
}

func (m *Manager) find(name string) (*guest, error) {
	for _, g := range m.guests {
		if g.spec.Name == name {
			return g, nil
		}
	}
	return nil, fmt.Errorf("vm %q: %w", name, ErrUnknown)
}

// findIdle is find for an action that touches the guest's files: refused
// while a snapshot merges its overlay.
func (m *Manager) findIdle(name string) (*guest, error) {
	g, err := m.find(name)
	if err != nil {
		return nil, err
	}
	return g, g.busyErr()
}

func vmService(name string) string    { return api.VMService(name) }
func swtpmService(name string) string { return api.TPMService(name) }

// Autostart starts every guest marked autostart, in profile order, and
// returns why those that did not start did not.
func (m *Manager) Autostart(ctx context.Context) []error {
	var errs []error
	for _, g := range m.guests {
		if g.spec.Autostart {
			if err := m.Start(ctx, g.spec.Name); err != nil {
				errs = append(errs, fmt.Errorf("start vm %s: %w", g.spec.Name, err))
			}
		}
	}
	return errs
}

// Do runs one of Actions on the named guest and says what it did.
func (m *Manager) Do(ctx context.Context, name, action string) (string, error) {
	switch action {
	case "start":
		return "started " + name, m.Start(ctx, name)
	case "stop":
		was := m.Sup.Running(vmService(name))
		if err := m.Stop(name); err != nil {
			return "", err
		}
		if !was {
			return name + " was not running", nil
		}
		return "stopped " + name, nil
	case "snapshot", "force-snapshot":
		return "snapshot of " + name + " taken: later writes go to an overlay", m.Snapshot(ctx, name, action == "force-snapshot")
	case "reset":
		return name + " reset to its snapshot and started", m.Reset(ctx, name)
	case "vnc-password", "new-vnc-password":
		return m.VNCPassword(name, action == "new-vnc-password")
	case "setup-password":
		return m.SetupPasswordText(name)
	case "install-on", "install-off":
		on := action == "install-on"
		return fmt.Sprintf("install mode of %s %s (from its next start)", name, map[bool]string{true: "on", false: "off"}[on]), m.SetInstall(name, on)
	}
	return "", fmt.Errorf("vm %s: unknown action %q (one of %s)", name, action, strings.Join(Actions, ", "))
}

// Start prepares the guest's state (creating its disk, UEFI variables and
// TPM state on first start), starts swtpm if it has a TPM, then QEMU.
func (m *Manager) Start(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, err := m.findIdle(name)
	if err != nil {
		return err
	}
	return m.start(ctx, g)
}

func (m *Manager) start(ctx context.Context, g *guest) error {
	name := g.spec.Name
	if m.Sup.Running(vmService(name)) {
		return fmt.Errorf("start vm %s: %w", name, supervise.ErrRunning)
	}
	if err := m.prepare(ctx, g); err != nil {
		return fmt.Errorf("prepare vm %s: %w", name, err)
	}
	st := m.state(g)
	if m.Link != nil && g.spec.Network == "user" {
		st.Tap, _ = m.Link(name)
	}
	if err := m.writeHelper(g, &st); err != nil {
		return fmt.Errorf("prepare vm %s: %w", name, err)
	}
	if g.spec.TPM {
		if err := m.startTPM(ctx, g); err != nil {
			return err
		}
	}
	spec := g.spec
	spec.USB = m.allowedUSB(name, spec.USB)
	argv := Args(&spec, m.Host, g.paths, st)
	path, pre := m.Program(QEMUBinary, argv...)
	res := Size(&g.spec, m.Host)
	m.Log.Info("starting vm", "vm", name, "accel", accel(m.Host), "memory_mib", res.MemMiB, "cpus", res.CPUs,
		"install", st.Install, "overlay", st.Overlay)
	for _, n := range append(append([]string(nil), m.Notes...), res.Notes...) {
		m.Log.Warn("vm note", "vm", name, "note", n)
	}
	_ = os.Remove(g.paths.QMP())
	svc := supervise.Service{
		Name: vmService(name), Path: path, Args: pre, Env: m.Env,
		Graceful: func() error {
			if g.discard.Load() {
				return supervise.ErrSkipGraceful
			}
			return qmpRun(g.paths.QMP(), "system_powerdown")
		},
		GracefulTimeout: time.Duration(g.spec.ShutdownTimeout) * time.Second,
		StopTimeout:     10 * time.Second,
		DoneOnSuccess:   true,
		Finished: func() {
			m.Log.Info("vm shut down by itself", "vm", name)
			if m.ShutByItself != nil {
				m.ShutByItself(name)
			}
		},
		MinBackoff: 2 * time.Second, MaxBackoff: time.Minute, StableAfter: time.Minute,
	}
	onPanel := g.spec.Display == "sdl" && m.Panel != nil
	if onPanel {
		m.Panel.Take(name)
	}
	if err := os.WriteFile(g.paths.Running(), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		return fmt.Errorf("start vm %s: %w", name, err)
	}
	if err := m.Sup.Start(context.WithoutCancel(ctx), svc); err != nil {
		if onPanel {
			m.Panel.Give(name)
		}
		m.stopTPM(g)
		return err
	}
	done := m.Sup.Done(vmService(name))
	g.evMu.Lock()
	g.problem, g.noSpace = "", false
	g.evMu.Unlock()
	go m.watch(g, done, st.Install)
	go m.watchEvents(g, done)
	return nil
}

// watch follows a running guest: in install mode it answers the install
// CD's "press any key" while the disk is empty, ends install mode once
// the guest boots from its disk (or, with a windows block, once the setup
// script says it has finished), and it stops swtpm when the guest has
// shut down.
func (m *Manager) watch(g *guest, done <-chan struct{}, install bool) {
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	var iw InstallWatch
	// The setup script's marker, read through the guest agent, ends the
	// unattended install; the read counters end any other.
	unattended := install && g.spec.Windows != nil
	if install && strings.HasPrefix(g.spec.OS, "windows") && m.diskEmpty(g) {
		go m.pressAnyKey(g, done)
	}
	for {
		select {
		case <-done:
			m.mu.Lock()
			if !m.Sup.Running(vmService(g.spec.Name)) {
				m.noteStop(g)
				m.stopTPM(g)
				if m.Panel != nil {
					m.Panel.Give(g.spec.Name)
				}
				m.Log.Info("vm stopped", "vm", g.spec.Name)
			}
			m.mu.Unlock()
			return
		case <-tick.C:
		}
		if unattended && m.setupFinished(g) {
			unattended, install = false, false
			m.finishInstall(g, done)
			continue
		}
		if !install {
			continue
		}
		stats, err := blockStats(g.paths.QMP())
		if err != nil {
			continue
		}
		if iw.Observe(stats) {
			install = false
			// An unattended install stays in install mode until its
			// setup script is done: a restart before the first logon
			// still needs the THINHOST and drivers CDs.
			if unattended {
				m.Log.Info("vm booted from its disk without the installer: its CD goes, install mode stays until the setup script is done", "vm", g.spec.Name)
			} else if err := os.Remove(g.paths.InstallMarker()); err == nil {
				m.Log.Info("vm booted from its disk without the installer: install mode ends", "vm", g.spec.Name)
			}
			// The installer's CD goes (a reboot cannot start setup
			// again); the drivers' and the THINHOST CD stay until the
			// guest stops, or until the setup script is done: Windows
			// reads NetKVM, the guest tools and the setup script from
			// them after its first boot from disk.
			if err := EjectInstall(g.paths.QMP()); err != nil {
				m.Log.Warn("eject the install media", "vm", g.spec.Name, "err", err)
			} else {
				m.Log.Info("install media ejected", "vm", g.spec.Name)
			}
		}
	}
}

// diskEmpty says whether g's disk holds nothing yet (a new disk, no
// overlay): the only time the install CD's "press any key" is answered —
// on a disk with Windows, the key would start setup over it.
func (m *Manager) diskEmpty(g *guest) bool {
	return !exists(g.paths.Overlay()) && allocated(g.paths.Disk(g.spec.DiskFormat)) < 1<<20
}

// pressAnyKey answers the Windows install CD's "Press any key to boot
// from CD or DVD" (its boot loader waits a few seconds, then gives up): a
// space bar on the guest's keyboard (QMP send-key) every 700 ms until the
// CD has served 32 MiB (setup's boot image is loading: no prompt any
// more), the guest stops, or a minute has passed.
func (m *Manager) pressAnyKey(g *guest, done <-chan struct{}) {
	deadline := time.Now().Add(time.Minute)
	sent := 0
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return
		case <-time.After(700 * time.Millisecond):
		}
		if stats, err := blockStats(g.paths.QMP()); err == nil && stats["cd0"] >= 32<<20 {
			m.Log.Info("install CD booting", "vm", g.spec.Name, "keys_sent", sent)
			return
		}
		if err := qmpRunArgs(g.paths.QMP(), "send-key", map[string]any{
			"keys": []map[string]any{{"type": "qcode", "data": "spc"}}}); err == nil {
			sent++
		}
	}
	m.Log.Warn("the install CD did not boot within a minute of the guest's start", "vm", g.spec.Name, "keys_sent", sent)
}

// setupFinished asks g's guest agent whether the setup script left its
// marker. No agent (not installed yet: the script installs it) is no.
func (m *Manager) setupFinished(g *guest) bool {
	c, err := qga.Dial(g.paths.QGA(), 2*time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	ok, err := c.Exists(guestdrive.InstalledMarker)
	return ok && err == nil
}

// finishInstall ends an unattended install when its setup script is done,
// unless the QEMU that reported it has ended meanwhile (done: a reset or
// restart took the lock first).
func (m *Manager) finishInstall(g *guest, done <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-done:
		return
	default:
	}
	m.Log.Info("vm setup finished (the setup script's marker, read through the guest agent): install mode ends", "vm", g.spec.Name)
	if err := m.endInstall(g, true); err != nil {
		m.Log.Warn("end install mode", "vm", g.spec.Name, "err", err)
	}
}

// endInstall ends a running guest's install mode (m.mu held): the
// marker goes, the install CD and, with drivers, the drivers CD are
// taken out, and the THINHOST CD is replaced by one without the answer
// file.
func (m *Manager) endInstall(g *guest, drivers bool) error {
	name, sock := g.spec.Name, g.paths.QMP()
	if err := os.Remove(g.paths.InstallMarker()); err != nil && !os.IsNotExist(err) {
		return err
	}
	ids := []string{InstallCD}
	if drivers {
		ids = append(ids, DriversCD)
	}
	var errs []error
	for _, id := range ids {
		if err := qmpRunArgs(sock, "eject", map[string]any{"id": id, "force": true}); err != nil && !strings.Contains(err.Error(), "DeviceNotFound") {
			errs = append(errs, fmt.Errorf("eject %s: %w", id, err))
		}
	}
	if g.spec.Windows != nil {
		st := State{}
		err := m.writeHelper(g, &st)
		if err == nil && st.HelperISO != "" {
			if err = qmpRunArgs(sock, "eject", map[string]any{"id": HelperCD, "force": true}); err == nil {
				err = qmpRunArgs(sock, "blockdev-change-medium", map[string]any{
					"id": HelperCD, "filename": st.HelperISO, "format": "raw", "read-only-mode": "read-only"})
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("replace the THINHOST CD: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("vm %s: %w", name, err)
	}
	m.Log.Info("install media ejected", "vm", name, "drivers_too", drivers, "answer_file_removed", g.spec.Windows != nil)
	return nil
}

// Stop shuts the guest down: ACPI power button, up to its shutdown
// timeout, then QEMU is told to quit (SIGTERM) and killed if it must be.
func (m *Manager) Stop(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, err := m.findIdle(name)
	if err != nil {
		return err
	}
	return m.stop(g)
}

func (m *Manager) stop(g *guest) error {
	name := g.spec.Name
	if m.Sup.Running(vmService(name)) {
		m.Log.Info("stopping vm", "vm", name, "timeout", time.Duration(g.spec.ShutdownTimeout)*time.Second)
		st, err := m.Sup.StopWithStatus(vmService(name))
		if err != nil {
			return err
		}
		if st.Clean {
			_ = os.Remove(g.paths.Running())
		}
	}
	m.stopTPM(g)
	return nil
}

// noteStop clears the guest's Running marker when its QEMU ended cleanly
// by itself (the guest shut down).
func (m *Manager) noteStop(g *guest) {
	for _, st := range m.Sup.Status() {
		if st.Name == vmService(g.spec.Name) && st.Clean {
			_ = os.Remove(g.paths.Running())
		}
	}
}

// ErrUnclean means a snapshot was asked of a guest that did not shut down
// cleanly.
var ErrUnclean = api.ErrUnclean

// Snapshot makes the guest's current disk its read-only base; from then on
// it writes to a qcow2 overlay, which Reset throws away. A running guest
// is shut down for it and started again.
func (m *Manager) Snapshot(ctx context.Context, name string, force bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, err := m.findIdle(name)
	if err != nil {
		return err
	}
	running := m.Sup.Running(vmService(name))
	if err := m.stop(g); err != nil {
		return err
	}
	if exists(g.paths.Running()) {
		if !force {
			err := fmt.Errorf("snapshot vm %s: it %w (killed after its shutdown_timeout, or the host stopped while it ran), so its disk may hold half-written data; shut it down from inside and snapshot again, or snapshot --force", name, ErrUnclean)
			if running {
				if serr := m.start(ctx, g); serr != nil {
					return errors.Join(err, serr)
				}
			}
			return err
		}
		m.Log.Warn("snapshot of a guest that did not shut down cleanly, as asked (--force)", "vm", name)
		_ = os.Remove(g.paths.Running())
	}
	if err := m.prepare(ctx, g); err != nil {
		return fmt.Errorf("prepare vm %s: %w", name, err)
	}
	disk := g.paths.Disk(g.spec.DiskFormat)
	if exists(g.paths.Overlay()) {
		// The current disk is base + overlay: fold the overlay in. A
		// large overlay takes minutes: the manager's lock is let go
		// meanwhile (the other guests' actions, the status), and this
		// guest is busy, with the merge's progress in its status. An
		// interrupted merge leaves base and overlay reading as before.
		_ = os.Chmod(disk, 0o644)
		cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		g.evMu.Lock()
		g.busy, g.progress, g.cancelBusy = "snapshot: merging the overlay into the base", 0, cancel
		g.evMu.Unlock()
		m.mu.Unlock()
		err := m.runProgress(cctx, func(p int) {
			g.evMu.Lock()
			g.progress = p
			g.evMu.Unlock()
		}, "/usr/bin/qemu-img", "commit", "-p", g.paths.Overlay())
		m.mu.Lock()
		cancel()
		g.evMu.Lock()
		g.busy, g.progress, g.cancelBusy = "", 0, nil
		g.evMu.Unlock()
		if err != nil {
			return fmt.Errorf("snapshot vm %s: %w", name, err)
		}
		if m.stopping {
			return fmt.Errorf("snapshot vm %s: the host is shutting down; the overlay was merged, the snapshot is not taken", name)
		}
	}
	if err := m.newOverlay(ctx, g); err != nil {
		return fmt.Errorf("snapshot vm %s: %w", name, err)
	}
	if err := os.Chmod(disk, 0o444); err != nil {
		return fmt.Errorf("snapshot vm %s: %w", name, err)
	}
	// The machine's other state goes with the disk: Windows keeps boot
	// entries in the UEFI variables and BitLocker's and Hello's keys in
	// the TPM, which a disk from another time would not match.
	if err := saveMachineState(g.paths); err != nil {
		return fmt.Errorf("snapshot vm %s: %w", name, err)
	}
	m.Log.Info("vm snapshot taken", "vm", name, "base", disk)
	if running {
		return m.start(ctx, g)
	}
	return nil
}

// Reset throws the overlay away — every write since the snapshot — and
// starts the guest again from its base. The shares are not touched.
func (m *Manager) Reset(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, err := m.findIdle(name)
	if err != nil {
		return err
	}
	if !exists(g.paths.Overlay()) {
		return fmt.Errorf("reset vm %s: %w", name, ErrNoSnapshot)
	}
	// The guest's state is being thrown away: no ACPI shutdown, QEMU
	// ends on SIGTERM.
	if m.Sup.Running(vmService(name)) {
		m.Log.Info("stopping vm for reset", "vm", name)
		g.discard.Store(true)
		err := m.Sup.Stop(vmService(name))
		g.discard.Store(false)
		if err != nil {
			return err
		}
	}
	m.stopTPM(g)
	if err := m.newOverlay(ctx, g); err != nil {
		return fmt.Errorf("reset vm %s: %w", name, err)
	}
	restored, err := restoreMachineState(g.paths)
	if err != nil {
		return fmt.Errorf("reset vm %s: %w", name, err)
	}
	if !restored {
		m.Log.Warn("the snapshot predates saving UEFI variables and TPM state: only the disk was reset", "vm", name)
	}
	m.Log.Info("vm reset to its snapshot", "vm", name)
	return m.start(ctx, g)
}

// SetInstall turns install mode on or off from the guest's next start.
func (m *Manager) SetInstall(name string, on bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, err := m.findIdle(name)
	if err != nil {
		return err
	}
	if !on {
		if err := os.Remove(g.paths.InstallMarker()); err != nil && !os.IsNotExist(err) {
			return err
		}
		// A running guest loses the installer's CD now, not at its next
		// start, and its THINHOST CD the answer file; the drivers CD
		// stays until it stops.
		if m.Sup.Running(vmService(name)) && g.spec.InstallMedia != "" {
			return m.endInstall(g, false)
		}
		return nil
	}
	if g.spec.InstallMedia == "" {
		return fmt.Errorf("vm %s has no install_media in its profile", name)
	}
	if err := os.MkdirAll(g.paths.Dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(g.paths.InstallMarker(), []byte("install\n"), 0o644)
}

// StopAll stops every running guest (in reverse order), for a host
// shutdown that does not go through the supervisor.
func (m *Manager) StopAll() {
	// A merge under way is interrupted (base and overlay still read as
	// before): the data partition is about to be unmounted.
	for _, g := range m.guests {
		g.evMu.Lock()
		if g.cancelBusy != nil {
			g.cancelBusy()
		}
		g.evMu.Unlock()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopping = true
	for i := len(m.guests) - 1; i >= 0; i-- {
		_ = m.stop(m.guests[i])
	}
}

// Status reports every guest.
func (m *Manager) Status() []Status {
	byName := map[string]supervise.Status{}
	for _, s := range m.Sup.Status() {
		byName[s.Name] = s
	}
	out := []Status{}
	for _, g := range m.guests {
		res := Size(&g.spec, m.Host)
		st := Status{Name: g.spec.Name, OS: g.spec.OS, State: "stopped", Accel: accel(m.Host),
			MemoryMiB: res.MemMiB, CPUs: res.CPUs, Display: g.spec.Display,
			Notes: append(append([]string(nil), m.Notes...), res.Notes...)}
		if g.spec.Display == "vnc" {
			st.Display = "vnc " + g.spec.VNC
		}
		if s, ok := byName[vmService(g.spec.Name)]; ok {
			st.State, st.Pid, st.Restarts, st.LastExit = string(s.State), s.Pid, s.Restarts, s.LastExit
			if s.Pid > 0 {
				if r, err := sysmem.ReadRollup("/proc", s.Pid); err == nil {
					st.MemoryUsedBytes, st.MemoryHugeBytes = r.Anonymous, r.AnonHuge
				}
			}
		}
		g.evMu.Lock()
		st.Problem, st.Events = g.problem, append([]string(nil), g.events...)
		if g.busy != "" {
			st.Busy = fmt.Sprintf("%s, %d%%", g.busy, g.progress)
		}
		g.evMu.Unlock()
		s := m.state(g)
		st.Install = s.Install
		st.DiskBytes = allocated(g.paths.Disk(g.spec.DiskFormat))
		if s.Overlay {
			st.OverlayBytes = allocated(g.paths.Overlay())
			if fi, err := os.Stat(g.paths.Disk(g.spec.DiskFormat)); err == nil {
				st.Snapshot = fi.ModTime().UTC()
			}
		}
		out = append(out, st)
	}
	return out
}

func accel(h Host) string {
	if h.KVM {
		return "kvm"
	}
	return "tcg"
}

// state reads what the guest's files say: install mode, overlay.
func (m *Manager) state(g *guest) State {
	st := State{
		Install: g.spec.InstallMedia != "" && exists(g.paths.InstallMarker()),
		Overlay: exists(g.paths.Overlay()),
		// A disk from before the bus was recorded is virtio's.
		DiskBus: "virtio",
	}
	if b, err := os.ReadFile(g.paths.DiskBusFile()); err == nil && strings.TrimSpace(string(b)) == "sata" {
		st.DiskBus = "sata"
	}
	return st
}

// prepare creates what a guest needs on first start: its directories, its
// disk (install mode on when it has install media), its UEFI variable
// store and TPM state directory. Existing files are never replaced.
func (m *Manager) prepare(ctx context.Context, g *guest) error {
	for _, d := range []string{g.paths.Dir, g.paths.RunDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	disk := g.paths.Disk(g.spec.DiskFormat)
	if !exists(disk) {
		m.Log.Info("creating vm disk", "vm", g.spec.Name, "disk", disk, "size_mib", g.spec.DiskSize>>20)
		bus := DiskBusFor(&g.spec)
		if err := os.WriteFile(g.paths.DiskBusFile(), []byte(bus+"\n"), 0o644); err != nil {
			return err
		}
		if err := m.run(ctx, "/usr/bin/qemu-img", "create", "-q", "-f", g.spec.DiskFormat, disk, fmt.Sprint(g.spec.DiskSize)); err != nil {
			return err
		}
		m.Log.Info("vm disk made", "vm", g.spec.Name, "bus", bus)
		if g.spec.InstallMedia != "" {
			if err := os.WriteFile(g.paths.InstallMarker(), []byte("install\n"), 0o644); err != nil {
				return err
			}
		}
	}
	if strings.HasPrefix(g.spec.Firmware, "uefi") && !exists(g.paths.Vars()) {
		tmpl := VarsTemplate(&g.spec, m.Host.Root)
		if err := fsutil.CopyFile(m.Host.Root+tmpl, g.paths.Vars()); err != nil {
			return fmt.Errorf("create UEFI variables: %w", err)
		}
		m.Log.Info("vm UEFI variables made", "vm", g.spec.Name, "from", tmpl)
	}
	if g.spec.TPM {
		if err := os.MkdirAll(g.paths.TPMState(), 0o700); err != nil {
			return err
		}
	}
	if g.spec.Display == "vnc" && VNCPassworded(g.spec.VNC) {
		if _, err := m.vncPassword(g, false); err != nil {
			return err
		}
	}
	return nil
}

// vncPassword returns g's VNC password, making one when it has none or
// when renew asks: 8 characters (all VNC's authentication reads: 40
// bits of crypto/rand's base32 text), kept 0600 in the guest's directory on the data partition, never
// in the image and never logged.
func (m *Manager) vncPassword(g *guest, renew bool) (string, error) {
	file := g.paths.VNCSecret()
	if !renew {
		if b, err := os.ReadFile(file); err == nil && len(b) == 8 {
			return string(b), nil
		}
	}
	raw := []byte(rand.Text()[:8])
	if err := os.MkdirAll(g.paths.Dir, 0o755); err != nil {
		return "", fmt.Errorf("store the VNC password of %s: %w", g.spec.Name, err)
	}
	if err := fsutil.WriteFile(file, bytes.NewReader(raw), 0o600, nil); err != nil {
		return "", fmt.Errorf("store the VNC password of %s: %w", g.spec.Name, err)
	}
	m.Log.Info("vm vnc password made", "vm", g.spec.Name, "file", file, "read_with", "thinhost ctl vm "+g.spec.Name+" vnc-password")
	return string(raw), nil
}

// VNCPassword says where guest name's VNC display listens and its
// password; with renew, it makes a new password first, which a running
// guest takes at once (QMP change-vnc-password: clients already connected
// stay).
func (m *Manager) VNCPassword(name string, renew bool) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, err := m.find(name)
	if err != nil {
		return "", err
	}
	switch {
	case g.spec.Display != "vnc":
		return "", fmt.Errorf("vm %s has no VNC display (display = %q)", name, g.spec.Display)
	case !VNCPassworded(g.spec.VNC):
		return "", fmt.Errorf("vm %s's VNC display listens on %s, loopback, without a password: reach it through a forward", name, g.spec.VNC)
	}
	pw, err := m.vncPassword(g, renew)
	if err != nil {
		return "", err
	}
	if renew && m.Sup.Running(vmService(name)) {
		if err := qmpRunArgs(g.paths.QMP(), "change-vnc-password", map[string]any{"password": pw}); err != nil {
			return "", fmt.Errorf("give vm %s its new VNC password: %w (it takes it at its next start)", name, err)
		}
	}
	return fmt.Sprintf("vnc %s password %s", g.spec.VNC, pw), nil
}

// writeHelper writes the THINHOST CD of a Windows guest into its run
// directory and sets st.HelperISO; in install mode with a windows block,
// the CD carries the answer file and the guest's one-time setup password.
func (m *Manager) writeHelper(g *guest, st *State) error {
	if m.Helper == nil || !strings.HasPrefix(g.spec.OS, "windows") {
		return nil
	}
	tok, err := m.apiToken(g)
	if err != nil {
		return err
	}
	dg := guestdrive.Guest{VM: &g.spec, Install: st.Install, APIToken: tok}
	if st.Install && g.spec.Windows != nil {
		pw, err := m.setupPassword(g)
		if err != nil {
			return err
		}
		dg.SetupPassword = pw
	}
	files, err := m.Helper(dg)
	if err != nil || len(files) == 0 {
		return err
	}
	if err := guestdrive.WriteISO(g.paths.HelperISO(), files); err != nil {
		return err
	}
	m.Log.Info("vm helper drive written", "vm", g.spec.Name, "files", strings.Join(slices.Sorted(maps.Keys(files)), ","))
	st.HelperISO = g.paths.HelperISO()
	return nil
}

// apiToken returns g's own API token (GuestMay says what it reaches),
// making it the first time: crypto/rand's text (26 characters of base32,
// 128 bits), kept 0600 beside the guest's disk, never logged. The
// guest finds it on its THINHOST drive, for thinhost ctl.
func (m *Manager) apiToken(g *guest) (string, error) {
	file := g.paths.APIToken()
	b, err := os.ReadFile(file)
	if err != nil || len(b) != tokenLength {
		b = []byte(rand.Text())
		if err := fsutil.WriteFile(file, bytes.NewReader(b), 0o600, nil); err != nil {
			return "", fmt.Errorf("store the API token of vm %s: %w", g.spec.Name, err)
		}
		m.Log.Info("vm api token made", "vm", g.spec.Name, "file", file)
	}
	m.tokMu.Lock()
	if m.tokens == nil {
		m.tokens = map[string][sha256.Size]byte{}
	}
	m.tokens[g.spec.Name] = sha256.Sum256(b)
	m.tokMu.Unlock()
	return string(b), nil
}

// tokenLength is the length of rand.Text's text.
const tokenLength = 26

// TokenOwner names the guest whose own API token tok is. Every guest's
// is compared, in constant time.
func (m *Manager) TokenOwner(tok string) (string, bool) {
	h := sha256.Sum256([]byte(tok))
	m.tokMu.Lock()
	defer m.tokMu.Unlock()
	owner := ""
	for name, want := range m.tokens {
		if subtle.ConstantTimeCompare(h[:], want[:]) == 1 {
			owner = name
		}
	}
	return owner, owner != ""
}

// setupPassword returns the one-time password of g's setup account,
// making it at the first install start: 16 characters of crypto/rand's
// base32 text (80 bits), kept 0600 on the data partition, never logged.
// Windows asks the user for their own at the first desktop.
func (m *Manager) setupPassword(g *guest) (string, error) {
	file := g.paths.SetupPassword()
	if b, err := os.ReadFile(file); err == nil && len(b) == 16 {
		return string(b), nil
	}
	raw := []byte(rand.Text()[:16])
	if err := fsutil.WriteFile(file, bytes.NewReader(raw), 0o600, nil); err != nil {
		return "", fmt.Errorf("store the setup password of %s: %w", g.spec.Name, err)
	}
	m.Log.Info("vm setup password made", "vm", g.spec.Name, "file", file, "read_with", "thinhost ctl vm "+g.spec.Name+" setup-password")
	return string(raw), nil
}

// SetupPasswordText says guest name's setup account and its one-time
// password, for `ctl vm NAME setup-password`.
func (m *Manager) SetupPasswordText(name string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, err := m.find(name)
	if err != nil {
		return "", err
	}
	if g.spec.Windows == nil {
		return "", fmt.Errorf("vm %s has no windows block: its install is not unattended, and no setup account is made", name)
	}
	b, err := os.ReadFile(g.paths.SetupPassword())
	if err != nil {
		return "", fmt.Errorf("vm %s has no setup password yet: it is made at the guest's first start in install mode", name)
	}
	return fmt.Sprintf("vm %s: account %s, one-time setup password %s (Windows asks for your own at the first desktop)", name, g.spec.Windows.Account, b), nil
}

func (m *Manager) newOverlay(ctx context.Context, g *guest) error {
	tmp := g.paths.Overlay() + ".new"
	_ = os.Remove(tmp)
	// The backing file is named relative to the overlay, so the guest's
	// directory can move.
	// 128 KiB clusters split in 32 subclusters (extended L2 entries): a
	// guest's 4 KiB write copies 4 KiB from the base, not a 64 KiB
	// cluster, and the overlay's tables stay small.
	if err := m.run(ctx, "/usr/bin/qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=128k,extended_l2=on",
		"-b", filepath.Base(g.paths.Disk(g.spec.DiskFormat)), "-F", g.spec.DiskFormat, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, g.paths.Overlay())
}

func (m *Manager) startTPM(ctx context.Context, g *guest) error {
	name := swtpmService(g.spec.Name)
	if m.Sup.Running(name) {
		return nil
	}
	sock := g.paths.TPMSocket()
	_ = os.Remove(sock)
	path, pre := m.Program(SwtpmBinary, SwtpmArgs(g.paths)...)
	if err := m.Sup.Start(context.WithoutCancel(ctx), supervise.Service{Name: name, Path: path, Args: pre, Env: m.Env}); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for !exists(sock) {
		if time.Now().After(deadline) {
			_ = m.Sup.Stop(name)
			return fmt.Errorf("start swtpm for vm %s: no socket %s after 10s", g.spec.Name, sock)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func (m *Manager) stopTPM(g *guest) {
	if m.Sup.Running(swtpmService(g.spec.Name)) {
		_ = m.Sup.Stop(swtpmService(g.spec.Name))
	}
}

// run runs a system-image program to completion.
func (m *Manager) run(ctx context.Context, program string, args ...string) error {
	path, argv := m.Program(program, args...)
	cmd := exec.CommandContext(ctx, path, argv...)
	cmd.Env = m.Env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", filepath.Base(program), strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// runProgress runs a system-image program that reports its progress as
// qemu-img -p does ("    (45.00/100%)", each update ending in a carriage
// return), telling progress each whole percent.
func (m *Manager) runProgress(ctx context.Context, progress func(int), program string, args ...string) error {
	path, argv := m.Program(program, args...)
	cmd := exec.CommandContext(ctx, path, argv...)
	cmd.Env = m.Env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(program), err)
	}
	sc := bufio.NewScanner(out)
	sc.Split(splitProgress)
	last := -1
	for sc.Scan() {
		if p, ok := ParseProgress(sc.Text()); ok && p != last {
			last = p
			progress(p)
		}
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", filepath.Base(program), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// splitProgress splits at carriage returns and newlines.
func splitProgress(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// ParseProgress reads qemu-img's progress line "    (45.00/100%)" as 45.
func ParseProgress(line string) (int, bool) {
	line = strings.TrimSpace(line)
	rest, ok := strings.CutPrefix(line, "(")
	if !ok {
		return 0, false
	}
	num, _, ok := strings.Cut(rest, "/100%)")
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || f > 100 {
		return 0, false
	}
	return int(f), true
}

// InstallWatch decides, from a running guest's cumulative read counters
// sampled over time, that it has booted from its disk without the
// installer: since the install media (cd0) were last read, the disk
// (disk0) has served a boot's worth of reads (256 MiB). Setup reads its
// media throughout its first phase; the firmware's probe after each reset
// reads a little; Windows booting from its disk reads none.
type InstallWatch struct {
	seen             bool
	lastCD, diskBase int64
}

// Observe takes one sample and reports whether install mode can end.
func (w *InstallWatch) Observe(reads map[string]int64) bool {
	cd, disk := reads["cd0"], reads["disk0"]
	if !w.seen || cd != w.lastCD || disk < w.diskBase {
		w.seen, w.lastCD, w.diskBase = true, cd, disk
		return false
	}
	return disk-w.diskBase >= 256<<20
}

func blockStats(sock string) (map[string]int64, error) {
	raw, err := qmpc.Run(sock, "query-blockstats", nil)
	if err != nil {
		return nil, err
	}
	var resp struct {
		Return []struct {
			Device string `json:"device"`
			Stats  struct {
				RdBytes int64 `json:"rd_bytes"`
			} `json:"stats"`
		} `json:"return"`
	}
	if err := json.Unmarshal(raw, &resp); err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, r := range resp.Return {
		out[r.Device] = r.Stats.RdBytes
	}
	return out, nil
}

// saveMachineState copies the guest's UEFI variables and TPM state, those
// it has, beside its snapshot.
func saveMachineState(p Paths) error {
	if err := os.MkdirAll(filepath.Dir(p.SnapshotVars()), 0o700); err != nil {
		return err
	}
	if exists(p.Vars()) {
		if err := fsutil.CopyFile(p.Vars(), p.SnapshotVars()); err != nil {
			return fmt.Errorf("save the UEFI variables: %w", err)
		}
	}
	if exists(p.TPMState()) {
		if err := fsutil.CopyDir(p.TPMState(), p.SnapshotTPM()); err != nil {
			return fmt.Errorf("save the TPM state: %w", err)
		}
	}
	return nil
}

// restoreMachineState puts the UEFI variables and TPM state of the last
// snapshot back; false when the snapshot has none saved.
func restoreMachineState(p Paths) (bool, error) {
	if !exists(filepath.Dir(p.SnapshotVars())) {
		return false, nil
	}
	if exists(p.SnapshotVars()) {
		if err := fsutil.CopyFile(p.SnapshotVars(), p.Vars()); err != nil {
			return true, fmt.Errorf("restore the UEFI variables: %w", err)
		}
	}
	if exists(p.SnapshotTPM()) {
		if err := fsutil.CopyDir(p.SnapshotTPM(), p.TPMState()); err != nil {
			return true, fmt.Errorf("restore the TPM state: %w", err)
		}
	}
	return true, nil
}

// EjectInstall opens the install CD drive's tray of the guest whose QMP
// socket is sock and takes the medium out, even if the guest locked it.
func EjectInstall(sock string) error {
	return qmpRunArgs(sock, "eject", map[string]any{"id": InstallCD, "force": true})
}

func qmpRun(sock, command string) error {
	_, err := qmpc.Run(sock, command, nil)
	return err
}

func qmpRunArgs(sock, command string, args map[string]any) error {
	_, err := qmpc.Run(sock, command, args)
	return err
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func allocated(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	if s, ok := fi.Sys().(*syscall.Stat_t); ok {
		return s.Blocks * 512
	}
	return fi.Size()
}

// allowedUSB leaves out of a guest's passthrough the USB devices the
// host needs (Protected): passing the boot stick to Windows would pull
// the host's own disk from under it.
func (m *Manager) allowedUSB(vm string, usb []string) []string {
	if m.Protected == nil || len(usb) == 0 {
		return usb
	}
	protected := map[string]bool{}
	for _, p := range m.Protected() {
		protected[strings.ToLower(p)] = true
	}
	var out []string
	for _, u := range usb {
		if protected[strings.ToLower(u)] {
			m.Log.Warn("USB passthrough left out: the device holds the host's boot disk", "vm", vm, "usb", u)
			continue
		}
		out = append(out, u)
	}
	return out
}

// PauseAll stops the CPUs of every running guest (QMP stop), as before the
// host suspends, and returns the names of those it paused.
func (m *Manager) PauseAll() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var paused []string
	for _, g := range m.guests {
		if !m.Sup.Running(vmService(g.spec.Name)) {
			continue
		}
		if err := qmpRun(g.paths.QMP(), "stop"); err != nil {
			m.Log.Warn("pause vm", "vm", g.spec.Name, "err", err)
			continue
		}
		paused = append(paused, g.spec.Name)
	}
	return paused
}

// ResumeAll lets the named guests continue (QMP cont).
func (m *Manager) ResumeAll(names []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, name := range names {
		g, err := m.find(name)
		if err != nil {
			continue
		}
		if err := qmpRun(g.paths.QMP(), "cont"); err != nil {
			m.Log.Warn("continue vm", "vm", name, "err", err)
			continue
		}
		go m.correctClock(g)
	}
}

// correctClock sets a resumed guest's clock, which stood still while the
// host slept, through its guest agent; a guest without one corrects its
// clock itself (NTP, Windows' time service) later.
func (m *Manager) correctClock(g *guest) {
	c, err := qga.Dial(g.paths.QGA(), 3*time.Second)
	if err != nil {
		m.Log.Info("guest clock not set after resume: no guest agent", "vm", g.spec.Name)
		return
	}
	defer c.Close()
	if err := c.SetTime(time.Now()); err != nil {
		m.Log.Warn("set the guest's clock after resume", "vm", g.spec.Name, "err", err)
		return
	}
	m.Log.Info("guest clock set after resume", "vm", g.spec.Name)
}

// AttachUSB gives running guest name the host's USB device at bus and
// addr (QMP device_add of a usb-host device on its xHCI controller, with
// id) and returns what the guest's USB bus then shows of it (QEMU's
// "info usb" line); an error when the guest is not running or QEMU
// refuses.
func (m *Manager) AttachUSB(name string, bus, addr int, id string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, err := m.find(name)
	if err != nil {
		return "", err
	}
	if !m.Sup.Running(vmService(name)) {
		return "", fmt.Errorf("vm %s is not running", name)
	}
	sock := g.paths.QMP()
	before, _ := usbInfo(sock)
	// QEMU opens the device's node itself (hostdevice): Debian's libusb
	// learns of devices plugged in later from udev, which the host does
	// not run, so it would never find this one by bus and address.
	args := map[string]any{"driver": "usb-host", "id": id, "bus": "xhci.0",
		"hostdevice": fmt.Sprintf("/dev/bus/usb/%03d/%03d", bus, addr)}
	if err := qmpRunArgs(sock, "device_add", args); err != nil {
		return "", fmt.Errorf("give vm %s the USB device on bus %d address %d: %w", name, bus, addr, err)
	}
	// The device shows on the guest's bus once QEMU opened it.
	for i := 0; i < 20; i++ {
		after, err := usbInfo(sock)
		if err == nil {
			if line := newLine(before, after); line != "" {
				return line, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", fmt.Errorf("vm %s: QEMU took the USB device on bus %d address %d, but its bus does not show it", name, bus, addr)
}

// DetachUSB takes device id (AttachUSB's) from guest name (QMP
// device_del); a guest that stopped meanwhile has nothing to take.
func (m *Manager) DetachUSB(name, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, err := m.find(name)
	if err != nil {
		return err
	}
	if !m.Sup.Running(vmService(name)) {
		return nil
	}
	if err := qmpRunArgs(g.paths.QMP(), "device_del", map[string]any{"id": id}); err != nil && !strings.Contains(err.Error(), "DeviceNotFound") {
		return fmt.Errorf("take USB device %s from vm %s: %w", id, name, err)
	}
	return nil
}

// usbInfo is QEMU's "info usb": the devices on the guest's USB buses.
func usbInfo(sock string) ([]string, error) {
	raw, err := qmpc.Run(sock, "human-monitor-command", map[string]any{"command-line": "info usb"})
	if err != nil {
		return nil, err
	}
	var resp struct {
		Return string `json:"return"`
	}
	if err := json.Unmarshal(raw, &resp); err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(resp.Return, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out, nil
}

// newLine is the first line of after that before does not have.
func newLine(before, after []string) string {
	seen := map[string]int{}
	for _, l := range before {
		seen[l]++
	}
	for _, l := range after {
		if seen[l] > 0 {
			seen[l]--
			continue
		}
		return l
	}
	return ""
}

package api

import (
	"errors"
	"time"
)

// The API's wire types for services and guests, and the errors its
// answers are made from. hostd's supervisor and guest manager use these
// types as theirs (supervise.Status, vm.Status), so the API package
// depends on no part of hostd and builds for every OS a client runs on.

// ServiceState is a service's state.
type ServiceState string

// Service states.
const (
	ServiceStarting ServiceState = "starting"
	ServiceRunning  ServiceState = "running"
	ServiceBackoff  ServiceState = "backoff"
	ServiceStopping ServiceState = "stopping"
	ServiceStopped  ServiceState = "stopped"
)

// Service is one supervised service.
type Service struct {
	Name     string       `json:"name"`
	State    ServiceState `json:"state"`
	Pid      int          `json:"pid,omitempty"`
	Restarts int          `json:"restarts"`
	LastExit string       `json:"last_exit,omitempty"`
	// Clean says the last exit was an orderly one: the program ended by
	// itself with status 0, or on its Graceful request; not on SIGTERM,
	// SIGKILL or a failure.
	Clean bool      `json:"clean"`
	Since time.Time `json:"since"`
	// Backoffs are the waits before each restart so far (most recent
	// last, at most 16).
	Backoffs []time.Duration `json:"-"`
}

// VM is one guest.
type VM struct {
	Name  string `json:"name"`
	OS    string `json:"os"`
	State string `json:"state"`
	Pid   int    `json:"pid,omitempty"`
	// Accel is "kvm" or "tcg".
	Accel     string `json:"accel"`
	MemoryMiB int64  `json:"memory_mib"`
	// MemoryUsedBytes is the guest's memory that QEMU holds while it runs
	// (its anonymous memory), MemoryHugeBytes how much of it is in 2 MiB
	// pages, which spare the CPU most page walks.
	MemoryUsedBytes int64 `json:"memory_used_bytes,omitempty"`
	MemoryHugeBytes int64 `json:"memory_huge_bytes,omitempty"`
	CPUs            int   `json:"cpus"`
	// Install is set while the install media are attached.
	Install bool `json:"install"`
	// Snapshot is when the base was frozen; zero without a snapshot.
	Snapshot time.Time `json:"snapshot,omitzero"`
	// DiskBytes and OverlayBytes are what the base disk and the overlay
	// take on the data partition.
	DiskBytes    int64    `json:"disk_bytes"`
	OverlayBytes int64    `json:"overlay_bytes,omitempty"`
	Display      string   `json:"display"`
	Restarts     int      `json:"restarts"`
	LastExit     string   `json:"last_exit,omitempty"`
	Notes        []string `json:"notes,omitempty"`
	// Problem is what keeps the guest from running as it should, from
	// QEMU's events (paused on a full data partition or a disk error);
	// "" when nothing does.
	Problem string `json:"problem,omitempty"`
	// Events are the guest's recent notable events, oldest first, each
	// with its UTC time: crashes, restarts, pauses.
	Events []string `json:"events,omitempty"`
	// Busy is the long work on the guest's files under way, with its
	// progress ("snapshot: merging the overlay into the base, 45%").
	Busy string `json:"busy,omitempty"`
}

// VMService and TPMService name the supervised services that run a
// guest: its QEMU and its software TPM.
func VMService(name string) string  { return "vm-" + name }
func TPMService(name string) string { return "swtpm-" + name }

// VMActions are what the API and `thinhost ctl vm` may ask of a guest.
var VMActions = []string{"start", "stop", "snapshot", "force-snapshot", "reset", "install-on", "install-off", "vnc-password", "new-vnc-password", "setup-password"}

// Errors a Backend returns, wrapped, that the API answers with their
// own status: ErrNoVM 404; ErrNoSnapshot (reset before any snapshot),
// ErrUnclean (a snapshot of a guest that did not shut down cleanly) and
// ErrRunning (starting what runs) 409.
var (
	ErrNoVM       = errors.New("no such vm")
	ErrNoSnapshot = errors.New("no snapshot to reset to: run `thinhost ctl vm NAME snapshot` first")
	ErrUnclean    = errors.New("did not shut down cleanly")
	ErrVMBusy     = errors.New("busy")
	ErrRunning    = errors.New("already running")
)

// GuestConfigFile is the file beside thinhost.exe on a Windows guest's
// THINHOST drive: where the host's API is, and the guest's own token,
// which thinhost ctl run from there uses unless told otherwise.
const GuestConfigFile = "thinhost.json"

// GuestConfig is GuestConfigFile's content.
type GuestConfig struct {
	// Addr is the API as the guest reaches it (HOST:PORT).
	Addr string `json:"addr"`
	// VM is the guest the token is of.
	VM string `json:"vm"`
	// Token is the guest's own token (GuestMay says what it reaches).
	Token string `json:"token"`
}

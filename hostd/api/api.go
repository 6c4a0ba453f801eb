// Package api is hostd's management API: HTTP on a unix socket inside the
// host (trusted: root only) and on a TCP port meant for the guest side and
// for `thinhost run --forward` in tests, where every request must carry
// the token kept on the data partition as "Authorization: Bearer TOKEN".
//
//	GET  /v1/status                    host, memory, data partition, services
//	GET  /v1/logs[?follow=1]           hostd's log, as text lines
//	POST /v1/services/NAME/restart
//	GET  /v1/shares                    the file server: user, password, listeners, shares
//	POST /v1/discard                   reads and drops the body (throughput measurements)
//	GET  /v1/source?bytes=N            N zero bytes (the other direction)
//	POST /v1/vms/NAME/ACTION             start, stop, snapshot, reset, install-on, install-off
//	PUT  /v1/update[?tries=N]          a new build into the other A/B slot (update.go)
//	POST /v1/poweroff, POST /v1/reboot
//	GET  /v1/wifi, POST /v1/wifi/scan, POST /v1/wifi/connect (wifi.go)
//
// The Client in this package speaks it; `thinhost ctl` uses the Client.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/thinhost/thinhost/hostd/logring"
	"github.com/thinhost/thinhost/images/layout"
)

// What opened the encrypted data partition (Data.Unlock).
const (
	UnlockTPM        = "tpm"
	UnlockPassphrase = "passphrase"
	UnlockRecovery   = "recovery key"
)

// Status is GET /v1/status.
type Status struct {
	Hostname string  `json:"hostname"`
	Uptime   float64 `json:"uptime_seconds"`
	Memory   Memory  `json:"memory"`
	// SecureBoot is "on (lockdown: MODE)", "off", "not UEFI" or
	// "unknown (why)".
	SecureBoot string `json:"secure_boot,omitempty"`
	// APIFingerprint is the certificate of the API on the host's network
	// (HTTPS), as Fingerprint writes it; "" when it serves loopback only.
	APIFingerprint string `json:"api_fingerprint,omitempty"`
	// Data is the data partition; nil before hostd looked for it.
	Data *Data `json:"data,omitempty"`
	// CPUs, Load and Temperatures are the processor's count, the load
	// averages (1, 5 and 15 minutes) and the thermal sensors the kernel
	// reports (none in most virtual machines).
	CPUs         int           `json:"cpus,omitempty"`
	Load         []float64     `json:"load,omitempty"`
	Temperatures []Temperature `json:"temperatures,omitempty"`
	Services     []Service     `json:"services"`
	VMs          []VM          `json:"vms"`
	// Wifi is the wireless link, when the profile has a wifi block.
	Wifi *Wifi `json:"wifi,omitempty"`
	// Power is the AC adapter and batteries, when the host has them.
	Power *Power `json:"power,omitempty"`
	// Slots are the A/B system slots; Update says what became of the
	// last update when it did not go as asked (it rolled back).
	Slots  []Slot `json:"slots,omitempty"`
	Update string `json:"update,omitempty"`
	// Problems is what is wrong with the host (none: healthy): the data
	// partition missing, a service or guest failing, a setup step that
	// failed.
	Problems []string `json:"problems"`
}

// Data is the data partition's state.
type Data struct {
	Device string `json:"device"`
	// Size and Free are the filesystem's, in bytes.
	Size int64 `json:"size"`
	Free int64 `json:"free"`
	// Created, Grown and Repaired say what this boot did.
	Created  bool `json:"created,omitempty"`
	Grown    bool `json:"grown,omitempty"`
	Repaired bool `json:"repaired,omitempty"`
	Mounted  bool `json:"mounted"`
	// Encrypted is true for a LUKS2 data partition (opened with its
	// passphrase at boot).
	Encrypted bool `json:"encrypted,omitempty"`
	// Unlock says what opened an encrypted data partition this boot:
	// UnlockTPM, UnlockPassphrase or UnlockRecovery.
	Unlock string `json:"unlock,omitempty"`
	// TPMProblem says why the TPM did not unlock it, or could not be given
	// the key, when the profile asks for the TPM.
	TPMProblem string `json:"tpm_problem,omitempty"`
	// Boot counts the boots that mounted this data partition.
	Boot int `json:"boot,omitempty"`
	// Problem is set when the data partition is not usable; hostd comes up
	// without it and says so.
	Problem string `json:"problem,omitempty"`
}

// Temperature is one thermal sensor's reading.
type Temperature struct {
	// Name is the sensor's kind as the kernel names it ("x86_pkg_temp",
	// "acpitz", "coretemp Package id 0").
	Name    string  `json:"name"`
	Celsius float64 `json:"celsius"`
	// Critical is the temperature the kernel powers off at, when known.
	Critical float64 `json:"critical,omitempty"`
}

// Power is the host's power supply (Status.Power; absent without a
// battery or an AC adapter the kernel reports).
type Power struct {
	OnAC bool `json:"on_ac"`
	// Percent is all batteries' charge together; -1 without batteries.
	Percent   int       `json:"percent"`
	Batteries []Battery `json:"batteries,omitempty"`
}

// Line describes the power supply for the console, ctl status and the
// host's page:
// "AC, battery 87% (Charging)".
func (p *Power) Line() string {
	if p == nil {
		return "mains (no battery)"
	}
	if p.Percent < 0 {
		return "AC"
	}
	line := fmt.Sprintf("battery %d%%", p.Percent)
	if p.OnAC {
		line = "AC, " + line
	}
	var st []string
	for _, b := range p.Batteries {
		if b.Status != "" && b.Status != "Unknown" {
			st = append(st, b.Status)
		}
	}
	if len(st) > 0 {
		line += " (" + strings.Join(st, ", ") + ")"
	}
	return line
}

// Battery is one battery: its charge and the kernel's status
// ("Charging", "Discharging", "Full", "Not charging").
type Battery struct {
	Name    string `json:"name"`
	Percent int    `json:"percent"`
	Status  string `json:"status,omitempty"`
	// Now and Full are its energy (µWh) or charge (µAh), when reported.
	Now  int64 `json:"now,omitempty"`
	Full int64 `json:"full,omitempty"`
}

// Shares is GET /v1/shares: the file server and its shares.
type Shares struct {
	User string `json:"user"`
	// Password is the share user's password (the API is token-protected);
	// PasswordFrom says where it comes from.
	Password     string `json:"password"`
	PasswordFrom string `json:"password_from"`
	HostNetwork  bool   `json:"host_network"`
	// Listen are the addresses smbd really listens on (from the kernel).
	Listen []string `json:"listen"`
	Shares []Share  `json:"shares"`
}

// Share is one share's state.
type Share struct {
	Name     string `json:"name"`
	Path     string `json:"path"`
	ReadOnly bool   `json:"read_only"`
	Drive    string `json:"drive,omitempty"`
	// UsedBytes is what its files take; UsageComplete is false when the
	// count stopped at its time budget.
	UsedBytes     int64 `json:"used_bytes"`
	UsageComplete bool  `json:"usage_complete"`
	FreeBytes     int64 `json:"free_bytes"`
	// NetUse is the Windows command that maps it.
	NetUse string `json:"net_use"`
}

// Memory is the host's memory in bytes.
type Memory struct {
	Total     int64 `json:"total"`
	Available int64 `json:"available"`
	// Hostd is hostd's own resident memory.
	Hostd int64 `json:"hostd,omitempty"`
	// Where the memory in use goes: files held in memory (the initramfs
	// the host runs from, /run), the kernel's own, and the programs with
	// the most anonymous memory (heap and stacks), largest first.
	Files  int64 `json:"files,omitempty"`
	Kernel int64 `json:"kernel,omitempty"`
	// Reserved is memory the kernel keeps free for itself (its
	// watermarks, raised for transparent huge pages), which MemAvailable
	// does not count: in use by nobody, yet not available.
	Reserved int64           `json:"reserved,omitempty"`
	Programs []ProgramMemory `json:"programs,omitempty"`
}

// ProgramMemory is the anonymous memory of the processes of one program.
type ProgramMemory struct {
	Name      string `json:"name"`
	Processes int    `json:"processes"`
	Private   int64  `json:"private"`
}

// Backend is what the API exposes.
type Backend interface {
	Status() Status
	Restart(name string) error
	// Power powers off, reboots or suspends the host ("poweroff",
	// "reboot", "suspend"); it returns once that has begun.
	Power(action string) error
	// Shares is the file server's state, nil when the host serves none.
	Shares() *Shares
	// VM runs one of vm.Actions on a guest and says what it did; an
	// unknown guest is an error wrapping vm.ErrUnknown.
	VM(ctx context.Context, name, action string) (string, error)
	// Update writes the update stream r (see WriteUpdate) into the slot
	// that is not running and has the loader try it tries times. An
	// update hostd refuses wraps ErrUpdateRefused; ErrBusy means one is
	// under way.
	Update(ctx context.Context, r io.Reader, tries int) (*UpdateResult, error)
}

// Errors of Backend.Update.
var (
	ErrUpdateRefused = errors.New("update refused")
	ErrBusy          = errors.New("an update is under way")
)

// ErrNotFound is returned by Backend.Restart for an unknown service.
var ErrNotFound = errors.New("no such service")

// Server serves the API.
type Server struct {
	Backend Backend
	Logs    *logring.Ring
	// Token is required on listeners served with requireToken; or, when
	// TokenSHA256 is set, a token whose SHA-256 it is (the profile's
	// token, which the image carries only hashed).
	Token       string
	TokenSHA256 []byte
	// GuestToken, when set, names the guest a token that is not the
	// host's belongs to: a guest's own token, which its THINHOST drive
	// carries. It reaches only what GuestMay allows.
	GuestToken func(token string) (vm string, ok bool)
	// Log, when set, takes net/http's own complaints (failed TLS
	// handshakes, which anyone on the network can cause) at debug level.
	Log *slog.Logger
	// Page, when set, serves every path outside /v1/ on the listeners
	// that want a token (the host's page, which has its own login).
	Page http.Handler
	// Plain, when set, says which connections ServeSplitTLS serves in
	// plain HTTP besides loopback's: the guests' on their host-only link.
	Plain func(local, remote net.Addr) bool
}

// Handler returns the API's handler; with requireToken, a request without
// the right token gets 401 and nothing else.
func (s *Server) Handler(requireToken bool) http.Handler {
	// Plain path patterns and a method check by hand: hostd is compiled
	// by u-root's busybox builder, whose generated module may predate Go
	// 1.22's method patterns (GODEBUG httpmuxgo121), so "GET /v1/status"
	// would be taken literally there.
	mux := http.NewServeMux()
	route := func(method, path string, h http.HandlerFunc) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			if r.Method != method {
				w.Header().Set("Allow", method)
				http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
				return
			}
			h(w, r)
		})
	}
	route(http.MethodGet, "/v1/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(s.Backend.Status())
	})
	route(http.MethodGet, "/v1/logs", s.logs)
	s.wifiRoutes(route)
	route(http.MethodGet, "/v1/shares", func(w http.ResponseWriter, r *http.Request) {
		sh := s.Backend.Shares()
		if sh == nil {
			http.Error(w, "this host serves no shares (the profile has no share blocks)", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(sh)
	})
	route(http.MethodGet, "/v1/source", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.URL.Query().Get("bytes"), 10, 64)
		if err != nil || n < 0 || n > 64<<30 {
			http.Error(w, "bytes must be a count from 0 to 64 GiB", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		_, _ = io.CopyN(w, zeros{}, n)
	})
	route(http.MethodPost, "/v1/discard", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintln(w, n)
	})
	route(http.MethodPost, "/v1/services/", func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/v1/services/"), "/restart")
		if !ok || name == "" || strings.Contains(name, "/") {
			http.NotFound(w, r)
			return
		}
		err := s.Backend.Restart(name)
		switch {
		case errors.Is(err, ErrNotFound):
			http.Error(w, err.Error(), http.StatusNotFound)
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
		default:
			fmt.Fprintln(w, "restarting", name)
		}
	})
	route(http.MethodPost, "/v1/vms/", func(w http.ResponseWriter, r *http.Request) {
		name, action, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v1/vms/"), "/")
		if !ok || name == "" || action == "" || strings.Contains(action, "/") {
			http.NotFound(w, r)
			return
		}
		msg, err := s.Backend.VM(r.Context(), name, action)
		switch {
		case errors.Is(err, ErrNoVM):
			http.Error(w, err.Error(), http.StatusNotFound)
		case errors.Is(err, ErrNoSnapshot), errors.Is(err, ErrUnclean), errors.Is(err, ErrRunning), errors.Is(err, ErrVMBusy):
			http.Error(w, err.Error(), http.StatusConflict)
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
		default:
			fmt.Fprintln(w, msg)
		}
	})
	route(http.MethodPut, "/v1/update", func(w http.ResponseWriter, r *http.Request) {
		tries := layout.DefaultTries
		if q := r.URL.Query().Get("tries"); q != "" {
			n, err := strconv.Atoi(q)
			if err != nil || n < 1 || n > MaxTries {
				http.Error(w, fmt.Sprintf("tries must be a count from 1 to %d", MaxTries), http.StatusBadRequest)
				return
			}
			tries = n
		}
		res, err := s.Backend.Update(r.Context(), r.Body, tries)
		switch {
		case errors.Is(err, ErrBusy):
			http.Error(w, err.Error(), http.StatusConflict)
		case errors.Is(err, ErrUpdateRefused):
			http.Error(w, err.Error(), http.StatusUnprocessableEntity)
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
		default:
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(res)
		}
	})
	for _, action := range []string{"poweroff", "reboot", "suspend"} {
		route(http.MethodPost, "/v1/"+action, func(w http.ResponseWriter, r *http.Request) {
			if err := s.Backend.Power(action); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			fmt.Fprintln(w, action, "started")
		})
	}
	if !requireToken {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Page != nil && !strings.HasPrefix(r.URL.Path, "/v1/") {
			s.Page.ServeHTTP(w, r)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if ok && s.TokenOK(got) {
			mux.ServeHTTP(w, r)
			return
		}
		if vm, mine := s.guestToken(got); ok && mine {
			if !GuestMay(vm, r.Method, r.URL.Path) {
				http.Error(w, fmt.Sprintf("forbidden: this is vm %s's own token; it reads the host's status and shares, and does %s to vm %s alone",
					vm, strings.Join(GuestSelfActions, ", "), vm), http.StatusForbidden)
				return
			}
			mux.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", "Bearer")
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	})
}

func (s *Server) guestToken(got string) (string, bool) {
	if s.GuestToken == nil || got == "" {
		return "", false
	}
	return s.GuestToken(got)
}

// GuestSelfActions are what a guest's own token may do to that guest:
// from inside Windows, stop it, keep its state as the one reset returns
// to, or reset it.
var GuestSelfActions = []string{"stop", "snapshot", "reset"}

// GuestMay says whether vm's own token reaches method on path: the
// host's status and shares, and vm's own GuestSelfActions. Nothing of
// the host (power, updates, Wi-Fi, services, logs) and nothing of other
// guests.
func GuestMay(vm, method, path string) bool {
	switch {
	case method == http.MethodGet && (path == "/v1/status" || path == "/v1/shares"):
		return true
	case method == http.MethodPost:
		name, action, ok := strings.Cut(strings.TrimPrefix(path, "/v1/vms/"), "/")
		return ok && strings.HasPrefix(path, "/v1/vms/") && name == vm && slices.Contains(GuestSelfActions, action)
	}
	return false
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	follow := r.URL.Query().Get("follow") == "1"
	var seq int64
	for {
		lines, next := s.Logs.Since(seq)
		for _, l := range lines {
			if _, err := fmt.Fprintln(w, l); err != nil {
				return
			}
		}
		seq = next
		if !follow {
			return
		}
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		if err := s.Logs.Wait(r.Context(), seq); err != nil {
			return
		}
	}
}

// Serve serves ln until ctx ends, then closes it.
func (s *Server) Serve(ctx context.Context, ln net.Listener, requireToken bool) error {
	return s.serve(ctx, ln, requireToken, nil)
}

// ServeSplitTLS serves the API's TCP port when it is on the host's
// network: the token required, connections to loopback (the host's own
// programs, and the guests: QEMU takes their 10.0.2.2 to the host's
// loopback) in plain HTTP, every other one over TLS with cfg alone.
func (s *Server) ServeSplitTLS(ctx context.Context, ln net.Listener, cfg *tls.Config) error {
	return s.serve(ctx, ln, true, cfg)
}

func (s *Server) serve(ctx context.Context, ln net.Listener, requireToken bool, tlsCfg *tls.Config) error {
	// A peer that opens connections and sends nothing loses them after
	// ReadHeaderTimeout, an idle keep-alive after IdleTimeout; headers
	// are small; and past MaxConns open connections new ones are closed
	// at once, so a flood cannot take the descriptors hostd's guests and
	// services need (hostd has 4096; a flood's connections time out).
	srv := &http.Server{Handler: s.Handler(requireToken), ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10}
	if s.Log != nil {
		srv.ErrorLog = slog.NewLogLogger(s.Log.Handler(), slog.LevelDebug)
	}
	ln = &capListener{Listener: ln, free: make(chan struct{}, MaxConns)}
	if tlsCfg != nil {
		// Outside the cap, so net/http sees *tls.Conn: it bounds the
		// handshake by its timeouts, sets Request.TLS, and answers plain
		// HTTP with a 400 that names HTTPS.
		ln = &splitTLS{Listener: ln, cfg: tlsCfg, plain: s.Plain}
	}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if srv.Shutdown(shut) != nil {
			// Requests still running (an update's upload) lose their
			// connections: their handlers end instead of holding the
			// host's shutdown.
			_ = srv.Close()
		}
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// MaxConns bounds the connections one API listener holds open.
const MaxConns = 3000

// capListener closes a connection accepted beyond cap(free) open ones.
type capListener struct {
	net.Listener
	free chan struct{}
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.free <- struct{}{}:
			return &capConn{Conn: c, release: func() { <-l.free }}, nil
		default:
			c.Close()
		}
	}
}

type capConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *capConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// TokenOK compares a presented token with the server's, in constant time.
func (s *Server) TokenOK(got string) bool {
	want := s.TokenSHA256
	if len(want) == 0 {
		if s.Token == "" {
			return false
		}
		h := sha256.Sum256([]byte(s.Token))
		want = h[:]
	}
	h := sha256.Sum256([]byte(got))
	return len(want) == sha256.Size && subtle.ConstantTimeCompare(h[:], want) == 1
}

package api

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thinhost/thinhost/hostd/logring"
	"github.com/thinhost/thinhost/images/layout"
)

type fakeHost struct {
	mu       sync.Mutex
	update   map[string][]byte
	restarts []string
	power    []string
}

func (f *fakeHost) Status() Status {
	return Status{Hostname: "h", Uptime: 12, Memory: Memory{Total: 1 << 30, Available: 1 << 29},
		Data:     &Data{Device: "/dev/vda4", Size: 1000},
		Services: []Service{{Name: "smbd", State: ServiceRunning, Pid: 42}}}
}

func (f *fakeHost) Restart(name string) error {
	if name != "smbd" {
		return fmt.Errorf("restart %s: %w", name, ErrNotFound)
	}
	f.mu.Lock()
	f.restarts = append(f.restarts, name)
	f.mu.Unlock()
	return nil
}

func (f *fakeHost) Power(action string) error {
	f.mu.Lock()
	f.power = append(f.power, action)
	f.mu.Unlock()
	return nil
}

func (f *fakeHost) Shares() *Shares {
	return &Shares{User: "thin", Password: "pw-123456", Shares: []Share{{Name: "files", NetUse: `net use Z: \\10.0.2.2\files`}}}
}

func (f *fakeHost) Update(ctx context.Context, r io.Reader, tries int) (*UpdateResult, error) {
	tr := tar.NewReader(r)
	hdr, err := tr.Next()
	if err != nil || hdr.Name != UpdateManifestName {
		return nil, fmt.Errorf("%w: no manifest first", ErrUpdateRefused)
	}
	var m UpdateManifest
	if err := json.NewDecoder(tr).Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUpdateRefused, err)
	}
	if err := m.Check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUpdateRefused, err)
	}
	got := map[string][]byte{}
	for _, file := range m.Files {
		hdr, err := tr.Next()
		if err != nil || hdr.Name != file.Name {
			return nil, fmt.Errorf("%w: want %s", ErrUpdateRefused, file.Name)
		}
		if got[file.Name], err = io.ReadAll(tr); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	f.update = got
	f.mu.Unlock()
	return &UpdateResult{Slot: "b", Build: m.Info.Build, Tries: tries, Version: 2}, nil
}

func (f *fakeHost) VM(ctx context.Context, name, action string) (string, error) {
	switch {
	case name != "windows":
		return "", fmt.Errorf("vm %q: %w", name, ErrNoVM)
	case action == "reset":
		return "", fmt.Errorf("reset vm %s: %w", name, ErrNoSnapshot)
	}
	return action + " " + name, nil
}

func setup(t *testing.T) (*fakeHost, *logring.Ring, *httptest.Server, string) {
	host := &fakeHost{}
	ring := logring.New(100)
	srv := &Server{Backend: host, Logs: ring, Token: "s3cret"}
	ts := httptest.NewServer(srv.Handler(true))
	t.Cleanup(ts.Close)

	sock := filepath.Join(t.TempDir(), "hostd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go srv.Serve(ctx, ln, false)
	return host, ring, ts, sock
}

func TestTokenRequiredOnTCP(t *testing.T) {
	_, _, ts, _ := setup(t)
	for _, auth := range []string{"", "Bearer wrong", "Bearer s3cret2", "s3cret", "Basic czNjcmV0"} {
		req, _ := http.NewRequest("GET", ts.URL+"/v1/status", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 || strings.TrimSpace(string(body)) != "unauthorized" {
			t.Errorf("auth %q: %d %q, want 401 and nothing else", auth, resp.StatusCode, body)
		}
	}
	// Every endpoint, not just status.
	for _, p := range []string{"/v1/logs", "/v1/poweroff", "/v1/services/smbd/restart", "/nope"} {
		resp, _ := http.Post(ts.URL+p, "", nil)
		if resp.StatusCode != 401 {
			t.Errorf("POST %s without a token: %d", p, resp.StatusCode)
		}
		resp.Body.Close()
	}
	// With the token: a wrong method is refused too.
	req, _ := http.NewRequest("POST", ts.URL+"/v1/status", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /v1/status: %v %v", resp.StatusCode, err)
	}
	if _, err := NewClient(strings.TrimPrefix(ts.URL, "http://"), "wrong").Status(context.Background()); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("client with a wrong token: %v", err)
	}
}

func TestClientOverTCPAndUnixSocket(t *testing.T) {
	host, ring, ts, sock := setup(t)
	for name, c := range map[string]*Client{
		"tcp":  NewClient(strings.TrimPrefix(ts.URL, "http://"), "s3cret"),
		"unix": NewClient(sock, ""),
	} {
		st, err := c.Status(context.Background())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if st.Hostname != "h" || len(st.Services) != 1 || st.Services[0].Pid != 42 || st.Data == nil || st.Data.Device != "/dev/vda4" {
			t.Errorf("%s: status = %+v", name, st)
		}
		if err := c.Restart(context.Background(), "smbd"); err != nil {
			t.Errorf("%s: restart: %v", name, err)
		}
		if err := c.Restart(context.Background(), "nope"); err == nil || !strings.Contains(err.Error(), "404") {
			t.Errorf("%s: restart of an unknown service: %v", name, err)
		}
		if err := c.Power(context.Background(), "reboot"); err != nil {
			t.Errorf("%s: reboot: %v", name, err)
		}
	}
	if len(host.restarts) != 2 || len(host.power) != 2 || host.power[0] != "reboot" {
		t.Errorf("backend saw restarts %v, power %v", host.restarts, host.power)
	}

	fmt.Fprintln(ring, "line one")
	fmt.Fprintln(ring, "line two")
	var buf bytes.Buffer
	if err := NewClient(sock, "").Logs(context.Background(), false, &buf); err != nil || buf.String() != "line one\nline two\n" {
		t.Errorf("logs = %q, %v", buf.String(), err)
	}

	// Follow: new lines arrive while the request is open.
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	go func() {
		NewClient(sock, "").Logs(ctx, true, pw)
		pw.Close()
	}()
	got := make(chan string, 1)
	go func() {
		b := make([]byte, 0, 256)
		tmp := make([]byte, 64)
		for !strings.Contains(string(b), "line three") {
			n, err := pr.Read(tmp)
			if err != nil {
				break
			}
			b = append(b, tmp[:n]...)
		}
		got <- string(b)
	}()
	time.Sleep(50 * time.Millisecond)
	fmt.Fprintln(ring, "line three")
	select {
	case s := <-got:
		if !strings.Contains(s, "line one\nline two\nline three") {
			t.Errorf("followed logs = %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Error("a new line did not reach the follower")
	}
	cancel()
}

// TestVMActions: the client reaches a guest's actions; unknown guests get
// 404, a reset without snapshot 409, both with hostd's message.
func TestVMActions(t *testing.T) {
	_, _, ts, _ := setup(t)
	c := NewClient(strings.TrimPrefix(ts.URL, "http://"), "s3cret")
	ctx := context.Background()
	if msg, err := c.VM(ctx, "windows", "start"); err != nil || msg != "start windows" {
		t.Errorf("start = %q, %v", msg, err)
	}
	if _, err := c.VM(ctx, "nope", "start"); err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "no such vm") {
		t.Errorf("unknown vm: %v", err)
	}
	if _, err := c.VM(ctx, "windows", "reset"); err == nil || !strings.Contains(err.Error(), "409") || !strings.Contains(err.Error(), "no snapshot") {
		t.Errorf("reset without snapshot: %v", err)
	}
}

// TestDiscardAndSource: the throughput endpoints move the bytes asked for,
// behind the token.
func TestDiscardAndSource(t *testing.T) {
	_, _, ts, _ := setup(t)
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/v1/discard", strings.NewReader(strings.Repeat("x", 100000)))
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(b)) != "100000" {
		t.Errorf("discard answered %q", b)
	}
	req, _ = http.NewRequest(http.MethodGet, ts.URL+"/v1/source?bytes=1234567", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if n != 1234567 {
		t.Errorf("source gave %d bytes", n)
	}
	resp, err = http.Get(ts.URL + "/v1/source?bytes=10")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("source without a token: %s", resp.Status)
	}
}

// TestIdleFlood: 2,000 connections that send nothing do not keep a
// client with the token from its status, and connections past MaxConns
// are closed at once instead of waiting.
func TestIdleFlood(t *testing.T) {
	srv := &Server{Backend: &fakeHost{}, Logs: logring.New(10), Token: "s3cret"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx, ln, true)
	addr := ln.Addr().String()
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for i := 0; i < 2000; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("idle connection %d: %v", i, err)
		}
		idle = append(idle, c)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if st, err := NewClient(addr, "s3cret").Status(sctx); err != nil || st.Hostname != "h" {
		t.Fatalf("status beside 2,000 idle connections: %+v, %v", st, err)
	}
	// Up to the cap: the next ones are closed by the server at once.
	for len(idle) < MaxConns+10 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	last := idle[len(idle)-1]
	last.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := last.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("a connection past MaxConns stayed open (read %d, %v)", n, err)
	}
}

// TestTokenSHA256: a server that knows only the token's hash (as the
// image carries the profile's token) lets the token in and nothing else.
func TestTokenSHA256(t *testing.T) {
	h := sha256.Sum256([]byte("profile-token-0123456789"))
	srv := &Server{Backend: &fakeHost{}, Logs: logring.New(10), TokenSHA256: h[:]}
	ts := httptest.NewServer(srv.Handler(true))
	defer ts.Close()
	addr := strings.TrimPrefix(ts.URL, "http://")
	if _, err := NewClient(addr, "profile-token-0123456789").Status(context.Background()); err != nil {
		t.Errorf("the token whose hash the server holds: %v", err)
	}
	for _, wrong := range []string{"", "profile-token-012345678", hex.EncodeToString(h[:])} {
		if _, err := NewClient(addr, wrong).Status(context.Background()); err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("token %q: %v, want 401", wrong, err)
		}
	}
}

// TestUpdate: the client streams an update (manifest, then the files in
// its order) and gets hostd's result; a boot count out of range and a
// manifest the host refuses get their own answers.
func TestUpdate(t *testing.T) {
	host := &fakeHost{}
	srv := httptest.NewServer((&Server{Backend: host, Logs: logring.New(10), Token: "s3cret"}).Handler(true))
	defer srv.Close()
	c := NewClient(strings.TrimPrefix(srv.URL, "http://"), "s3cret")
	files := map[string]string{UpdateSystem: "hsqs...", UpdateKernel: "kernel", UpdateInitrd: "initrd"}
	m := &UpdateManifest{Info: layout.SlotInfo{Build: "b1", Loader: layout.LoaderSystemdBoot}}
	for _, n := range []string{UpdateSystem, UpdateKernel, UpdateInitrd} {
		m.Files = append(m.Files, UpdateFile{Name: n, Size: int64(len(files[n])), SHA256: fmt.Sprintf("%x", sha256.Sum256([]byte(files[n])))})
	}
	send := func(m *UpdateManifest, tries int) (*UpdateResult, error) {
		pr, pw := io.Pipe()
		go func() {
			pw.CloseWithError(WriteUpdate(pw, m, func(name string) (io.ReadCloser, error) {
				return io.NopCloser(strings.NewReader(files[name])), nil
			}))
		}()
		return c.Update(context.Background(), pr, tries)
	}
	res, err := send(m, 2)
	if err != nil {
		t.Fatal(err)
	}
	if res.Slot != "b" || res.Build != "b1" || res.Tries != 2 {
		t.Errorf("result = %+v", res)
	}
	for n, want := range files {
		if got := string(host.update[n]); got != want {
			t.Errorf("%s arrived as %q, want %q", n, got, want)
		}
	}
	if _, err := send(m, MaxTries+1); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("tries out of range: %v", err)
	}
	inject := *m
	inject.Info.Cmdline = "quiet\nlinux /EFI/other.efi"
	if _, err := send(&inject, 1); err == nil || !strings.Contains(err.Error(), "control character") {
		t.Errorf("a command line with a newline: %v", err)
	}
	bad := *m
	bad.Files = m.Files[1:]
	if _, err := send(&bad, 1); err == nil || !strings.Contains(err.Error(), "422") || !strings.Contains(err.Error(), "no system.squashfs") {
		t.Errorf("a manifest without the system image: %v", err)
	}
}

// TestGuestToken: a guest's own token reads the status and the shares
// and does its own guest's stop, snapshot and reset; it reaches nothing
// of the host and nothing of another guest, and it is no host token.
func TestGuestToken(t *testing.T) {
	host := &fakeHost{}
	srv := &Server{Backend: host, Logs: logring.New(10), Token: "s3cret",
		GuestToken: func(tok string) (string, bool) { return "windows", tok == "guest-token" }}
	ts := httptest.NewServer(srv.Handler(true))
	t.Cleanup(ts.Close)
	addr := strings.TrimPrefix(ts.URL, "http://")
	c := NewClient(addr, "guest-token")
	ctx := context.Background()
	if _, err := c.Status(ctx); err != nil {
		t.Errorf("status with the guest's token: %v", err)
	}
	if sh, err := c.Shares(ctx); err != nil || sh.User != "thin" {
		t.Errorf("shares with the guest's token: %v, %v", sh, err)
	}
	if msg, err := c.VM(ctx, "windows", "snapshot"); err != nil || msg != "snapshot windows" {
		t.Errorf("its own snapshot: %q, %v", msg, err)
	}
	for _, p := range []struct{ method, path string }{
		{"POST", "/v1/vms/other/reset"}, {"POST", "/v1/vms/windows/start"}, {"POST", "/v1/vms/windows/install-on"},
		{"POST", "/v1/vms/windows/vnc-password"}, {"POST", "/v1/vms/windows/reset/x"}, {"POST", "/v1/vms/windows/../other/reset"},
		{"POST", "/v1/poweroff"}, {"POST", "/v1/reboot"}, {"POST", "/v1/services/smbd/restart"}, {"GET", "/v1/logs"},
		{"PUT", "/v1/update"}, {"GET", "/v1/wifi"}, {"GET", "/v1/source?bytes=1"},
	} {
		req, _ := http.NewRequest(p.method, ts.URL+p.path, nil)
		req.Header.Set("Authorization", "Bearer guest-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "vm windows's own token") {
			t.Errorf("%s %s with the guest's token: %d %q, want 403", p.method, p.path, resp.StatusCode, body)
		}
	}
	host.mu.Lock()
	if len(host.power) > 0 || len(host.restarts) > 0 {
		t.Errorf("the guest's token powered %v, restarted %v", host.power, host.restarts)
	}
	host.mu.Unlock()
	// Another token is nobody's.
	if _, err := NewClient(addr, "guest-token2").Status(ctx); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("a wrong token: %v", err)
	}
}

func TestGuestMay(t *testing.T) {
	for _, c := range []struct {
		method, path string
		want         bool
	}{
		{"GET", "/v1/status", true}, {"GET", "/v1/shares", true}, {"POST", "/v1/vms/w/reset", true},
		{"POST", "/v1/vms/w/stop", true}, {"POST", "/v1/vms/w/snapshot", true},
		{"POST", "/v1/status", false}, {"GET", "/v1/vms/w/reset", false}, {"POST", "/v1/vms/w/force-snapshot", false},
		{"POST", "/v1/vms/w2/reset", false}, {"POST", "/v1/vmsw/reset", false}, {"POST", "/x/v1/vms/w/reset", false},
		{"POST", "/v1/vms/w/", false}, {"POST", "/v1/vms//reset", false},
	} {
		if got := GuestMay("w", c.method, c.path); got != c.want {
			t.Errorf("GuestMay(w, %s, %s) = %v", c.method, c.path, got)
		}
	}
}

package cli

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/thinhost/thinhost/hostd/api"
	"github.com/thinhost/thinhost/hostd/logring"
	"github.com/thinhost/thinhost/internal/testenv"
)

// guestBackend is a host with one guest, windows, for ctl's tests.
type guestBackend struct {
	mu      sync.Mutex
	actions []string
	power   []string
}

func (b *guestBackend) Status() api.Status {
	return api.Status{Hostname: "thinhost", Uptime: 60, VMs: []api.VM{{Name: "windows", State: "running"}}}
}
func (b *guestBackend) Restart(string) error { return api.ErrNotFound }
func (b *guestBackend) Power(action string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.power = append(b.power, action)
	return nil
}
func (b *guestBackend) Shares() *api.Shares {
	return &api.Shares{User: "thin", Password: "share-pw-1234", Shares: []api.Share{{Name: "files", NetUse: `net use Z: \\10.0.3.1\files`}}}
}
func (b *guestBackend) VM(_ context.Context, name, action string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.actions = append(b.actions, name+" "+action)
	return name + " " + action + " done", nil
}
func (b *guestBackend) Update(context.Context, io.Reader, int) (*api.UpdateResult, error) {
	return nil, api.ErrUpdateRefused
}

// TestCtlBesideProgram: thinhost run from a Windows guest's THINHOST
// drive finds the API and the guest's own token in thinhost.json beside
// it, with no flags: status and its own reset work, the host's power
// does not. The program is built and run as a user runs it (for Linux
// here: the lookup beside the program is the same on Windows).
func TestCtlBesideProgram(t *testing.T) {
	testenv.NeedE2E(t)
	const tok = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	host := &guestBackend{}
	srv := &api.Server{Backend: host, Logs: logring.New(10), Token: "host-token-0123456789",
		GuestToken: func(got string) (string, bool) { return "windows", got == tok }}
	ts := httptest.NewServer(srv.Handler(true))
	defer ts.Close()

	drive := t.TempDir()
	exe := filepath.Join(drive, "thinhost")
	build := exec.Command("go", "build", "-o", exe, "./cmd/thinhost")
	build.Dir = testenv.RepoRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	b, _ := json.Marshal(api.GuestConfig{Addr: strings.TrimPrefix(ts.URL, "http://"), VM: "windows", Token: tok})
	if err := os.WriteFile(filepath.Join(drive, api.GuestConfigFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		cmd := exec.Command(exe, args...)
		cmd.Dir = t.TempDir() // not the drive: the file is found beside the program
		cmd.Env = append(os.Environ(), "THINHOST_TOKEN=")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("ctl", "status"); err != nil || !strings.Contains(out, "host      thinhost") {
		t.Errorf("ctl status: %v\n%s", err, out)
	}
	if out, err := run("ctl", "vm", "windows", "reset"); err != nil || !strings.Contains(out, "windows reset done") {
		t.Errorf("ctl vm windows reset: %v\n%s", err, out)
	}
	if out, err := run("ctl", "poweroff"); err == nil || !strings.Contains(out, "403") {
		t.Errorf("ctl poweroff with the guest's token: %v\n%s", err, out)
	}
	host.mu.Lock()
	defer host.mu.Unlock()
	if strings.Join(host.actions, ";") != "windows reset" || len(host.power) != 0 {
		t.Errorf("the host did %v and powered %v", host.actions, host.power)
	}
}

func TestReadGuestConfig(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, api.GuestConfigFile)
	if _, ok := readGuestConfig(p); ok {
		t.Error("no file, yet a configuration")
	}
	os.WriteFile(p, []byte(`{"addr":"10.0.3.1:8484","vm":"windows","token":"t"}`), 0o644)
	if gc, ok := readGuestConfig(p); !ok || gc.Addr != "10.0.3.1:8484" || gc.Token != "t" {
		t.Errorf("readGuestConfig = %+v, %v", gc, ok)
	}
	for _, bad := range []string{`{"vm":"x"}`, `not json`} {
		os.WriteFile(p, []byte(bad), 0o644)
		if _, ok := readGuestConfig(p); ok {
			t.Errorf("%s taken", bad)
		}
	}
}

func TestMemoryUse(t *testing.T) {
	got := memoryUse(api.Memory{Files: 60 << 20, Kernel: 30 << 20, Reserved: 69 << 20,
		Programs: []api.ProgramMemory{{Name: "hostd", Processes: 1, Private: 20 << 20}, {Name: "smbd", Processes: 3, Private: 12 << 20}}})
	if want := "hostd 20 MiB, smbd ×3 12 MiB, files in memory (initramfs, /run) 60 MiB, kernel 30 MiB, kept free by the kernel 69 MiB"; got != want {
		t.Errorf("memoryUse = %q, want %q", got, want)
	}
	if memoryUse(api.Memory{Total: 1}) != "" {
		t.Error("an older host's status: a line of nothing")
	}
}

package smbtorture

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/thinhost/thinhost/internal/testenv"
)

// TestParseRealOutput: smbtorture 4.17's own output for smb2.streams
// against a Windows-style share (12 passed, rename and rename2 failed).
func TestParseRealOutput(t *testing.T) {
	b, err := os.ReadFile("testdata/streams.out")
	if err != nil {
		t.Fatal(err)
	}
	r := Parse("smb2.streams", string(b))
	if r.Passed != 12 || r.Failed != 2 || r.Skipped != 0 {
		t.Errorf("Parse = %d passed, %d failed, %d skipped; want 12, 2, 0", r.Passed, r.Failed, r.Skipped)
	}
	if d := cmp.Diff([]string{"rename", "rename2"}, r.Failures); d != "" {
		t.Errorf("failures (-want +got):\n%s", d)
	}
	if r.String() != "smb2.streams: 12 of 14 passed, 0 skipped" {
		t.Errorf("String = %q", r.String())
	}
}

func TestParseVerdicts(t *testing.T) {
	out := "smbtorture 4.17.12\ntest: a\nsuccess: a\ntest: b\nfailure: b [\nwhy\n]\ntest: c\nerror: c [\n]\n" +
		"test: d\nskip: d [\nW2K8 only\n]\ntest: e\nxfail: e [\n]\nlooks like success: not a verdict\n"
	r := Parse("s", out)
	if r.Passed != 1 || r.Failed != 3 || r.Skipped != 1 {
		t.Errorf("Parse = %+v", r)
	}
	if d := cmp.Diff([]string{"b", "c", "e"}, r.Failures); d != "" {
		t.Errorf("failures (-want +got):\n%s", d)
	}
}

func TestShortfallsAndTable(t *testing.T) {
	rows := []Row{
		{Suite: "smb2.lock", Ours: Result{Passed: 22}, Stock: Result{Passed: 22}},
		{Suite: "smb2.lease", Ours: Result{Passed: 5, Failed: 31, Failures: []string{"break", "request", "v2"}},
			Stock: Result{Passed: 33, Failed: 3, Failures: []string{"v2"}}},
		{Suite: "smb2.streams", Ours: Result{Passed: 12, Failed: 2}, Stock: Result{Failed: 14}},
	}
	got := Shortfalls(rows)
	want := []string{"smb2.lease: 5 passed, stock smbd 33 (failing here only: break, request)"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Shortfalls (-want +got):\n%s", d)
	}
	tab := Table(rows, "thinhost", "stock")
	for _, line := range []string{"| suite | thinhost | stock |", "| smb2.lease | 5 of 36 | 33 of 36 |", "| smb2.streams | 12 of 14 | 0 of 14 |"} {
		if !strings.Contains(tab, line) {
			t.Errorf("table lacks %q:\n%s", line, tab)
		}
	}
}

// TestStockConfTestparm: Samba's checker accepts the stock configuration.
func TestStockConfTestparm(t *testing.T) {
	testparm := testenv.NeedTool(t, "testparm")
	dir := t.TempDir()
	for _, d := range []string{"private", "lock", "state", "cache", "pid", "ncalrpc", "log"} {
		os.MkdirAll(filepath.Join(dir, "run", d), 0o755)
	}
	conf := filepath.Join(dir, "smb.conf")
	if err := os.WriteFile(conf, []byte(StockConf(StockConfig{Dir: dir, Port: 4450, Share: "plain", User: "thin"})), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(testparm, "-s", "--suppress-prompt", conf).CombinedOutput()
	if err != nil || strings.Contains(string(out), "Unknown parameter") {
		t.Fatalf("testparm: %v\n%s", err, out)
	}
}

// TestStockServes: the stock server starts, answers smbtorture's connect
// suite, and stops with its children.
func TestStockServes(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "smbd")
	torture := testenv.NeedTool(t, "smbtorture")
	if err := EnsureUser("thin"); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "stock-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s, err := StartStock(context.Background(), StockConfig{Dir: dir, Port: port, Share: "plain", User: "thin", Password: "stock-test-pw"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), torture, s.Target(), "smb2.connect")
	s.Stop()
	if err != nil || r.Passed != 1 {
		t.Fatalf("smb2.connect on the stock server: %v %+v", err, r)
	}
	if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
		c.Close()
		t.Error("smbd still listens after Stop")
	}
}

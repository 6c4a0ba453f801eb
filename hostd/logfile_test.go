package hostd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thinhost/thinhost/hostd/logring"
)

func TestLogFile(t *testing.T) {
	dir := t.TempDir()
	ring := logring.New(100)
	fmt.Fprintln(ring, "before the data partition was mounted")
	ctx, cancel := context.WithCancel(context.Background())
	lf := startLogFile(ctx, dir, ring, 10*time.Millisecond)
	fmt.Fprintln(ring, "after")
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, "hostd.log"))
		if strings.Contains(string(b), "after") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log file = %q", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Fprintln(ring, "last words")
	cancel()
	lf.Wait()
	b, _ := os.ReadFile(filepath.Join(dir, "hostd.log"))
	if string(b) != "before the data partition was mounted\nafter\nlast words\n" {
		t.Errorf("log file = %q", b)
	}
}

func TestRotate(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "hostd.log")
	for i := 0; i < 5; i++ {
		os.WriteFile(p, []byte(fmt.Sprint(i)), 0o644)
		rotate(p)
	}
	for i, want := range map[int]string{1: "4", 2: "3", 3: "2"} {
		if b, _ := os.ReadFile(fmt.Sprintf("%s.%d", p, i)); string(b) != want {
			t.Errorf("hostd.log.%d = %q, want %q", i, b, want)
		}
	}
	if _, err := os.Stat(p + ".4"); err == nil {
		t.Error("more than 3 old logs kept")
	}
}

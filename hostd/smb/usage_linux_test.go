package smb

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestUsageCache: the first reading walks the share; a fresh one is
// served as it is; a stale one is served while a walk replaces it.
func TestUsageCache(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a"), make([]byte, 1000), 0o644)
	var c UsageCache
	if used, complete := c.Get(dir); used != 1000 || !complete {
		t.Fatalf("first reading: %d %v", used, complete)
	}
	os.WriteFile(filepath.Join(dir, "b"), make([]byte, 500), 0o644)
	if used, _ := c.Get(dir); used != 1000 {
		t.Errorf("a fresh reading is walked again: %d", used)
	}
	c.mu.Lock()
	c.entries[dir].at = time.Now().Add(-usageFresh - time.Second)
	c.mu.Unlock()
	if used, _ := c.Get(dir); used != 1000 {
		t.Errorf("a stale reading is not served while it is walked: %d", used)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if used, _ := c.Get(dir); used == 1500 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the background walk never replaced the stale reading")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

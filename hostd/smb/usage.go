package smb

import (
	"io/fs"
	"path/filepath"
	"sync"
	"time"
)

// UsageCache keeps each share's usage: a walk of a share with many files
// takes seconds, and the host's page and `ctl shares` ask often. A reading
// younger than usageFresh is used as it is; an older one is used while a
// walk in the background replaces it; the first one is walked while the
// caller waits (at most duBudget).
type UsageCache struct {
	mu      sync.Mutex
	entries map[string]*usageEntry
}

type usageEntry struct {
	used     int64
	complete bool
	at       time.Time
	walking  bool
}

const (
	usageFresh = 30 * time.Second
	duBudget   = 2 * time.Second
)

// Get is the bytes of the files under dir and whether the walk finished
// (a slow one stops at duBudget).
func (c *UsageCache) Get(dir string) (int64, bool) {
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[string]*usageEntry{}
	}
	e := c.entries[dir]
	if e == nil {
		c.mu.Unlock()
		used, complete := du(dir, duBudget)
		c.mu.Lock()
		c.entries[dir] = &usageEntry{used: used, complete: complete, at: time.Now()}
		c.mu.Unlock()
		return used, complete
	}
	used, complete := e.used, e.complete
	if time.Since(e.at) > usageFresh && !e.walking {
		e.walking = true
		go func() {
			u, ok := du(dir, duBudget)
			c.mu.Lock()
			e.used, e.complete, e.at, e.walking = u, ok, time.Now(), false
			c.mu.Unlock()
		}()
	}
	c.mu.Unlock()
	return used, complete
}

// du sums the sizes of the files under dir, giving up after budget.
func du(dir string, budget time.Duration) (int64, bool) {
	deadline := time.Now().Add(budget)
	var total int64
	complete := true
	_ = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if time.Now().After(deadline) {
			complete = false
			return filepath.SkipAll
		}
		if e.Type().IsRegular() {
			if fi, err := e.Info(); err == nil {
				total += fi.Size()
			}
		}
		return nil
	})
	return total, complete
}

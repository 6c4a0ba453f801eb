package testenv

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// Lines collects console lines a test waits for.
type Lines struct {
	mu    sync.Mutex
	lines []string
}

// Add records a line.
func (c *Lines) Add(line string) {
	c.mu.Lock()
	c.lines = append(c.lines, line)
	c.mu.Unlock()
}

// Count says how many lines hold text.
func (c *Lines) Count(text string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, l := range c.lines {
		if strings.Contains(l, text) {
			n++
		}
	}
	return n
}

// String is every line so far.
func (c *Lines) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n")
}

// Wait waits until text has appeared n times, and fails t with every line
// after timeout.
func (c *Lines) Wait(t testing.TB, text string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for c.Count(text) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%q seen %d times, want %d; output:\n%s", text, c.Count(text), n, c.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

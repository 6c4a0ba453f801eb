package qemu

import (
	"bytes"
	"io"
	"strings"
	"sync"
)

// Console receives a machine's serial console: it keeps the last lines and
// signals when the ready marker appears.
type Console struct {
	marker string
	// Echo, when set before the first Write, gets a copy of everything.
	Echo io.Writer

	mu      sync.Mutex
	partial []byte
	lines   []string
	max     int
	all     strings.Builder
	ready   chan struct{}
	isReady bool
	waits   map[string]chan struct{}
}

// NewConsole keeps the last max lines and watches for marker.
func NewConsole(max int, marker string) *Console {
	return &Console{marker: marker, max: max, ready: make(chan struct{})}
}

func (c *Console) Write(p []byte) (int, error) {
	if c.Echo != nil {
		c.Echo.Write(p)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.partial = append(c.partial, p...)
	for {
		i := indexNL(c.partial)
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(c.partial[:i]), "\r")
		c.partial = c.partial[i+1:]
		c.lines = append(c.lines, line)
		if len(c.lines) > c.max {
			c.lines = c.lines[len(c.lines)-c.max:]
		}
		c.all.WriteString(line)
		c.all.WriteByte('\n')
		if !c.isReady && strings.Contains(line, c.marker) {
			c.isReady = true
			close(c.ready)
		}
		for text, ch := range c.waits {
			if strings.Contains(line, text) {
				close(ch)
				delete(c.waits, text)
			}
		}
	}
	// Firmware and shim draw boxes with cursor moves and no newline (and
	// then wait for a key): what is awaited counts in the unfinished line
	// too. A line that never ends keeps only its last partialMax bytes.
	if len(c.partial) > partialMax {
		c.partial = append([]byte(nil), c.partial[len(c.partial)-partialMax:]...)
	}
	for text, ch := range c.waits {
		if bytes.Contains(c.partial, []byte(text)) {
			close(ch)
			delete(c.waits, text)
		}
	}
	return len(p), nil
}

// partialMax bounds the console's unfinished line.
const partialMax = 64 << 10

func indexNL(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i
		}
	}
	return -1
}

// Ready is closed when the marker has been seen.
func (c *Console) Ready() <-chan struct{} { return c.ready }

// Tail returns the last lines, including an unterminated last one.
func (c *Console) Tail() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := append([]string(nil), c.lines...)
	if len(c.partial) > 0 {
		out = append(out, string(c.partial))
	}
	if len(out) > c.max {
		out = out[len(out)-c.max:]
	}
	return out
}

// Matching returns the console lines so far that start with prefix.
func (c *Console) Matching(prefix string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, l := range strings.Split(c.all.String(), "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// Await is closed once a console line contains text (at once if one
// already did).
func (c *Console) Await(text string) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.waits[text]; ok {
		return ch
	}
	ch := make(chan struct{})
	if strings.Contains(c.all.String(), text) || bytes.Contains(c.partial, []byte(text)) {
		close(ch)
		return ch
	}
	if c.waits == nil {
		c.waits = map[string]chan struct{}{}
	}
	c.waits[text] = ch
	return ch
}

// Count is how many times s appeared on the console so far (in finished
// lines and the unfinished one).
func (c *Console) Count(s string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Count(c.all.String(), s) + bytes.Count(c.partial, []byte(s))
}

// Seen reports whether any console line so far contains s.
func (c *Console) Seen(s string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Contains(c.all.String(), s)
}

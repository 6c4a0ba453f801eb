// Package logring keeps hostd's recent log lines in memory for the
// management API (GET /v1/logs, with follow) and lets readers wait for new
// ones. It is an io.Writer: hostd's slog handler writes to it beside the
// console.
package logring

import (
	"context"
	"strings"
	"sync"
)

// Ring holds the last Size lines.
type Ring struct {
	mu      sync.Mutex
	lines   []string
	next    int64 // sequence number of the next line
	size    int
	partial string
	changed chan struct{}
}

// New returns a Ring of size lines.
func New(size int) *Ring {
	return &Ring{size: size, changed: make(chan struct{})}
}

// Write splits p into lines and keeps them.
func (r *Ring) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	text := r.partial + string(p)
	parts := strings.Split(text, "\n")
	r.partial = parts[len(parts)-1]
	if len(parts) == 1 {
		return len(p), nil
	}
	for _, l := range parts[:len(parts)-1] {
		r.lines = append(r.lines, l)
		r.next++
	}
	if len(r.lines) > r.size {
		r.lines = append([]string(nil), r.lines[len(r.lines)-r.size:]...)
	}
	close(r.changed)
	r.changed = make(chan struct{})
	return len(p), nil
}

// Since returns the lines with sequence numbers from seq on (as many as
// the ring still holds), and the sequence number to ask for next.
func (r *Ring) Since(seq int64) ([]string, int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	first := r.next - int64(len(r.lines))
	if seq < first {
		seq = first
	}
	if seq >= r.next {
		return nil, r.next
	}
	return append([]string(nil), r.lines[seq-first:]...), r.next
}

// Wait blocks until a line after seq exists or ctx ends.
func (r *Ring) Wait(ctx context.Context, seq int64) error {
	for {
		r.mu.Lock()
		if r.next > seq {
			r.mu.Unlock()
			return nil
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

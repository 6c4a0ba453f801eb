package hostd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/thinhost/thinhost/hostd/logring"
)

// Log files on the data partition: hostd.log, rotated to hostd.log.1 ...
// hostd.log.N when it passes maxLogBytes.
const (
	maxLogBytes = 8 << 20
	keepLogs    = 3
)

// logFile copies hostd's log from the ring into dir/hostd.log: everything
// since boot first, then new lines as they come, synced at most every
// syncEvery. It returns when ctx ends, after a last write and sync.
type logFile struct {
	dir       string
	ring      *logring.Ring
	syncEvery time.Duration
	done      chan struct{}
}

func startLogFile(ctx context.Context, dir string, ring *logring.Ring, syncEvery time.Duration) *logFile {
	lf := &logFile{dir: dir, ring: ring, syncEvery: syncEvery, done: make(chan struct{})}
	go lf.run(ctx)
	return lf
}

// Wait returns once the last lines are written and synced.
func (lf *logFile) Wait() { <-lf.done }

func (lf *logFile) run(ctx context.Context) {
	defer close(lf.done)
	path := filepath.Join(lf.dir, "hostd.log")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer func() { f.Sync(); f.Close() }()
	size := int64(0)
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	var seq int64
	for {
		// Looked at before the lines are read: once the end is seen, one
		// more read takes every line logged before it.
		stopping := ctx.Err() != nil
		lines, next := lf.ring.Since(seq)
		seq = next
		if len(lines) > 0 {
			text := strings.Join(lines, "\n") + "\n"
			if size+int64(len(text)) > maxLogBytes {
				f.Sync()
				f.Close()
				rotate(path)
				if f, err = os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644); err != nil {
					return
				}
				size = 0
			}
			n, _ := f.WriteString(text)
			size += int64(n)
			f.Sync()
		}
		if stopping {
			return
		}
		// Batch: wait for a new line, then a moment for more.
		if err := lf.ring.Wait(ctx, seq); err != nil {
			continue // the end: the last read above
		}
		select {
		case <-ctx.Done():
		case <-time.After(lf.syncEvery):
		}
	}
}

func rotate(path string) {
	for i := keepLogs - 1; i >= 1; i-- {
		os.Rename(fmt.Sprintf("%s.%d", path, i), fmt.Sprintf("%s.%d", path, i+1))
	}
	os.Rename(path, path+".1")
}

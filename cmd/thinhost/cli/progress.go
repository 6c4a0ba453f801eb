package cli

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/thinhost/thinhost/builder/cache"
	"golang.org/x/term"
)

// progressWriter returns w when it is a terminal, for progress bars, and
// nil otherwise: logs carry the same facts without carriage returns.
func progressWriter(w io.Writer) io.Writer {
	if f, ok := w.(interface{ Fd() uintptr }); ok && term.IsTerminal(int(f.Fd())) {
		return w
	}
	return nil
}

// newBar returns a progress callback drawing a bar (bytes, speed, ETA) on
// w when it is a terminal, or nil.
func newBar(w io.Writer, what string, total int64) func(done, total int64) {
	if progressWriter(w) == nil {
		return nil
	}
	bar := progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)
	return func(done, _ int64) { _ = bar.Set64(done) }
}

// downloadBars returns the builder's download progress callback: a bar
// per download (bytes, speed, ETA) on w when it is a terminal, or nil.
func downloadBars(w io.Writer) func(cache.Progress) {
	if progressWriter(w) == nil {
		return nil
	}
	var mu sync.Mutex
	bars := map[string]*progressbar.ProgressBar{}
	return func(p cache.Progress) {
		mu.Lock()
		defer mu.Unlock()
		bar := bars[p.Label]
		if bar == nil {
			bar = progressbar.NewOptions64(-1,
				progressbar.OptionSetWriter(w),
				progressbar.OptionSetDescription(p.Label),
				progressbar.OptionShowBytes(true),
				progressbar.OptionThrottle(200*time.Millisecond),
				progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
			)
			bars[p.Label] = bar
		}
		if p.Total > 0 {
			bar.ChangeMax64(p.Total)
		}
		_ = bar.Set64(p.Done)
		if p.Finished {
			_ = bar.Finish()
			delete(bars, p.Label)
		}
	}
}

// dash stands in for an empty table cell.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
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

// dash stands in for an empty table cell.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

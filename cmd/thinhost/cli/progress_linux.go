package cli

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/thinhost/thinhost/builder/cache"
)

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

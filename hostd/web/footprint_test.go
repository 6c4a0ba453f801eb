package web

import (
	"runtime"
	"testing"
)

// TestFootprint: what the page keeps in hostd's memory once set up (its
// parsed templates, static files, maps) is far below the 5 MiB the page
// may add to an idle hostd.
func TestFootprint(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := &Server{}
	h := s.Handler()
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("the page set up holds %d KiB of heap", grown>>10)
	if grown > 1<<20 {
		t.Errorf("the page holds %d KiB once set up; an idle hostd may grow by 5 MiB with it, most of it the binary's", grown>>10)
	}
	runtime.KeepAlive(h)
}

package input

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestReadEvents: events come out as they went in, and reading stops
// when each says so, or with the reader's error at its end.
func TestReadEvents(t *testing.T) {
	var b []byte
	b = AppendEvent(b, EvKey, 30, 1)
	b = AppendEvent(b, EvSyn, 0, 0)
	b = AppendEvent(b, EvSw, 0, 1)
	var got [][3]int
	err := ReadEvents(bytes.NewReader(b), func(typ, code uint16, value int32) bool {
		got = append(got, [3]int{int(typ), int(code), int(value)})
		return typ == EvSw
	})
	if err != nil || !slices.Equal(got, [][3]int{{EvKey, 30, 1}, {EvSyn, 0, 0}, {EvSw, 0, 1}}) {
		t.Errorf("ReadEvents = %v, %v", got, err)
	}
	// Half an event at the end: the reader's error.
	err = ReadEvents(bytes.NewReader(b[:EventSize+10]), func(uint16, uint16, int32) bool { return false })
	if err != io.ErrUnexpectedEOF {
		t.Errorf("a cut event: %v, want io.ErrUnexpectedEOF", err)
	}
}

// TestFind lists eventN devices the match accepts (given their device
// directory), never inputN.
func TestFind(t *testing.T) {
	class := t.TempDir()
	for _, d := range []string{"event0", "event1", "input3", "event2"} {
		os.MkdirAll(filepath.Join(class, d, "device"), 0o755)
	}
	got, err := Find(class, func(dev string) bool { return filepath.Base(filepath.Dir(dev)) != "event1" })
	if err != nil || !slices.Equal(got, []string{"event0", "event2"}) {
		t.Errorf("Find = %v, %v", got, err)
	}
	if _, err := Find(filepath.Join(class, "absent"), func(string) bool { return true }); err == nil {
		t.Error("no class directory: no error")
	}
}

package logring

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRing(t *testing.T) {
	r := New(3)
	fmt.Fprint(r, "a\nb\nc")
	lines, next := r.Since(0)
	if !cmp.Equal(lines, []string{"a", "b"}) || next != 2 {
		t.Errorf("Since(0) = %q, %d", lines, next)
	}
	fmt.Fprint(r, "\nd\ne\n")
	lines, next = r.Since(0)
	if !cmp.Equal(lines, []string{"c", "d", "e"}) || next != 5 {
		t.Errorf("after overflow Since(0) = %q, %d", lines, next)
	}
	lines, _ = r.Since(4)
	if !cmp.Equal(lines, []string{"e"}) {
		t.Errorf("Since(4) = %q", lines)
	}
	done := make(chan error)
	go func() { done <- r.Wait(context.Background(), 5) }()
	select {
	case <-done:
		t.Fatal("Wait returned before a new line")
	case <-time.After(20 * time.Millisecond):
	}
	fmt.Fprintln(r, "f")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Wait(ctx, 100); err == nil {
		t.Error("Wait ignored a cancelled context")
	}
}

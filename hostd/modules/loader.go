package modules

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// LoadFunc loads one module file (a path relative to the modules dir).
type LoadFunc func(ctx context.Context, name, relPath string) error

// ErrDependency marks a module skipped because a dependency failed.
var ErrDependency = errors.New("dependency failed")

// LoadResult is the outcome of loading one module.
type LoadResult struct {
	Name     string
	Err      error
	Duration time.Duration
}

// LoadParallel loads the modules in order (a closure from
// ModuleGraph.Closure): each starts as soon as every module it depends on
// is loaded, so independent drivers initialize side by side. Loading
// modules one by one under TCG takes seconds each for ahci or ext4, which
// is why this is not a loop. A module whose dependency failed is not
// tried. Results come back in order.
func LoadParallel(ctx context.Context, g *ModuleGraph, order []string, load LoadFunc) []LoadResult {
	type state struct {
		done chan struct{}
		res  LoadResult
	}
	states := map[string]*state{}
	for _, n := range order {
		states[n] = &state{done: make(chan struct{}), res: LoadResult{Name: n}}
	}
	var wg sync.WaitGroup
	for _, n := range order {
		st := states[n]
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(st.done)
			for _, d := range g.Deps[n] {
				ds, ok := states[d]
				if !ok {
					continue
				}
				select {
				case <-ds.done:
				case <-ctx.Done():
					st.res.Err = ctx.Err()
					return
				}
				if ds.res.Err != nil {
					st.res.Err = fmt.Errorf("%w: %s", ErrDependency, d)
					return
				}
			}
			start := time.Now()
			st.res.Err = load(ctx, n, g.Path[n])
			st.res.Duration = time.Since(start)
		}()
	}
	wg.Wait()
	out := make([]LoadResult, len(order))
	for i, n := range order {
		out[i] = states[n].res
	}
	return out
}

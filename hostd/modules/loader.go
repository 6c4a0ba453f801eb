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
	flights := map[string]*flight{}
	for _, n := range order {
		flights[n] = newFlight()
	}
	return loadFlights(ctx, g, order, flights, load)
}

// flight is one module's load: done is closed once it ended, with err
// its outcome.
type flight struct {
	done chan struct{}
	err  error
	// low is its thread while it loads in the background (Linux).
	low lowThread
}

func newFlight() *flight { return &flight{done: make(chan struct{})} }

// loadFlights loads mine, each in its own flight (flights[name], which
// this call ends), once the flights of its dependencies ended well,
// whoever loads them: flights holds this call's and those other calls
// had under way when it started. Results come back in mine's order.
func loadFlights(ctx context.Context, g *ModuleGraph, mine []string, flights map[string]*flight, load LoadFunc) []LoadResult {
	out := make([]LoadResult, len(mine))
	var wg sync.WaitGroup
	for i, n := range mine {
		f := flights[n]
		out[i].Name = n
		wg.Add(1)
		go func(res *LoadResult) {
			defer wg.Done()
			defer close(f.done)
			defer func() { f.err = res.Err }()
			for _, d := range g.Deps[n] {
				df, ok := flights[d]
				if !ok {
					continue
				}
				select {
				case <-df.done:
				case <-ctx.Done():
					res.Err = ctx.Err()
					return
				}
				if df.err != nil {
					res.Err = fmt.Errorf("%w: %s", ErrDependency, d)
					return
				}
			}
			start := time.Now()
			res.Err = load(ctx, n, g.Path[n])
			res.Duration = time.Since(start)
		}(&out[i])
	}
	wg.Wait()
	return out
}

// Package testbrowser starts headless Chromium (Debian's chromium
// package) for a test, through chromedp: the host's page is tested in a
// real browser, its forms, redirects, cookies and script included.
package testbrowser

import (
	"context"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/thinhost/thinhost/internal/testenv"
)

// Start starts a browser for t (skipping t without chromium, failing it
// under THINHOST_E2E=1) and returns the context of its first tab; t's
// cleanup stops it.
func Start(t testing.TB, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	testenv.NeedE2E(t) // a real browser: the full suite's
	exe := testenv.NeedTool(t, "chromium")
	// As root (these machines) Chromium's sandbox cannot start.
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	opts = append(opts, extra...)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The browser lives as long as the context of its first action: that
	// one has no deadline.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// Tab opens another tab of the browser ctx belongs to (for two pages at
// once); t's cleanup closes it.
func Tab(t testing.TB, ctx context.Context) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(ctx)
	t.Cleanup(cancel)
	// A tab, too, lives as long as the context of its first action.
	if err := chromedp.Do(tab, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return tab
}

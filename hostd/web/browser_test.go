package web

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/thinhost/thinhost/internal/testbrowser"
)

// TestBrowser logs in and out in headless Chromium against a fake host:
// the page's forms, redirects and script as a browser runs them (the
// end-to-end test does the same against a booted host).
func TestBrowser(t *testing.T) {
	ctx := testbrowser.Start(t)
	f := newFixture(t)
	step := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(c, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	step("wrong token",
		chromedp.Navigate(f.ts.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("secret")),
		chromedp.SendKeys(chromedp.ID("secret"), "wrong"),
		chromedp.Submit(chromedp.ID("secret")),
		chromedp.WaitVisible(chromedp.CSS(".login .bad")))
	step("token",
		chromedp.SendKeys(chromedp.ID("secret"), testToken),
		chromedp.Submit(chromedp.ID("secret")),
		chromedp.WaitVisible(chromedp.ID("guests")))
	text := func(c context.Context, sel string) string {
		t.Helper()
		c, cancel := context.WithTimeout(c, 30*time.Second)
		defer cancel()
		s, err := chromedp.Run(c, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	// waitFor polls an element's text until it has want: the page may be
	// between documents (a navigation, a refreshed section) meanwhile.
	waitFor := func(c context.Context, sel, want string) {
		t.Helper()
		var last string
		var err error
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			cc, cancel := context.WithTimeout(c, 5*time.Second)
			last, err = chromedp.Run(cc, chromedp.Text(chromedp.CSS(sel)))
			cancel()
			if err == nil && strings.Contains(last, want) {
				return
			}
		}
		t.Fatalf("%s never showed %q (%v); it shows:\n%s\nhost was asked %.200v", sel, want, err, last, f.host.took())
	}
	if main := text(ctx, "main"); !strings.Contains(main, "windows") || !strings.Contains(main, `net use Z: \\10.0.2.2\files`) {
		t.Fatalf("overview:\n%s", main)
	}

	// The log, live, in a second tab.
	logTab := testbrowser.Tab(t, ctx)
	c, cancelC := context.WithTimeout(logTab, 30*time.Second)
	defer cancelC()
	if err := chromedp.Do(c, chromedp.Navigate(f.ts.URL+"/log"), chromedp.WaitVisible(chromedp.ID("log"))); err != nil {
		t.Fatal(err)
	}
	waitFor(logTab, "#live", "live")

	// Reset asks, then acts; the action is logged, and the line arrives.
	step("reset",
		chromedp.Click(chromedp.CSS(`#guest-windows form:has(input[value="reset"]) button`)),
		chromedp.WaitVisible(chromedp.CSS(".confirm")))
	if q := text(ctx, ".confirm"); !strings.Contains(q, `Reset the guest "windows" to its snapshot?`) {
		t.Errorf("confirmation: %s", q)
	}
	step("confirm", chromedp.Click(chromedp.CSS(".confirm button.danger")), chromedp.WaitVisible(chromedp.CSS(".flash")))
	if fl := text(ctx, ".flash"); fl != "reset done" {
		t.Errorf("flash: %q", fl)
	}
	f.srv.Log.Info("a line for the live log")
	waitFor(logTab, "#log", "a line for the live log")

	// The page's own script refreshes a section: a guest's new state shows
	// without a reload.
	f.host.mu.Lock()
	f.host.status.VMs[0].State = "stopped"
	f.host.mu.Unlock()
	waitFor(ctx, "#guests", "stopped")

	// A POST without the CSRF token, from the logged-in page, is refused.
	status, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch("/action", {method: "POST",
		body: new URLSearchParams({kind: "host", name: "laptop", action: "reboot", confirm: "laptop"})}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
	if err != nil || status != 403 {
		t.Errorf("an action without the CSRF token: %d %v", status, err)
	}

	// An update, uploaded with the page's script (progress, then the
	// overview saying what the host did).
	file := filepath.Join(t.TempDir(), "host.update")
	if err := os.WriteFile(file, bytes.Repeat([]byte("u"), 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	step("upload",
		chromedp.SetUploadFiles(chromedp.ID("update-file"), []string{file}),
		chromedp.Click(chromedp.CSS("#update-form button")))
	waitFor(ctx, "main", "Slot b holds build 20261127-new")

	got := f.host.took()
	if len(got) != 2 || got[0] != "reset windows" || !strings.HasPrefix(got[1], `update "uuuu`) || !strings.HasSuffix(got[1], `" tries 3`) {
		t.Errorf("the host was asked %.200v", got)
	}
}

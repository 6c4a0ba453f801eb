package e2e

import (
	"context"
	"html"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/thinhost/thinhost/internal/testbrowser"
)

// within runs actions on ctx with a deadline.
func within(t *testing.T, ctx context.Context, d time.Duration, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		// What the tab shows, for the failure's message.
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		where, _ := chromedp.Run(c, chromedp.Location())
		body, _ := chromedp.Run(c, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		t.Fatalf("%s: %v; the tab is at %s and shows:\n%s", what, err, where, body)
	}
}

// text is an element's text, waiting for it up to a minute.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	s, err := chromedp.Run(c, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// waitText waits until the element's text has want in it count times;
// the page may be between documents meanwhile (a navigation, a section
// its script refreshed).
func waitText(t *testing.T, ctx context.Context, sel, want string, count int, timeout time.Duration) {
	t.Helper()
	var got string
	var err error
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(time.Second) {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		got, err = chromedp.Run(c, chromedp.Text(chromedp.CSS(sel)))
		cancel()
		if err == nil && strings.Count(got, want) >= count {
			return
		}
	}
	t.Fatalf("%s never showed %q %d times (%v); it shows:\n%s", sel, want, count, err, got)
}

// screenshot saves the tab's page as a test artifact.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	png, err := chromedp.Run(c, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	keepArtifact(t, p)
}

// checkPage is the host's page in a real browser, through the API port
// forwarded from the build machine (run --forward's way): a wrong token
// gets no page; the token logs in; the overview shows the shares and the
// running test guest; its reset button asks first, naming the guest, and
// the guest comes back (its boot line appears live in the log page open
// in a second tab); an action posted without the CSRF token is refused.
// The guest must have a snapshot.
func checkPage(t *testing.T, h *testHost) {
	// HTTPS with the host's own certificate: Chromium accepts that one
	// key alone (its SPKI's SHA-256), as a person accepts it after
	// comparing the fingerprint with the host's console.
	base := h.base()
	ctx := testbrowser.Start(t, chromedp.Flag("ignore-certificate-errors-spki-list", h.spki(t)))

	// A wrong token: the login form again, and no overview.
	within(t, ctx, time.Minute, "wrong token",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("secret")),
		chromedp.SendKeys(chromedp.ID("secret"), "not-the-token"),
		chromedp.Submit(chromedp.ID("secret")),
		chromedp.WaitVisible(chromedp.CSS(".login .bad")))
	if got := text(t, ctx, "main"); !strings.Contains(got, "not the host's token") || strings.Contains(got, "Guests") {
		t.Fatalf("after a wrong token the page shows:\n%s", got)
	}

	// The token: the overview.
	within(t, ctx, time.Minute, "log in",
		chromedp.SendKeys(chromedp.ID("secret"), testToken),
		chromedp.Submit(chromedp.ID("secret")),
		chromedp.WaitVisible(chromedp.ID("guests")))
	overview := text(t, ctx, "main")
	for _, want := range []string{"Host healthy", "Data partition", `net use Z: \\10.0.3.1\files`, "guest", "running", "Reset to snapshot", "smbd"} {
		if !strings.Contains(overview, want) {
			t.Errorf("the overview lacks %q:\n%s", want, overview)
		}
	}
	screenshot(t, ctx, "page-overview.png")

	// The log, live, in a second tab.
	logTab := testbrowser.Tab(t, ctx)
	within(t, logTab, time.Minute, "open the log",
		chromedp.Navigate(base+"/log"),
		chromedp.WaitVisible(chromedp.ID("log")))
	waitText(t, logTab, "#live", "live", 1, time.Minute)
	boots := strings.Count(text(t, logTab, "#log"), "thinhost-guest: found=")

	// Reset: asked first, naming the guest; then done.
	within(t, ctx, time.Minute, "press reset",
		chromedp.Click(chromedp.CSS(`#guest-guest form:has(input[value="reset"]) button`)),
		chromedp.WaitVisible(chromedp.CSS(".confirm")))
	if got := text(t, ctx, ".confirm"); !strings.Contains(got, `Reset the guest "guest" to its snapshot?`) {
		t.Errorf("the confirmation does not name the guest:\n%s", got)
	}
	screenshot(t, ctx, "page-confirm.png")
	within(t, ctx, 5*time.Minute, "confirm reset",
		chromedp.Click(chromedp.CSS(".confirm button.danger")),
		chromedp.WaitVisible(chromedp.CSS(".flash")))
	if bad, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector(".flash.bad") !== null`)); bad {
		t.Fatalf("reset failed: %s", text(t, ctx, ".flash"))
	}
	// The guest's boot line arrives in the log tab without a reload.
	waitText(t, logTab, "#log", "thinhost-guest: found=", boots+1, 3*time.Minute)
	waitText(t, ctx, "#guests", "running", 1, time.Minute)
	screenshot(t, logTab, "page-log.png")
	t.Logf("page: reset the guest; its boot line appeared live in the log")

	// An action without the CSRF token, sent by the logged-in browser.
	status, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch("/action", {method: "POST",
		body: new URLSearchParams({kind: "host", name: "thinhost-test", action: "poweroff", confirm: "thinhost-test"})}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
	if err != nil || status != http.StatusForbidden {
		t.Errorf("an action without the CSRF token: status %d, %v", status, err)
	}
	// Without the browser's cookie, nothing.
	c := h.httpClient(t, nil)
	for _, req := range []func() (*http.Response, error){
		func() (*http.Response, error) {
			return c.PostForm(base+"/action", url.Values{"kind": {"host"}, "name": {"thinhost-test"}, "action": {"poweroff"}})
		},
		func() (*http.Response, error) { return c.Get(base + "/part/guests") },
	} {
		resp, err := req()
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s %s without a session: %s", resp.Request.Method, resp.Request.URL.Path, resp.Status)
		}
	}
}

// runCtlLocal runs a ctl command that talks to no host.
func runCtlLocal(t *testing.T, args ...string) string {
	t.Helper()
	stdout, stderr, code := runCLI(t, append([]string{"ctl"}, args...)...)
	if code != 0 {
		t.Fatalf("ctl %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	return stdout
}

// pageUpload logs in to h's page with the test token and uploads an
// update file through its form, streamed as a browser does; it returns
// the message the overview shows after.
func pageUpload(t *testing.T, h *testHost, file string, tries int) string {
	t.Helper()
	base := h.base()
	jar, _ := cookiejar.New(nil)
	c := h.httpClient(t, jar)
	post := func(req *http.Request) string {
		t.Helper()
		req.Header.Set("Origin", base)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %s\n%s", req.Method, req.URL.Path, resp.Status, b)
		}
		return string(b)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(url.Values{"secret": {testToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	overview := post(req)
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(overview)
	if m == nil {
		t.Fatalf("no CSRF token on the overview:\n%s", overview)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := mw.WriteField("csrf", m[1])
		if err == nil {
			err = mw.WriteField("tries", strconv.Itoa(tries))
		}
		var part io.Writer
		if err == nil {
			part, err = mw.CreateFormFile("update", filepath.Base(file))
		}
		if err == nil {
			_, err = io.Copy(part, f)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	req, _ = http.NewRequest(http.MethodPost, base+"/update", pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	after := post(req)
	flash := regexp.MustCompile(`(?s)<p class="flash[^"]*"[^>]*>(.*?)</p>`).FindStringSubmatch(after)
	if flash == nil {
		t.Fatalf("the overview after the upload says nothing:\n%s", after)
	}
	return html.UnescapeString(flash[1])
}

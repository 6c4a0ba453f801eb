package web

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thinhost/thinhost/hostd/api"
	"github.com/thinhost/thinhost/hostd/logring"
	"github.com/thinhost/thinhost/hostd/supervise"
	"github.com/thinhost/thinhost/hostd/vm"
	"github.com/thinhost/thinhost/internal/passwd"
)

const testToken = "page-test-token-0123456789"

// fakeHost is a host for the page: its status, and what was asked of it.
type fakeHost struct {
	mu     sync.Mutex
	status api.Status
	shares *api.Shares
	asked  []string
}

func (f *fakeHost) Status() api.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}
func (f *fakeHost) Shares() *api.Shares { return f.shares }
func (f *fakeHost) Restart(name string) error {
	f.record("restart " + name)
	if name != "smbd" {
		return fmt.Errorf("restart %s: %w", name, api.ErrNotFound)
	}
	return nil
}
func (f *fakeHost) Power(action string) error { f.record(action); return nil }
func (f *fakeHost) VM(ctx context.Context, name, action string) (string, error) {
	f.record(action + " " + name)
	if name != "windows" {
		return "", fmt.Errorf("%w: %s", vm.ErrUnknown, name)
	}
	return action + " done", nil
}
func (f *fakeHost) Update(_ context.Context, r io.Reader, tries int) (*api.UpdateResult, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	f.record(fmt.Sprintf("update %q tries %d", b, tries))
	if string(b) == "refuse me" {
		return nil, fmt.Errorf("%w: the system image does not fit slot b", api.ErrUpdateRefused)
	}
	return &api.UpdateResult{Slot: "b", Build: "20261127-new", Tries: tries, Version: 3}, nil
}
func (f *fakeHost) record(s string) {
	f.mu.Lock()
	f.asked = append(f.asked, s)
	f.mu.Unlock()
}
func (f *fakeHost) took() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.asked...)
}

// testHash is the page password's hash, made once (Argon2id is slow on
// purpose).
var testHash = sync.OnceValues(func() (string, error) { return passwd.Hash("correct horse", []byte("page-test-salt")) })

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	host   *fakeHost
	srv    *Server
	ts     *httptest.Server
	clock  *clock
	logs   *logring.Ring
	viewer string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	f := &fixture{clock: &clock{t: now}, logs: logring.New(1000)}
	f.host = &fakeHost{status: api.Status{Hostname: "laptop", Uptime: 3725, Memory: api.Memory{Total: 8 << 30, Available: 6 << 30},
		CPUs: 4, Load: []float64{0.5, 0.25, 0.1},
		Temperatures: []api.Temperature{{Name: "x86_pkg_temp", Celsius: 97, Critical: 100}},
		Power:        &api.Power{OnAC: false, Percent: 7},
		Data:         &api.Data{Device: "/dev/nvme0n1p4", Size: 100 << 30, Free: 5 << 30, Mounted: true, Boot: 3},
		Services:     []supervise.Status{{Name: "smbd", State: supervise.Running, Pid: 42}, {Name: "vm-windows", State: supervise.Running}},
		SecureBoot:   "on (lockdown: integrity)",
		Slots: []api.Slot{{Name: "a", Booted: true, State: "good", Version: 2, Build: "20261127-abc", Profile: "laptop.hcl"},
			{Name: "b", State: "failed", Version: 1, Build: "20261126-def"}},
		Update: "the update to build 20261126-def did not reach ready: slot a runs again",
		VMs: []vm.Status{{Name: "windows", State: "running", Accel: "kvm", MemoryMiB: 4096, CPUs: 3,
			Snapshot: now.Add(-3 * time.Hour), DiskBytes: 20 << 30, OverlayBytes: 300 << 20},
			{Name: "installer", State: "stopped", Accel: "kvm", MemoryMiB: 2048, CPUs: 2, Install: true,
				LastExit: "exit status 1", Notes: []string{"KVM is not usable"}}},
		Problems: []string{}},
		shares: &api.Shares{User: "thin", Password: "share-secret-pw", PasswordFrom: "generated on first boot",
			Shares: []api.Share{{Name: "files", Path: "/data/shares/files", Drive: "Z", UsedBytes: 1 << 20, UsageComplete: true,
				FreeBytes: 5 << 30, NetUse: `net use Z: \\10.0.2.2\files /user:thin`}}}}
	hash, err := testHash()
	if err != nil {
		t.Fatal(err)
	}
	f.srv = &Server{Backend: f.host, Logs: f.logs, PasswordHash: hash, Now: f.clock.now,
		Log:     slog.New(slog.NewTextHandler(f.logs, nil)),
		TokenOK: func(s string) bool { return s == testToken },
		GuestOf: func(*http.Request) string { return f.viewer }}
	f.ts = httptest.NewServer(f.srv.Handler())
	t.Cleanup(f.ts.Close)
	return f
}

// browser is a client with a cookie jar that does not follow redirects
// and sends the page's origin as a browser does.
func (f *fixture) browser(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Transport: originTransport{f.ts.URL},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type originTransport struct{ origin string }

func (o originTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && r.Header.Get("Origin") == "" {
		r.Header.Set("Origin", o.origin)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func get(t *testing.T, c *http.Client, u string) (int, string, http.Header) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func post(t *testing.T, c *http.Client, u string, form url.Values) (int, string, http.Header) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// login logs c in with secret and returns the session's CSRF token.
func (f *fixture) login(t *testing.T, c *http.Client, secret string) string {
	t.Helper()
	code, body, hdr := post(t, c, f.ts.URL+"/login", url.Values{"secret": {secret}})
	if code != http.StatusSeeOther || hdr.Get("Location") != "/" {
		t.Fatalf("login: %d %s\n%s", code, hdr.Get("Location"), body)
	}
	_, body, _ = get(t, c, f.ts.URL+"/")
	i := strings.Index(body, `name="csrf" value="`)
	if i < 0 {
		t.Fatalf("no CSRF token on the overview:\n%s", body)
	}
	rest := body[i+len(`name="csrf" value="`):]
	return rest[:strings.IndexByte(rest, '"')]
}

func TestLoggedOut(t *testing.T) {
	f := newFixture(t)
	c := f.browser(t)
	code, _, hdr := get(t, c, f.ts.URL+"/")
	if code != http.StatusSeeOther || hdr.Get("Location") != "/login" {
		t.Errorf("GET / logged out: %d to %q, want the login form", code, hdr.Get("Location"))
	}
	for _, p := range []string{"/part/guests", "/log/stream"} {
		if code, body, _ := get(t, c, f.ts.URL+p); code != http.StatusUnauthorized || strings.Contains(body, "windows") {
			t.Errorf("GET %s logged out: %d %q", p, code, body)
		}
	}
	code, body, hdr := get(t, c, f.ts.URL+"/login")
	if code != http.StatusOK || !strings.Contains(body, `name="secret"`) || strings.Contains(body, "share-secret-pw") {
		t.Errorf("login form: %d\n%s", code, body)
	}
	csp := hdr.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") || hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("headers: %v", hdr)
	}
	if code, _, _ := post(t, c, f.ts.URL+"/action", url.Values{"kind": {"host"}, "name": {"laptop"}, "action": {"poweroff"}, "confirm": {"laptop"}}); code != http.StatusUnauthorized {
		t.Errorf("an action without a session: %d", code)
	}
	if got := f.host.took(); len(got) != 0 {
		t.Errorf("the host was asked %v without a session", got)
	}
}

func TestLoginAndLockout(t *testing.T) {
	f := newFixture(t)
	c := f.browser(t)
	for i := 1; i <= FreeFailures; i++ {
		code, body, hdr := post(t, c, f.ts.URL+"/login", url.Values{"secret": {"wrong"}})
		if code != http.StatusUnauthorized || !strings.Contains(body, "not the host&#39;s token") || hdr.Get("Set-Cookie") != "" {
			t.Fatalf("wrong secret %d: %d %v\n%s", i, code, hdr, body)
		}
	}
	// The next failure locks the address out; then even the token waits.
	code, body, _ := post(t, c, f.ts.URL+"/login", url.Values{"secret": {"wrong"}})
	if code != http.StatusUnauthorized || !strings.Contains(body, "try again in 30s") {
		t.Fatalf("failure past the free ones: %d\n%s", code, body)
	}
	code, body, _ = post(t, c, f.ts.URL+"/login", url.Values{"secret": {testToken}})
	if code != http.StatusTooManyRequests || !strings.Contains(body, "Too many failed logins") {
		t.Fatalf("the token while locked out: %d\n%s", code, body)
	}
	f.clock.add(31 * time.Second)
	// Another failure doubles the wait.
	if _, body, _ := post(t, c, f.ts.URL+"/login", url.Values{"secret": {"wrong"}}); !strings.Contains(body, "try again in 1m0s") {
		t.Fatalf("second lockout:\n%s", body)
	}
	f.clock.add(61 * time.Second)

	resp, err := c.PostForm(f.ts.URL+"/login", url.Values{"secret": {testToken}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == CookieName {
			cookie = ck
		}
	}
	if resp.StatusCode != http.StatusSeeOther || cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || len(cookie.Value) < 40 {
		t.Fatalf("login with the token: %d, cookie %+v", resp.StatusCode, cookie)
	}
	code, body, _ = get(t, c, f.ts.URL+"/")
	for _, want := range []string{"laptop", "healthy", "1 h 2 min", "2 GiB used of 8 GiB", "4 cores, load 0.50 0.25 0.10",
		`<dd class="bad">97 °C</dd>`, `<dd class="bad">battery 7%</dd>`,
		"95 GiB used, 5 GiB free of 100 GiB (95%)", "nearly full",
		`net use Z: \\10.0.2.2\files /user:thin`, "share-secret-pw", "<details", "generated on first boot",
		"windows", "3 h 1 min ago, 300 MiB written since", "Reset to snapshot", "Shut down", `href="/log?svc=smbd"`,
		"<strong>booted</strong>, good, build 20261127-abc (laptop.hcl)", `<dd class="bad">failed, build 20261126-def</dd>`,
		"did not reach ready", "on (lockdown: integrity)", "Eject install media", "exit status 1", "KVM is not usable",
		"3 CPUs", "2 CPUs", `<span class="hint">guest windows</span>`} {
		if !strings.Contains(body, want) {
			t.Errorf("the overview lacks %q", want)
		}
	}
	if code != http.StatusOK || t.Failed() {
		t.Fatalf("overview: %d\n%s", code, body)
	}

	// The page password logs in too, from a second browser.
	c2 := f.browser(t)
	f.login(t, c2, "correct horse")

	// Logging out ends the session.
	csrf := f.login(t, c, testToken)
	if code, _, hdr := post(t, c, f.ts.URL+"/logout", url.Values{"csrf": {csrf}}); code != http.StatusSeeOther || hdr.Get("Location") != "/login" {
		t.Errorf("logout: %d", code)
	}
	if code, _, _ := get(t, c, f.ts.URL+"/part/guests"); code != http.StatusUnauthorized {
		t.Errorf("after logout: %d", code)
	}
	// An idle session ends.
	f.clock.add(SessionIdle + time.Minute)
	if code, _, _ := get(t, c2, f.ts.URL+"/part/guests"); code != http.StatusUnauthorized {
		t.Errorf("a session idle for %s: %d", SessionIdle, code)
	}
}

func TestActions(t *testing.T) {
	f := newFixture(t)
	c := f.browser(t)
	csrf := f.login(t, c, testToken)
	form := func(kind, name, action string, more ...string) url.Values {
		v := url.Values{"csrf": {csrf}, "kind": {kind}, "name": {name}, "action": {action}}
		for i := 0; i+1 < len(more); i += 2 {
			v.Set(more[i], more[i+1])
		}
		return v
	}

	// Without the CSRF token, or from another origin: refused.
	noToken := form("guest", "windows", "reset", "confirm", "windows")
	noToken.Del("csrf")
	if code, _, _ := post(t, c, f.ts.URL+"/action", noToken); code != http.StatusForbidden {
		t.Errorf("an action without the CSRF token: %d", code)
	}
	req, _ := http.NewRequest(http.MethodPost, f.ts.URL+"/action", strings.NewReader(form("guest", "windows", "reset", "confirm", "windows").Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://evil.example")
	if resp, err := c.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("an action from another origin: %v %v", resp.StatusCode, err)
	}
	if got := f.host.took(); len(got) != 0 {
		t.Fatalf("refused actions reached the host: %v", got)
	}

	// Reset asks first, naming the guest; the viewer is told it is theirs.
	f.viewer = "windows"
	code, body, _ := post(t, c, f.ts.URL+"/action", form("guest", "windows", "reset"))
	for _, want := range []string{"Reset the guest &#34;windows&#34; to its snapshot?", "You are viewing this page from inside windows",
		`name="confirm" value="windows"`, "Reset windows"} {
		if !strings.Contains(body, want) {
			t.Errorf("the confirmation lacks %q", want)
		}
	}
	if code != http.StatusOK || len(f.host.took()) != 0 {
		t.Fatalf("unconfirmed reset: %d, host asked %v\n%s", code, f.host.took(), body)
	}
	f.viewer = ""
	code, _, hdr := post(t, c, f.ts.URL+"/action", form("guest", "windows", "reset", "confirm", "windows"))
	if code != http.StatusSeeOther || hdr.Get("Location") != "/" {
		t.Fatalf("confirmed reset: %d", code)
	}
	if _, body, _ := get(t, c, f.ts.URL+"/"); !strings.Contains(body, "reset done") || strings.Contains(body, "You are viewing") {
		t.Errorf("the overview after the reset does not say what it did:\n%s", body)
	}
	// Start needs no confirmation; an unknown guest's error is shown.
	post(t, c, f.ts.URL+"/action", form("guest", "windows", "start"))
	post(t, c, f.ts.URL+"/action", form("guest", "nope", "start"))
	if _, body, _ := get(t, c, f.ts.URL+"/"); !strings.Contains(body, "no such vm: nope") || !strings.Contains(body, `class="flash bad"`) {
		t.Errorf("the error of an unknown guest:\n%s", body)
	}
	post(t, c, f.ts.URL+"/action", form("service", "smbd", "restart", "confirm", "smbd"))
	post(t, c, f.ts.URL+"/action", form("host", "laptop", "reboot", "confirm", "laptop"))
	// A host's name that is not this one's, an unknown action: nothing.
	post(t, c, f.ts.URL+"/action", form("host", "other", "poweroff", "confirm", "other"))
	if code, _, _ := post(t, c, f.ts.URL+"/action", form("guest", "windows", "force-snapshot", "confirm", "windows")); code != http.StatusBadRequest {
		t.Errorf("an action the page does not offer: %d", code)
	}
	want := []string{"reset windows", "start windows", "start nope", "restart smbd", "reboot"}
	if got := f.host.took(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the host was asked %v, want %v", got, want)
	}
}

func TestLogStream(t *testing.T) {
	f := newFixture(t)
	c := f.browser(t)
	f.login(t, c, testToken)
	fmt.Fprintln(f.logs, `time=1 level=INFO msg="smb started" service=smbd stream=stdout`)
	fmt.Fprintln(f.logs, `time=2 level=INFO msg="guest up" svc=vm-windows`)
	_, next := f.logs.Since(0)
	_, body, _ := get(t, c, f.ts.URL+"/log?svc=smbd")
	if !strings.Contains(body, "smb started") || strings.Contains(body, "guest up") || !strings.Contains(body, fmt.Sprintf("from=%d", next)) {
		t.Fatalf("log page filtered by smbd:\n%s", body)
	}
	if code, _, _ := get(t, c, f.ts.URL+"/log?svc=nope"); code != http.StatusNotFound {
		t.Errorf("an unknown service's log: %d", code)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.ts.URL+fmt.Sprintf("/log/stream?svc=smbd&from=%d", next), nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("stream content type %q", ct)
	}
	fmt.Fprintln(f.logs, `msg="not this one" svc=vm-windows`)
	fmt.Fprintln(f.logs, "msg=\"a live line\rwith a carriage return\" service=smbd")
	rd := bufio.NewReader(resp.Body)
	var got []string
	for len(got) < 2 {
		l, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("stream: %v after %q", err, got)
		}
		if strings.HasPrefix(l, "id: ") || strings.HasPrefix(l, "data: ") {
			got = append(got, strings.TrimSpace(l))
		}
	}
	if got[0] != fmt.Sprintf("id: %d", next+1) || got[1] != `data: msg="a live line with a carriage return" service=smbd` {
		t.Errorf("stream events %q", got)
	}
}

// TestHostileStrings: names and messages a guest, a profile or a peer
// can set are text on the page, never markup.
func TestHostileStrings(t *testing.T) {
	f := newFixture(t)
	evil := `<script>alert(1)</script>"'><img src=x onerror=alert(1)>`
	f.host.status.Hostname = evil
	f.host.status.Problems = []string{evil}
	f.host.status.VMs[0].Name = evil
	f.host.status.VMs[0].Notes = []string{evil}
	f.host.shares.Shares[0].NetUse = evil
	f.host.shares.Password = evil
	c := f.browser(t)
	f.login(t, c, testToken)
	fmt.Fprintln(f.logs, evil)
	for _, p := range []string{"/", "/log", "/part/guests"} {
		_, body, _ := get(t, c, f.ts.URL+p)
		if strings.Contains(body, "<script>") || strings.Contains(body, "<img") {
			t.Errorf("%s carries markup from a status string:\n%s", p, body)
		}
	}
}

// FuzzPage renders the overview, a guest's confirmation and the log with
// strings a guest, a profile or a peer may set: it always renders, and
// their markup is text.
func FuzzPage(f *testing.F) {
	f.Add("windows", "<script>x</script>", `net use Z: \\10.0.2.2\files`, "line\x00\r")
	f.Add("a\"b", "{{.CSRF}}", "%s", "svc=x service=\"y\"")
	f.Fuzz(func(t *testing.T, name, note, netUse, line string) {
		// Each string between markers of its own, so it can be found in
		// the page whatever it holds.
		name, note, netUse, line = "ZQ1"+name+"QZ", "ZQ2"+note+"QZ", "ZQ3"+netUse+"QZ", "ZQ4"+line+"QZ"
		fx := newFixture(t)
		fx.host.status.VMs[0].Name = name
		fx.host.status.VMs[0].Notes = []string{note}
		fx.host.status.Problems = []string{note}
		fx.host.shares.Shares[0].NetUse = netUse
		fx.srv.GuestOf = func(*http.Request) string { return name }
		fmt.Fprintln(fx.logs, line)
		se := &session{id: "s", csrf: "c", login: fx.clock.now(), seen: fx.clock.now()}
		fx.srv.sessions["s"] = se
		for _, req := range []*http.Request{
			httptest.NewRequest(http.MethodGet, "/", nil),
			httptest.NewRequest(http.MethodGet, "/log", nil),
			httptest.NewRequest(http.MethodPost, "/action", strings.NewReader(url.Values{"csrf": {"c"}, "kind": {"guest"},
				"name": {name}, "action": {"reset"}}.Encode())),
		} {
			req.AddCookie(&http.Cookie{Name: CookieName, Value: "s"})
			if req.Method == http.MethodPost {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			w := httptest.NewRecorder()
			fx.srv.Handler().ServeHTTP(w, req)
			if w.Code >= 500 {
				t.Fatalf("%s %s: %d %s", req.Method, req.URL, w.Code, w.Body)
			}
			body := w.Body.String()
			for _, s := range []string{name, note, netUse, line} {
				if strings.ContainsAny(s, "<>\"'") && strings.Contains(body, s) {
					t.Fatalf("%s %s carries %q unescaped", req.Method, req.URL, s)
				}
			}
		}
	})
}

// BenchmarkOverview renders the overview for a logged-in session (the
// host's status from a fake; what hostd adds is its own reads of /proc).
func BenchmarkOverview(b *testing.B) {
	fx := newFixture(b)
	se := &session{id: "s", csrf: "c", login: fx.clock.now(), seen: fx.clock.now()}
	fx.srv.sessions["s"] = se
	h := fx.srv.Handler()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.AddCookie(&http.Cookie{Name: CookieName, Value: "s"})
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}

// upload posts the update form as a browser does: its parts in the form's
// order.
func upload(t *testing.T, c *http.Client, u string, parts [][2]string) (int, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, p := range parts {
		var w io.Writer
		var err error
		if p[0] == "update" {
			w, err = mw.CreateFormFile("update", "test.update")
		} else {
			w, err = mw.CreateFormField(p[0])
		}
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, p[1])
	}
	mw.Close()
	resp, err := c.Post(u, mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestUpdateUpload(t *testing.T) {
	f := newFixture(t)
	c := f.browser(t)
	if code, _ := upload(t, c, f.ts.URL+"/update", [][2]string{{"csrf", "x"}, {"tries", "3"}, {"update", "bytes"}}); code != http.StatusUnauthorized {
		t.Errorf("an upload without a session: %d", code)
	}
	csrf := f.login(t, c, testToken)
	// The token must come first, right: nothing of the file is read before.
	for _, parts := range [][][2]string{
		{{"tries", "3"}, {"update", "bytes"}},
		{{"update", "bytes"}, {"csrf", csrf}, {"tries", "3"}},
		{{"csrf", "stale"}, {"tries", "3"}, {"update", "bytes"}},
	} {
		if code, body := upload(t, c, f.ts.URL+"/update", parts); code != http.StatusForbidden {
			t.Errorf("upload %v: %d %s", parts, code, body)
		}
	}
	if code, _ := upload(t, c, f.ts.URL+"/update", [][2]string{{"csrf", csrf}, {"tries", "99"}, {"update", "bytes"}}); code != http.StatusBadRequest {
		t.Errorf("99 tries: %d", code)
	}
	if got := f.host.took(); len(got) != 0 {
		t.Fatalf("refused uploads reached the host: %v", got)
	}
	code, _ := upload(t, c, f.ts.URL+"/update", [][2]string{{"csrf", csrf}, {"tries", "2"}, {"update", "the update stream"}})
	if code != http.StatusSeeOther {
		t.Fatalf("upload: %d", code)
	}
	if _, body, _ := get(t, c, f.ts.URL+"/"); !strings.Contains(body, "Slot b holds build 20261127-new") {
		t.Errorf("the overview does not say what the update did:\n%s", body)
	}
	upload(t, c, f.ts.URL+"/update", [][2]string{{"csrf", csrf}, {"tries", "2"}, {"update", "refuse me"}})
	if _, body, _ := get(t, c, f.ts.URL+"/"); !strings.Contains(body, "does not fit slot b") || !strings.Contains(body, "flash bad") {
		t.Errorf("a refused update:\n%s", body)
	}
	want := []string{`update "the update stream" tries 2`, `update "refuse me" tries 2`}
	if got := f.host.took(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the host got %v, want %v", got, want)
	}
}

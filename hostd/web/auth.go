package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/thinhost/thinhost/internal/passwd"
)

// CookieName is the session cookie's name.
const CookieName = "thinhost_session"

// Session and lockout limits.
const (
	// SessionIdle ends a session nobody used for this long;
	// SessionMax ends any session this long after its login.
	SessionIdle = 12 * time.Hour
	SessionMax  = 7 * 24 * time.Hour
	// MaxSessions bounds the sessions kept; a login past it ends the
	// least recently used one.
	MaxSessions = 32
	// FreeFailures failed logins from one address are allowed; each
	// one after them locks the address out for LockoutBase, doubled per
	// failure, up to LockoutMax.
	FreeFailures = 5
	LockoutBase  = 30 * time.Second
	LockoutMax   = 15 * time.Minute
	// maxTracked bounds the addresses whose failures are remembered.
	maxTracked = 4096
)

type session struct {
	id     string
	csrf   string
	login  time.Time
	seen   time.Time
	flash  *flash
	remote string
}

type failures struct {
	count int
	until time.Time // locked out until then
	last  time.Time
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("read random bytes: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// current is the request's live session, nil without one.
func (s *Server) current(r *http.Request) *session {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.sessions[c.Value]
	if se == nil {
		return nil
	}
	now := s.Now()
	if now.Sub(se.seen) > SessionIdle || now.Sub(se.login) > SessionMax {
		delete(s.sessions, se.id)
		return nil
	}
	se.seen = now
	return se
}

// alive reports whether the session id is still logged in (for streams).
func (s *Server) alive(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.sessions[id]
	return se != nil && s.Now().Sub(se.login) <= SessionMax
}

// authed serves h to a logged-in session; a page request without one goes
// to the login form, anything else gets 401. A POST must carry the
// session's CSRF token and, when the browser says where it comes from,
// come from this page's own origin.
func (s *Server) authed(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		se := s.current(r)
		if se == nil {
			if r.Method == http.MethodGet && (r.URL.Path == "/" || r.URL.Path == "/log") {
				http.Redirect(w, r, "/login", http.StatusSeeOther)
				return
			}
			http.Error(w, "log in first", http.StatusUnauthorized)
			return
		}
		// An update's upload checks its token itself, from the stream.
		if r.Method == http.MethodPost && r.URL.Path != "/update" {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if !sameOrigin(r) {
				http.Error(w, "refused: the form was not sent from this page", http.StatusForbidden)
				return
			}
			got := r.PostFormValue("csrf")
			if subtle.ConstantTimeCompare([]byte(got), []byte(se.csrf)) != 1 {
				s.Log.Warn("page: action refused without its CSRF token", "remote", r.RemoteAddr, "path", r.URL.Path)
				http.Error(w, "refused: the form's token is missing or stale; reload the page and try again", http.StatusForbidden)
				return
			}
		}
		h(w, r, se)
	}
}

// sameOrigin is false when the request names an origin (Origin, or else
// Referer) other than the host it was sent to.
func sameOrigin(r *http.Request) bool {
	from := r.Header.Get("Origin")
	if from == "" || from == "null" {
		ref := r.Header.Get("Referer")
		if ref == "" {
			return from == ""
		}
		from = ref
	}
	u, err := url.Parse(from)
	return err == nil && u.Host == r.Host && (u.Scheme == "http" || u.Scheme == "https")
}

// clientKey is the address failures are counted for.
func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// lockedFor says how long the address must still wait, 0 when it may try.
func (s *Server) lockedFor(key string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.fails[key]; f != nil {
		if d := f.until.Sub(s.Now()); d > 0 {
			return d
		}
	}
	return 0
}

// failed counts a failed login and returns the lockout it earns.
func (s *Server) failed(key string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.Now()
	if len(s.fails) >= maxTracked {
		for k, f := range s.fails {
			if now.After(f.until) && now.Sub(f.last) > LockoutMax {
				delete(s.fails, k)
			}
		}
	}
	f := s.fails[key]
	if f == nil {
		if len(s.fails) >= maxTracked {
			// Flooded from too many addresses: everyone waits.
			return LockoutBase
		}
		f = &failures{}
		s.fails[key] = f
	}
	// A quiet hour forgives.
	if now.Sub(f.last) > time.Hour {
		f.count = 0
	}
	f.count++
	f.last = now
	if f.count <= FreeFailures {
		return 0
	}
	d := LockoutBase << min(f.count-FreeFailures-1, 10)
	d = min(d, LockoutMax)
	f.until = now.Add(d)
	return d
}

// secretOK checks a login secret: the API token or the page password.
func (s *Server) secretOK(secret string) bool {
	if secret == "" {
		return false
	}
	if s.TokenOK != nil && s.TokenOK(secret) {
		return true
	}
	if s.PasswordHash == "" {
		return false
	}
	// One Argon2id at a time: each takes 19 MiB, and a burst of logins
	// must not take the host's memory.
	s.verify.Lock()
	defer s.verify.Unlock()
	return passwd.Verify(s.PasswordHash, secret)
}

type loginView struct {
	Password bool
	Error    string
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	view := loginView{Password: s.PasswordHash != ""}
	p := page{Title: "Log in", Host: s.hostname(), Body: "login", Data: &view}
	if r.Method == http.MethodGet {
		if s.current(r) != nil {
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		s.render(w, http.StatusOK, "layout", p)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if !sameOrigin(r) {
		http.Error(w, "refused: the form was not sent from this page", http.StatusForbidden)
		return
	}
	key := clientKey(r)
	if d := s.lockedFor(key); d > 0 {
		view.Error = fmt.Sprintf("Too many failed logins from %s: try again in %s.", key, d.Round(time.Second))
		s.render(w, http.StatusTooManyRequests, "layout", p)
		return
	}
	if !s.secretOK(r.PostFormValue("secret")) {
		lock := s.failed(key)
		s.Log.Warn("page: failed login", "remote", r.RemoteAddr, "locked_out", lock.String())
		view.Error = "That is not the host's token or page password."
		if lock > 0 {
			view.Error += fmt.Sprintf(" Too many failed logins from %s: try again in %s.", key, lock.Round(time.Second))
		}
		s.render(w, http.StatusUnauthorized, "layout", p)
		return
	}
	now := s.Now()
	se := &session{id: randomToken(), csrf: randomToken(), login: now, seen: now, remote: r.RemoteAddr}
	s.mu.Lock()
	delete(s.fails, key)
	if len(s.sessions) >= MaxSessions {
		var oldest *session
		for _, o := range s.sessions {
			if oldest == nil || o.seen.Before(oldest.seen) {
				oldest = o
			}
		}
		delete(s.sessions, oldest.id)
	}
	s.sessions[se.id] = se
	s.mu.Unlock()
	s.Log.Info("page: login", "remote", r.RemoteAddr)
	// Secure over HTTPS (the host's network): the browser never sends
	// the session back in clear.
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: se.id, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, se *session) {
	s.mu.Lock()
	delete(s.sessions, se.id)
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// setFlash leaves a message for the session's next page.
func (s *Server) setFlash(se *session, text string, isErr bool) {
	s.mu.Lock()
	se.flash = &flash{Text: text, Error: isErr}
	s.mu.Unlock()
}

func (s *Server) takeFlash(se *session) *flash {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := se.flash
	se.flash = nil
	return f
}

// Package web is the host's page: hostd's state and its actions for a
// person in a browser, inside the Windows guest (http://10.0.2.2:PORT/, the
// address the shares use) or wherever the API port is reachable.
//
// It is server-rendered HTML from the templates in this package, embedded
// in hostd: readable without JavaScript, with a little script for the live
// parts (the log, the guests' state) and the copy buttons, and no request
// leaves the host. Everything but the login form wants a session: the API
// token or the profile's page password (stored as an Argon2id hash) buys an
// HttpOnly, SameSite=Strict cookie; every action posts the session's CSRF
// token, and repeated failed logins lock the address out for a while.
//
//	GET  /              the overview: health, data partition, shares, guests, services
//	GET  /part/NAME     one of the overview's sections (the page refreshes them)
//	GET  /log[?svc=S]   hostd's log, filtered by service
//	GET  /log/stream    the same as server-sent events, from ?from=SEQ on
//	POST /action        kind, name, action: a guest's, a service's or the host's
//	POST /update        a host update file, streamed into the other A/B slot
//	GET|POST /login, POST /logout
package web

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/thinhost/thinhost/hostd/api"
	"github.com/thinhost/thinhost/hostd/logring"
)

//go:embed templates/*.html static/*
var files embed.FS

// Server serves the page.
type Server struct {
	Backend api.Backend
	Logs    *logring.Ring
	// TokenOK reports whether a secret is the API token.
	TokenOK func(string) bool
	// PasswordHash is the profile's page password as a passwd.Hash PHC
	// string; empty: only the token logs in.
	PasswordHash string
	// GuestOf names the guest a request comes from, "" when it comes
	// from no guest; nil: never a guest.
	GuestOf func(*http.Request) string
	// DataWarnPercent is how full the data partition may be before the
	// page shows it in red (0: DefaultDataWarnPercent).
	DataWarnPercent int
	Log             *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	once     sync.Once
	tmpl     *template.Template
	static   http.Handler
	verify   sync.Mutex
	mu       sync.Mutex
	sessions map[string]*session
	fails    map[string]*failures
}

// DefaultDataWarnPercent is the data partition's fill level the page warns
// at.
const DefaultDataWarnPercent = 90

func (s *Server) init() {
	s.once.Do(func() {
		s.tmpl = template.Must(template.New("").Funcs(funcs).ParseFS(files, "templates/*.html"))
		sub, _ := fs.Sub(files, "static")
		s.static = http.StripPrefix("/static/", http.FileServer(http.FS(sub)))
		s.sessions = map[string]*session{}
		s.fails = map[string]*failures{}
		if s.Log == nil {
			s.Log = slog.New(slog.DiscardHandler)
		}
		if s.Now == nil {
			s.Now = time.Now
		}
		if s.DataWarnPercent <= 0 || s.DataWarnPercent > 100 {
			s.DataWarnPercent = DefaultDataWarnPercent
		}
	})
}

// Handler returns the page's handler.
func (s *Server) Handler() http.Handler {
	s.init()
	// Plain path patterns and a method check by hand, as in package api
	// (u-root's busybox builder may predate Go 1.22's method patterns).
	mux := http.NewServeMux()
	route := func(path string, h http.HandlerFunc, methods ...string) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			for _, m := range methods {
				if r.Method == m {
					h(w, r)
					return
				}
			}
			w.Header().Set("Allow", strings.Join(methods, ", "))
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		})
	}
	route("/", s.authed(s.overview), http.MethodGet)
	route("/part/", s.authed(s.part), http.MethodGet)
	route("/log", s.authed(s.logPage), http.MethodGet)
	route("/log/stream", s.authed(s.logStream), http.MethodGet)
	route("/action", s.authed(s.action), http.MethodPost)
	route("/update", s.authed(s.update), http.MethodPost)
	route("/login", s.login, http.MethodGet, http.MethodPost)
	route("/logout", s.authed(s.logout), http.MethodPost)
	route("/static/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=300")
		s.static.ServeHTTP(w, r)
	}, http.MethodGet)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Nothing from elsewhere, no inline script, no framing; the
		// page's own script and style only.
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		// same-origin, not no-referrer: with no-referrer a browser sends
		// "Origin: null" on the page's own forms, which sameOrigin refuses.
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		mux.ServeHTTP(w, r)
	})
}

// render writes a template into a buffer first, so a failure is a 500 and
// not half a page.
func (s *Server) render(w http.ResponseWriter, status int, name string, data any) {
	var b bytes.Buffer
	if err := s.tmpl.ExecuteTemplate(&b, name, data); err != nil {
		s.Log.Error("render page", "template", name, "err", err)
		http.Error(w, "the page could not be drawn: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// page is what every full page's layout reads.
type page struct {
	Title string
	Host  string
	// CSRF is the session's token for forms; empty when logged out.
	CSRF  string
	Flash *flash
	// Body is the template drawn inside the layout, with Data.
	Body string
	Data any
}

type flash struct {
	Text  string
	Error bool
}

func (s *Server) hostname() string {
	return s.Backend.Status().Hostname
}

// errorPage draws an error inside the layout.
func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	csrf := ""
	if se := s.current(r); se != nil {
		csrf = se.csrf
	}
	s.render(w, status, "layout", page{Title: http.StatusText(status), CSRF: csrf, Body: "error",
		Data: msg, Host: s.hostname()})
}

// errBadForm is a form that misses its fields.
var errBadForm = errors.New("the form is incomplete; reload the page")

func formValue(r *http.Request, name string) (string, error) {
	v := r.PostFormValue(name)
	if v == "" {
		return "", fmt.Errorf("%w (no %s)", errBadForm, name)
	}
	return v, nil
}

package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thinhost/thinhost/hostd/logring"
)

// lanListener reports its connections as made to an address on the
// host's network (TEST-NET-1), as the host's interface would.
type lanListener struct{ net.Listener }

type lanConn struct{ net.Conn }

func (c lanConn) LocalAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 8484} }

func (l lanListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return lanConn{c}, nil
}

// serveSplit serves the API as hostd does on the host's network, over a
// listener whose connections look like lan's; it returns the address and
// the certificate's fingerprint.
func serveSplit(t *testing.T, lan bool) (addr, fingerprint string) {
	t.Helper()
	certPEM, keyPEM, err := NewCertificate("thinhost-test")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := CertFingerprint(cert)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var served net.Listener = ln
	if lan {
		served = lanListener{ln}
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	srv := &Server{Backend: &fakeHost{}, Logs: logring.New(10), Token: "s3cret"}
	go srv.ServeSplitTLS(ctx, served, ServerTLS(cert))
	return ln.Addr().String(), fp
}

// TestSplitTLS: on the host's network the API speaks HTTPS alone, and a
// client takes only the certificate it pinned; a plain client is told
// the fingerprint to check; loopback keeps plain HTTP.
func TestSplitTLS(t *testing.T) {
	ctx := context.Background()
	addr, fp := serveSplit(t, true)

	_, err := NewClient(addr, "s3cret").Status(ctx)
	var https *HTTPSRequiredError
	if !errors.As(err, &https) || https.Fingerprint != fp {
		t.Fatalf("plain HTTP on the host's network: %v; want HTTPSRequiredError naming %s", err, fp)
	}
	if !strings.Contains(err.Error(), "--fingerprint "+fp) {
		t.Errorf("the error should say what to pass: %v", err)
	}

	for _, form := range []string{fp, strings.ToLower(strings.ReplaceAll(fp, ":", "")), "SHA256:" + fp, " sha256 " + strings.ReplaceAll(fp, ":", " ")} {
		c, err := NewClient(addr, "s3cret").WithFingerprint(form)
		if err != nil {
			t.Fatalf("fingerprint %q: %v", form, err)
		}
		if _, err := c.Status(ctx); err != nil {
			t.Errorf("HTTPS pinned to %q: %v", form, err)
		}
	}

	other := strings.Repeat("AB:", 31) + "AB"
	c, err := NewClient(addr, "s3cret").WithFingerprint(other)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Status(ctx)
	var wrong *FingerprintError
	if !errors.As(err, &wrong) || wrong.Got != fp {
		t.Errorf("another certificate pinned: %v; want FingerprintError naming %s", err, fp)
	}
	for _, bad := range []string{"", "AB:CD", strings.Repeat("zz", 32)} {
		if _, err := NewClient(addr, "").WithFingerprint(bad); !errors.Is(err, ErrFingerprint) {
			t.Errorf("fingerprint %q: %v, want ErrFingerprint", bad, err)
		}
	}
	if _, err := NewClient("/run/hostd.sock", "").WithFingerprint(fp); err == nil {
		t.Error("a fingerprint for the unix socket should be refused")
	}

	// The token still counts over TLS.
	c, _ = NewClient(addr, "not-the-token").WithFingerprint(fp)
	if _, err := c.Status(ctx); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("a wrong token over HTTPS: %v, want ErrUnauthorized", err)
	}

	// Loopback: plain HTTP, as the guests and the host's programs use it.
	loop, _ := serveSplit(t, false)
	if _, err := NewClient(loop, "s3cret").Status(ctx); err != nil {
		t.Errorf("plain HTTP on loopback: %v", err)
	}
}

// FuzzAPI: whatever a peer sends — any method, path, token and body — the
// API neither panics nor answers anything but 401 without the token, and
// with it answers with a status (the handlers' error paths included).
func FuzzAPI(f *testing.F) {
	f.Add("GET", "/v1/status", "s3cret", []byte(nil))
	f.Add("POST", "/v1/vms/windows/reset", "s3cret", []byte(nil))
	f.Add("PUT", "/v1/update?tries=3", "s3cret", []byte("not a tar stream"))
	f.Add("POST", "/v1/services/../restart", "s3cret", []byte{})
	f.Add("GET", "/v1/source?bytes=-1", "s3cret", []byte{})
	f.Add("GET", "/v1/logs?follow=1&n=99999999999", "wrong", []byte{})
	f.Add("POST", "/v1/discard", "", bytes.Repeat([]byte("x"), 5000))
	f.Add("POST", "/v1/vms/windows/reset", "guest-tok", []byte(nil))
	f.Add("POST", "/v1/vms/windows/../other/reset", "guest-tok", []byte(nil))
	srv := &Server{Backend: &fakeHost{}, Logs: logring.New(10), Token: "s3cret",
		GuestToken: func(tok string) (string, bool) { return "windows", tok == "guest-tok" }}
	h := srv.Handler(true)
	f.Fuzz(func(t *testing.T, method, target, token string, body []byte) {
		if !validMethod(method) || !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n\x00") || strings.ContainsAny(token, "\r\n\x00") {
			return
		}
		if _, err := url.ParseRequestURI(target); err != nil {
			return // net/http answers 400 before any handler
		}
		// /v1/logs?follow streams until the client leaves, /v1/source
		// sends what it is asked: both are bounded by the request's
		// context, as a peer's would be.
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		req := httptest.NewRequestWithContext(ctx, method, "http://h"+target, bytes.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch token {
		case "s3cret":
		case "guest-tok":
			// The guest's own token: served only where GuestMay says.
			if rec.Code != http.StatusForbidden && rec.Code != http.StatusUnauthorized && !GuestMay("windows", method, req.URL.Path) {
				t.Fatalf("%s %s with the guest's token: %d, want 403", method, target, rec.Code)
			}
		default:
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("%s %s with token %q: %d, want 401", method, target, token, rec.Code)
			}
		}
		if rec.Code < 100 || rec.Code > 599 {
			t.Fatalf("%s %s: status %d", method, target, rec.Code)
		}
	})
}

func validMethod(m string) bool {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS":
		return true
	}
	return false
}

// recordListener keeps every byte its connections read.
type recordListener struct {
	net.Listener
	mu  sync.Mutex
	got bytes.Buffer
}

type recordConn struct {
	net.Conn
	l *recordListener
}

func (c recordConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.l.mu.Lock()
	c.l.got.Write(p[:n])
	c.l.mu.Unlock()
	return n, err
}

func (l *recordListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return recordConn{c, l}, nil
}

// TestNoTokenInClear: a plain client aimed at an address beyond loopback
// where the API speaks TLS sends no request, so no token, in clear; it
// says the fingerprint instead. (It needs an address of this machine that
// is not loopback.)
func TestNoTokenInClear(t *testing.T) {
	var ip net.IP
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			ip = n.IP
			break
		}
	}
	if ip == nil {
		t.Skip("this machine has no IPv4 address beyond loopback")
	}
	certPEM, keyPEM, err := NewCertificate("h")
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := tls.X509KeyPair(certPEM, keyPEM)
	fp, _ := CertFingerprint(cert)
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		t.Skip(err)
	}
	rec := &recordListener{Listener: ln}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go (&Server{Backend: &fakeHost{}, Logs: logring.New(10), Token: "s3cret-token"}).ServeSplitTLS(ctx, rec, ServerTLS(cert))
	_, err = NewClient(ln.Addr().String(), "s3cret-token").Status(ctx)
	var https *HTTPSRequiredError
	if !errors.As(err, &https) || https.Fingerprint != fp {
		t.Fatalf("a plain client beyond loopback: %v; want HTTPSRequiredError naming %s", err, fp)
	}
	time.Sleep(100 * time.Millisecond)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if bytes.Contains(rec.got.Bytes(), []byte("s3cret-token")) || bytes.Contains(rec.got.Bytes(), []byte("GET /v1/")) {
		t.Errorf("the client sent a request in clear:\n%q", rec.got.Bytes())
	}
}

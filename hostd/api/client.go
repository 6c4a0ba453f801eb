package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Client talks to hostd's API over TCP (with a token) or a unix socket.
type Client struct {
	addr  string
	base  string
	token string
	http  *http.Client
	// plainChecked is set once a plain-HTTP client to a TCP address that
	// is not loopback found the server does not speak TLS, so sending
	// the token in clear goes where plain HTTP is the design (a guest's
	// 10.0.2.2, which never leaves the machine).
	plainChecked bool
	pinned       bool
}

// NewClient returns a client for addr: "HOST:PORT", or a unix socket path
// (starting with "/"). Over HTTPS (the API on the host's network) it needs
// the certificate's fingerprint: WithFingerprint.
func NewClient(addr, token string) *Client {
	c := &Client{addr: addr, base: "http://" + addr, token: token, http: &http.Client{}}
	if strings.HasPrefix(addr, "/") {
		c.base = "http://hostd"
		c.http.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", addr)
		}}
	}
	return c
}

// WithFingerprint makes c speak HTTPS to its TCP address and accept only
// the certificate whose fingerprint is fp (Fingerprint's form; colons and
// case do not matter).
func (c *Client) WithFingerprint(fp string) (*Client, error) {
	if strings.HasPrefix(c.addr, "/") {
		return nil, fmt.Errorf("the unix socket %s speaks plain HTTP: a fingerprint is for the API's TCP port", c.addr)
	}
	cfg, err := PinnedTLS(fp)
	if err != nil {
		return nil, err
	}
	c.base = "https://" + c.addr
	c.http = &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: false}}
	c.pinned = true
	return c, nil
}

// ErrUnauthorized means the token was refused.
var ErrUnauthorized = fmt.Errorf("the host refused the token (401): check --token")

func (c *Client) do(ctx context.Context, method, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	return c.send(req)
}

// send sends req with the token and turns answers other than 2xx into
// errors that carry hostd's message.
func (c *Client) send(req *http.Request) (*http.Response, error) {
	method, path := req.Method, req.URL.Path
	// Before a token goes out in plain HTTP beyond loopback: a server
	// that speaks TLS there (the API on the host's network) gets nothing
	// in clear; the person is told the certificate to check instead.
	if c.token != "" && !c.pinned && !c.plainChecked && !strings.HasPrefix(c.addr, "/") && !loopbackAddr(c.addr) {
		if fp := presentedFingerprint(c.addr); fp != "" {
			return nil, &HTTPSRequiredError{Addr: c.addr, Fingerprint: fp}
		}
		c.plainChecked = true
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		resp.Body.Close()
		return nil, ErrUnauthorized
	}
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		// net/http's TLS server answers plain HTTP so.
		if resp.StatusCode == http.StatusBadRequest && strings.Contains(string(b), "HTTP request to an HTTPS server") {
			return nil, &HTTPSRequiredError{Addr: c.addr, Fingerprint: presentedFingerprint(c.addr)}
		}
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	return resp, nil
}

// Status returns GET /v1/status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := c.do(ctx, http.MethodGet, "/v1/status")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("read status: %w", err)
	}
	return &st, nil
}

// Logs copies hostd's log to w; with follow, until ctx ends.
func (c *Client) Logs(ctx context.Context, follow bool, w io.Writer) error {
	path := "/v1/logs"
	if follow {
		path += "?follow=1"
	}
	resp, err := c.do(ctx, http.MethodGet, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Power asks the host to "poweroff", "reboot" or "suspend".
func (c *Client) Power(ctx context.Context, action string) error {
	resp, err := c.do(ctx, http.MethodPost, "/v1/"+action)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// Restart restarts a supervised service.
func (c *Client) Restart(ctx context.Context, name string) error {
	resp, err := c.do(ctx, http.MethodPost, "/v1/services/"+name+"/restart")
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// VM runs an action on a guest (one of vm.Actions) and returns hostd's
// answer. Stopping or snapshotting waits for the guest's shutdown.
func (c *Client) VM(ctx context.Context, name, action string) (string, error) {
	resp, err := c.do(ctx, http.MethodPost, "/v1/vms/"+name+"/"+action)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b)), err
}

// Shares returns GET /v1/shares.
func (c *Client) Shares(ctx context.Context) (*Shares, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := c.do(ctx, http.MethodGet, "/v1/shares")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var sh Shares
	if err := json.NewDecoder(resp.Body).Decode(&sh); err != nil {
		return nil, fmt.Errorf("read shares: %w", err)
	}
	return &sh, nil
}

// loopbackAddr says whether addr (HOST:PORT) names this machine's
// loopback, where nothing crosses a network.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

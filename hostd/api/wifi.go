package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// The host's Wi-Fi:
//
//	GET  /v1/wifi            the link, its networks and what went wrong (Wifi)
//	POST /v1/wifi/scan       the networks in range (Scan), after a fresh scan
//	POST /v1/wifi/connect    join a network (WifiConnect as JSON)
//	POST /v1/wifi/forget     forget a network ctl wifi connect added (WifiConnect's Network)

// Wifi is GET /v1/wifi, and Status.Wifi.
type Wifi struct {
	// Interface is the wireless interface hostd uses; "" while it waits
	// for one (Problem says why).
	Interface string `json:"interface,omitempty"`
	// State is wpa_supplicant's ("COMPLETED" once joined, "SCANNING",
	// "4WAY_HANDSHAKE", "DISCONNECTED", ...).
	State     string `json:"state,omitempty"`
	Connected bool   `json:"connected"`
	// SSID, BSSID, Frequency (MHz) and Signal (dBm) are the network
	// joined, when Connected.
	SSID string `json:"ssid,omitempty"`
	// Network is the name of the host's network joined (two may share
	// an SSID); "" when the supplicant joined one hostd does not know.
	Network   string `json:"network,omitempty"`
	BSSID     string `json:"bssid,omitempty"`
	Frequency int    `json:"frequency,omitempty"`
	Signal    int    `json:"signal,omitempty"`
	// Addresses are the interface's IPv4 addresses (from DHCP).
	Addresses []string      `json:"addresses,omitempty"`
	Networks  []WifiNetwork `json:"networks"`
	// Problem is what keeps the host off Wi-Fi as a whole.
	Problem string `json:"problem,omitempty"`
}

// WifiNetwork is one network the host may join.
type WifiNetwork struct {
	// Name is the profile's label; networks added with `ctl wifi
	// connect` are named by their SSID.
	Name     string `json:"name"`
	SSID     string `json:"ssid"`
	Security string `json:"security"`
	Priority int    `json:"priority,omitempty"`
	Hidden   bool   `json:"hidden,omitempty"`
	// Added is set for networks added with `ctl wifi connect`, kept on
	// the data partition.
	Added bool `json:"added,omitempty"`
	// Problem is why the host does not join it: its passphrase was
	// refused, or is not known.
	Problem string `json:"problem,omitempty"`
}

// WifiBSS is one access point a scan found.
type WifiBSS struct {
	SSID      string `json:"ssid"`
	BSSID     string `json:"bssid"`
	Frequency int    `json:"frequency"`
	Signal    int    `json:"signal"`
	// Security is what it offers: "open", "wep", "wpa2", "wpa3",
	// "wpa2-wpa3" or "enterprise".
	Security string `json:"security"`
	// Known names the host's network for this SSID, if any.
	Known string `json:"known,omitempty"`
}

// WifiConnect is POST /v1/wifi/connect's body: a network by its name or
// SSID; a passphrase joins a network the host does not know yet (and is
// kept on the data partition), or replaces a known one's.
type WifiConnect struct {
	Network    string `json:"network"`
	Passphrase string `json:"passphrase,omitempty"`
}

// WifiBackend is a Backend whose host has Wi-Fi; the API answers 404 on
// /v1/wifi for one that is not.
type WifiBackend interface {
	// Wifi is the link's state; nil when the profile has no wifi block.
	Wifi() *Wifi
	Scan(ctx context.Context) ([]WifiBSS, error)
	// Connect starts joining a network and says what it did; an unknown
	// network without a passphrase wraps ErrNoNetwork, a refused value
	// ErrBadRequest.
	Connect(ctx context.Context, req WifiConnect) (string, error)
	// Forget drops a network that Connect added, its passphrase with it;
	// the profile's wrap ErrBadRequest, an unknown one ErrNoNetwork.
	Forget(ctx context.Context, network string) (string, error)
}

// Errors of WifiBackend.Connect.
var (
	ErrNoNetwork  = errors.New("no such network")
	ErrBadRequest = errors.New("bad request")
)

// ErrNoWifi is the Client's error when the host has no Wi-Fi.
var ErrNoWifi = errors.New("this host has no Wi-Fi (the profile has no wifi block)")

func (s *Server) wifiRoutes(route func(method, path string, h http.HandlerFunc)) {
	backend := func(w http.ResponseWriter) (WifiBackend, bool) {
		wb, ok := s.Backend.(WifiBackend)
		if !ok || wb.Wifi() == nil {
			http.Error(w, ErrNoWifi.Error(), http.StatusNotFound)
			return nil, false
		}
		return wb, true
	}
	route(http.MethodGet, "/v1/wifi", func(w http.ResponseWriter, r *http.Request) {
		if wb, ok := backend(w); ok {
			writeJSON(w, wb.Wifi())
		}
	})
	route(http.MethodPost, "/v1/wifi/scan", func(w http.ResponseWriter, r *http.Request) {
		wb, ok := backend(w)
		if !ok {
			return
		}
		found, err := wb.Scan(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, found)
	})
	for _, action := range []string{"connect", "forget"} {
		route(http.MethodPost, "/v1/wifi/"+action, func(w http.ResponseWriter, r *http.Request) {
			wb, ok := backend(w)
			if !ok {
				return
			}
			var req WifiConnect
			if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
				http.Error(w, "the body must be JSON: {\"network\": NAME or SSID, \"passphrase\": ...}", http.StatusBadRequest)
				return
			}
			var msg string
			var err error
			if action == "connect" {
				msg, err = wb.Connect(r.Context(), req)
			} else {
				msg, err = wb.Forget(r.Context(), req.Network)
			}
			writeWifiAnswer(w, msg, err)
		})
	}
}

// writeWifiAnswer answers a connect or forget: the message, or the
// error with its status.
func writeWifiAnswer(w http.ResponseWriter, msg string, err error) {
	switch {
	case errors.Is(err, ErrNoNetwork):
		http.Error(w, err.Error(), http.StatusNotFound)
	case errors.Is(err, ErrBadRequest):
		http.Error(w, err.Error(), http.StatusBadRequest)
	case err != nil:
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	default:
		fmt.Fprintln(w, msg)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Wifi is GET /v1/wifi.
func (c *Client) Wifi(ctx context.Context) (*Wifi, error) {
	var out Wifi
	if err := c.wifiJSON(ctx, http.MethodGet, "/v1/wifi", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// WifiScan is POST /v1/wifi/scan.
func (c *Client) WifiScan(ctx context.Context) ([]WifiBSS, error) {
	var out []WifiBSS
	if err := c.wifiJSON(ctx, http.MethodPost, "/v1/wifi/scan", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// WifiConnect is POST /v1/wifi/connect; it returns hostd's answer.
func (c *Client) WifiConnect(ctx context.Context, req WifiConnect) (string, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return "", err
	}
	var msg string
	if err := c.wifiJSON(ctx, http.MethodPost, "/v1/wifi/connect", body, &msg); err != nil {
		return "", err
	}
	return msg, nil
}

// WifiForget is POST /v1/wifi/forget; it returns hostd's answer.
func (c *Client) WifiForget(ctx context.Context, network string) (string, error) {
	body, err := json.Marshal(WifiConnect{Network: network})
	if err != nil {
		return "", err
	}
	var msg string
	if err := c.wifiJSON(ctx, http.MethodPost, "/v1/wifi/forget", body, &msg); err != nil {
		return "", err
	}
	return msg, nil
}

// wifiJSON sends body (nil: none) and decodes the answer into out (a
// *string takes it as text).
func (c *Client) wifiJSON(ctx context.Context, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.send(req)
	if err != nil {
		if strings.Contains(err.Error(), ErrNoWifi.Error()) {
			return ErrNoWifi
		}
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if s, ok := out.(*string); ok {
		*s = strings.TrimSpace(string(b))
		return nil
	}
	return json.Unmarshal(b, out)
}

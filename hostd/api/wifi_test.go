package api

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/thinhost/thinhost/hostd/logring"
)

type wifiHost struct {
	fakeHost
	got WifiConnect
}

func (w *wifiHost) Wifi() *Wifi {
	return &Wifi{Interface: "wlan0", Connected: true, SSID: "Home", Networks: []WifiNetwork{{Name: "home", SSID: "Home"}}}
}

func (w *wifiHost) Scan(ctx context.Context) ([]WifiBSS, error) {
	return []WifiBSS{{SSID: "Home", Signal: -40, Security: "wpa2", Known: "home"}}, nil
}

func (w *wifiHost) Connect(ctx context.Context, req WifiConnect) (string, error) {
	w.got = req
	switch req.Network {
	case "home":
		return "joining home", nil
	case "short":
		return "", fmt.Errorf("%w: too short", ErrBadRequest)
	}
	return "", fmt.Errorf("%w: %q", ErrNoNetwork, req.Network)
}

func (w *wifiHost) Forget(ctx context.Context, network string) (string, error) {
	if network == "home" {
		return "", fmt.Errorf("%w: the profile's", ErrBadRequest)
	}
	return "forgot " + network, nil
}

// TestWifiRoutes: the client and server agree on the wifi routes; a
// host without Wi-Fi says so; errors keep their kind.
func TestWifiRoutes(t *testing.T) {
	host := &wifiHost{}
	ts := httptest.NewServer((&Server{Backend: host, Logs: logring.New(10), Token: "s3cret"}).Handler(true))
	t.Cleanup(ts.Close)
	c := NewClient(ts.Listener.Addr().String(), "s3cret")
	ctx := context.Background()
	w, err := c.Wifi(ctx)
	if err != nil || !w.Connected || w.Networks[0].Name != "home" {
		t.Fatalf("Wifi = %+v, %v", w, err)
	}
	found, err := c.WifiScan(ctx)
	if err != nil || len(found) != 1 || found[0].Known != "home" {
		t.Fatalf("WifiScan = %+v, %v", found, err)
	}
	msg, err := c.WifiConnect(ctx, WifiConnect{Network: "home", Passphrase: "a passphrase"})
	if err != nil || msg != "joining home" || host.got.Passphrase != "a passphrase" {
		t.Fatalf("WifiConnect = %q, %v (%+v)", msg, err, host.got)
	}
	for network, want := range map[string]string{"short": "400", "nowhere": "404"} {
		if _, err := c.WifiConnect(ctx, WifiConnect{Network: network}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("connect %s: %v, want %s", network, err, want)
		}
	}
	if msg, err := c.WifiForget(ctx, "Cafe"); err != nil || msg != "forgot Cafe" {
		t.Errorf("WifiForget = %q, %v", msg, err)
	}
	if _, err := c.WifiForget(ctx, "home"); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("forget the profile's network: %v", err)
	}
	// A host without Wi-Fi.
	plain := httptest.NewServer((&Server{Backend: &fakeHost{}, Logs: logring.New(10), Token: "s3cret"}).Handler(true))
	t.Cleanup(plain.Close)
	if _, err := NewClient(plain.Listener.Addr().String(), "s3cret").Wifi(ctx); !errors.Is(err, ErrNoWifi) {
		t.Errorf("a host without Wi-Fi: %v", err)
	}
	// Without the token: nothing.
	if _, err := NewClient(ts.Listener.Addr().String(), "").Wifi(ctx); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("without the token: %v", err)
	}
}

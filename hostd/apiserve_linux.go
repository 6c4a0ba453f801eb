package hostd

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/thinhost/thinhost/hostd/api"
	"github.com/thinhost/thinhost/hostd/guestlink"
	"github.com/thinhost/thinhost/hostd/power"
	"github.com/thinhost/thinhost/hostd/storage"
	"github.com/thinhost/thinhost/hostd/supervise"
	"github.com/thinhost/thinhost/hostd/web"
	"github.com/thinhost/thinhost/internal/fsutil"
	"github.com/thinhost/thinhost/internal/sysmem"
)

// SocketPath is the management API's unix socket inside the host.
const SocketPath = "/run/hostd.sock"

// tokenFile is where the generated API token lives on the data partition.
var tokenFile = filepath.Join(storage.DataDir, "state", "api-token")

// apiToken returns the profile's token, or the one kept on the data
// partition (made on first boot), or — without a data partition — a token
// for this boot only, in /run.
func (d *Daemon) apiToken() (token, where string, err error) {
	if t := d.opts.Config.APIToken; t != "" {
		return t, "the profile's api_token", nil
	}
	if d.opts.Config.APITokenSHA256 != "" {
		return "", "the profile's api_token", nil
	}
	file := tokenFile
	if d.data == nil || !d.data.Mounted {
		file = "/run/hostd-api-token"
	}
	if b, err := os.ReadFile(file); err == nil && len(strings.TrimSpace(string(b))) >= 16 {
		return strings.TrimSpace(string(b)), file, nil
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", "", err
	}
	t := hex.EncodeToString(raw)
	if err := os.WriteFile(file, []byte(t+"\n"), 0o600); err != nil {
		return "", "", fmt.Errorf("store API token in %s: %w", file, err)
	}
	return t, file, nil
}

// serveAPI starts the API on the unix socket and the TCP port until ctx
// ends.
func (d *Daemon) serveAPI(ctx context.Context) {
	log := d.opts.Log
	token, where, err := d.apiToken()
	if err != nil {
		log.Error("management API disabled", "err", err)
		return
	}
	srv := &api.Server{Backend: d, Logs: d.opts.Logs, Token: token, Log: log}
	if d.vms != nil {
		// A guest's own token, from its THINHOST drive.
		srv.GuestToken = d.vms.TokenOwner
	}
	if h := d.opts.Config.APITokenSHA256; h != "" {
		if srv.TokenSHA256, err = hex.DecodeString(h); err != nil || len(srv.TokenSHA256) != 32 {
			log.Error("management API disabled: the configuration's api_token_sha256 is not a SHA-256", "err", err)
			return
		}
	}
	page := &web.Server{Backend: d, Logs: d.opts.Logs, TokenOK: srv.TokenOK, PasswordHash: d.opts.Config.PagePasswordHash,
		GuestOf: d.guestOf, Log: log}
	srv.Page = page.Handler()
	_ = os.Remove(SocketPath)
	if ln, err := net.Listen("unix", SocketPath); err != nil {
		log.Error("listen on the API socket", "path", SocketPath, "err", err)
	} else {
		_ = os.Chmod(SocketPath, 0o600)
		go srv.Serve(ctx, ln, false)
	}
	port := d.opts.Config.APIPort
	if port == 0 {
		return
	}
	var tlsCfg *tls.Config
	onHostNetwork := d.opts.Config.APIOnHostNetwork
	if onHostNetwork {
		cert, fp, made, err := d.apiCert()
		if err != nil {
			// Loopback (the guests, the page from Windows) still gets it.
			d.record("the API stays off the host's network: no certificate: %v", err)
			onHostNetwork = false
		} else {
			tlsCfg, d.apiFingerprint = api.ServerTLS(cert), fp
			if made != "" {
				log.Info("api certificate made", "fingerprint", fp, "file", made)
			}
		}
	}
	if d.link != nil {
		// The guests' link is theirs: plain HTTP there, as on loopback.
		srv.Plain = d.link.FromGuest
	}
	var on []string
	addrs := APIAddrs(port, onHostNetwork)
	if d.link != nil && !onHostNetwork {
		addrs = append(addrs, net.JoinHostPort(d.link.Host.String(), strconv.Itoa(port)))
	}
	for _, addr := range addrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			// ::1 is missing where IPv6 is off; 127.0.0.1 is enough.
			if addr != APIAddrs(port, false)[0] {
				log.Info("API listener", "addr", addr, "err", err)
			} else {
				log.Error("listen for the API", "addr", addr, "err", err)
			}
			continue
		}
		if d.link != nil && !onHostNetwork && !strings.HasPrefix(addr, "127.") && !strings.HasPrefix(addr, "[") {
			// The link's address answers the link's network alone.
			ln = &guestOnly{Listener: ln, link: d.link}
		}
		if tlsCfg != nil {
			go srv.ServeSplitTLS(ctx, ln, tlsCfg)
		} else {
			go srv.Serve(ctx, ln, true)
		}
		on = append(on, addr)
	}
	if len(on) == 0 {
		return
	}
	where = "token: " + where
	if onHostNetwork {
		where = fmt.Sprintf("https on the host's network, certificate %s %s; plain http on loopback; %s", api.APIFingerprintLabel, d.apiFingerprint, where)
	} else {
		where = fmt.Sprintf("the guests reach it and the host's page at http://%s:%d/; %s", d.guestHost(), port, where)
	}
	fmt.Fprintf(d.opts.Console, "%s%s and %s (%s)\n", api.APIPrefix, strings.Join(on, ", "), SocketPath, where)
}

// apiCertFile and apiKeyFile hold the API's certificate on the data
// partition: made on first boot, so its fingerprint stays.
var (
	apiCertFile = filepath.Join(storage.DataDir, "state", "api-tls.crt")
	apiKeyFile  = filepath.Join(storage.DataDir, "state", "api-tls.key")
)

// apiCert loads the API's certificate for the host's network, or makes
// one (an ECDSA P-256 key, self-signed, kept 0600 on the data partition;
// without a data partition, in /run for this boot only) and says where.
func (d *Daemon) apiCert() (cert tls.Certificate, fingerprint, made string, err error) {
	certFile, keyFile := apiCertFile, apiKeyFile
	if d.data == nil || !d.data.Mounted {
		certFile, keyFile = "/run/hostd-api-tls.crt", "/run/hostd-api-tls.key"
	}
	if cert, err = tls.LoadX509KeyPair(certFile, keyFile); err == nil {
		fp, err := api.CertFingerprint(cert)
		if err == nil {
			return cert, fp, "", nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		d.opts.Log.Warn("api certificate unreadable: making a new one (its fingerprint changes)", "file", certFile, "err", err)
	}
	certPEM, keyPEM, err := api.NewCertificate(d.opts.Config.Hostname)
	if err != nil {
		return cert, "", "", fmt.Errorf("make the API's certificate: %w", err)
	}
	if err := fsutil.WriteFile(keyFile, bytes.NewReader(keyPEM), 0o600, nil); err != nil {
		return cert, "", "", fmt.Errorf("store the API's key: %w", err)
	}
	if err := fsutil.WriteFile(certFile, bytes.NewReader(certPEM), 0o644, nil); err != nil {
		return cert, "", "", fmt.Errorf("store the API's certificate: %w", err)
	}
	if cert, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return cert, "", "", err
	}
	fp, err := api.CertFingerprint(cert)
	return cert, fp, certFile, err
}

// APIAddrs are the addresses the API's TCP port listens on: every
// address of the host with onHostNetwork, else loopback (IPv4 first),
// where QEMU's user networking takes the guests' connections to 10.0.2.2.
func APIAddrs(port int, onHostNetwork bool) []string {
	p := strconv.Itoa(port)
	if onHostNetwork {
		return []string{":" + p}
	}
	return []string{"127.0.0.1:" + p, "[::1]:" + p}
}

// Status implements api.Backend.
func (d *Daemon) Status() api.Status {
	st := api.Status{Hostname: d.opts.Config.Hostname, Memory: readMeminfo(), SecureBoot: d.secureBoot, APIFingerprint: d.apiFingerprint}
	if b, err := os.ReadFile("/proc/uptime"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			st.Uptime, _ = strconv.ParseFloat(f[0], 64)
		}
	}
	if d.data != nil {
		data := *d.data
		st.Data = &data
	}
	st.CPUs, st.Load = runtime.NumCPU(), readLoad("/proc/loadavg")
	st.Temperatures = ReadTemperatures(sysClassDir)
	st.Power = power.ReadPower(power.SupplyDir)
	st.Slots, st.Update = d.slots.status()
	st.VMs = d.vmStatus()
	st.Wifi = d.Wifi()
	st.Problems = d.problems()
	if st.Problems == nil {
		st.Problems = []string{}
	}
	st.Services = d.sup.Status()
	if st.Services == nil {
		st.Services = []supervise.Status{}
	}
	return st
}

// Restart implements api.Backend.
func (d *Daemon) Restart(name string) error {
	err := d.sup.Restart(name)
	if errors.Is(err, supervise.ErrUnknown) {
		return fmt.Errorf("%w: %s", api.ErrNotFound, name)
	}
	return err
}

// Power implements api.Backend.
func (d *Daemon) Power(action string) error {
	select {
	case d.power <- action:
		return nil
	case <-time.After(time.Second):
		return errors.New("a shutdown is already under way")
	}
}

func readMeminfo() api.Memory {
	var m api.Memory
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				if f := strings.Fields(v); len(f) > 0 {
					kb, _ := strconv.ParseInt(f[0], 10, 64)
					m.Hostd = kb << 10
				}
			}
		}
	}
	if info, err := sysmem.Read(); err == nil {
		m.Total, m.Available, m.Files, m.Kernel = info.Total, info.Available, info.Shmem, info.Kernel
	}
	if r, err := sysmem.ReadReserve(); err == nil {
		m.Reserved = r
	}
	for i, p := range sysmem.Programs("/proc", map[int]string{os.Getpid(): "hostd"}) {
		if i == 6 {
			break
		}
		m.Programs = append(m.Programs, api.ProgramMemory{Name: p.Name, Processes: p.Processes, Private: p.Private})
	}
	return m
}

// Shares implements api.Backend.
func (d *Daemon) Shares() *api.Shares { return d.sharesStatus() }

// Update implements api.Backend.
func (d *Daemon) Update(ctx context.Context, r io.Reader, tries int) (*api.UpdateResult, error) {
	if d.opts.NoData {
		return nil, fmt.Errorf("%w: this host has no A/B slots", api.ErrUpdateRefused)
	}
	res, err := d.slots.update(ctx, r, tries)
	if err == nil {
		fmt.Fprintf(d.opts.Console, "%sslot %s holds build %s; it boots next (%d tries to reach ready)\n", UpdatePrefix, res.Slot, res.Build, res.Tries)
	}
	return res, err
}

// printSlots prints the slots line on the console (SlotsPrefix).
func (d *Daemon) printSlots() {
	st, note := d.slots.status()
	fmt.Fprintln(d.opts.Console, SlotsLine(st))
	if note != "" {
		fmt.Fprintf(d.opts.Console, "%s%s\n", UpdatePrefix, note)
	}
}

// guestOnly drops the connections to the guests' link address that do not
// come from the link's network (a peer elsewhere that routes to it).
type guestOnly struct {
	net.Listener
	link *guestlink.Link
}

func (g *guestOnly) Accept() (net.Conn, error) {
	for {
		c, err := g.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if g.link.FromGuest(c.LocalAddr(), c.RemoteAddr()) {
			return c, nil
		}
		c.Close()
	}
}

package wifi

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/thinhost/thinhost/images/layout/config"
)

// Conn is a client of wpa_supplicant's control socket: unix datagrams,
// one command per datagram, one reply each; an attached Conn also gets
// the supplicant's events, "<LEVEL>TEXT".
type Conn struct {
	c     *net.UnixConn
	local string
	mu    sync.Mutex
}

var connSeq atomic.Uint64

// Dial opens a client socket in localDir (the supplicant replies to its
// path) connected to the interface's control socket at remote.
func Dial(remote, localDir string) (*Conn, error) {
	local := filepath.Join(localDir, fmt.Sprintf("hostd-%d-%d", os.Getpid(), connSeq.Add(1)))
	os.Remove(local)
	c, err := net.DialUnix("unixgram", &net.UnixAddr{Name: local, Net: "unixgram"}, &net.UnixAddr{Name: remote, Net: "unixgram"})
	if err != nil {
		os.Remove(local)
		return nil, fmt.Errorf("connect to wpa_supplicant at %s: %w", remote, err)
	}
	return &Conn{c: c, local: local}, nil
}

// Close closes the socket and removes its path.
func (c *Conn) Close() error {
	err := c.c.Close()
	os.Remove(c.local)
	return err
}

// maxReply is the largest datagram read: SCAN_RESULTS of a crowded place
// runs to several KiB (the supplicant's own limit is 4 KiB per reply for
// most commands, more for scan results).
const maxReply = 64 << 10

// Request sends cmd and returns the reply, skipping events that arrive
// meanwhile on an attached socket. "FAIL" and "UNKNOWN COMMAND" are
// errors.
func (c *Conn) Request(cmd string, timeout time.Duration) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	verb, _, _ := strings.Cut(cmd, " ")
	buf := make([]byte, maxReply)
	// A reply that came after its request timed out is not this one's.
	if err := c.c.SetReadDeadline(time.Now()); err == nil {
		for {
			if _, err := c.c.Read(buf); err != nil {
				break
			}
		}
	}
	if err := c.c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return "", err
	}
	if _, err := c.c.Write([]byte(cmd)); err != nil {
		return "", fmt.Errorf("wpa_supplicant %s: %w", verb, err)
	}
	for {
		n, err := c.c.Read(buf)
		if err != nil {
			return "", fmt.Errorf("wpa_supplicant %s: %w", verb, err)
		}
		reply := string(buf[:n])
		if strings.HasPrefix(reply, "<") {
			continue
		}
		switch r := strings.TrimSpace(reply); {
		case r == "FAIL" || strings.HasPrefix(r, "FAIL-"):
			return "", fmt.Errorf("wpa_supplicant %s: %s", verb, r)
		case r == "UNKNOWN COMMAND":
			return "", fmt.Errorf("wpa_supplicant does not know %s", verb)
		}
		return reply, nil
	}
}

// OK sends cmd and expects "OK".
func (c *Conn) OK(cmd string, timeout time.Duration) error {
	r, err := c.Request(cmd, timeout)
	if err != nil {
		return err
	}
	if strings.TrimSpace(r) != "OK" {
		verb, _, _ := strings.Cut(cmd, " ")
		return fmt.Errorf("wpa_supplicant %s: %q", verb, strings.TrimSpace(r))
	}
	return nil
}

// Attach makes the socket receive the supplicant's events (Event).
func (c *Conn) Attach(timeout time.Duration) error { return c.OK("ATTACH", timeout) }

// ErrTimeout is Event's when nothing arrived in time.
var ErrTimeout = errors.New("no event")

// Event reads the next event of an attached socket.
func (c *Conn) Event(timeout time.Duration) (Event, error) {
	buf := make([]byte, maxReply)
	for {
		if err := c.c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			return Event{}, err
		}
		n, err := c.c.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return Event{}, ErrTimeout
			}
			return Event{}, err
		}
		if ev, ok := ParseEvent(string(buf[:n])); ok {
			return ev, nil
		}
	}
}

// Event is one of the supplicant's unsolicited messages.
type Event struct {
	// Name is its first word ("CTRL-EVENT-CONNECTED").
	Name string
	// Fields are its key=value words (id, ssid, reason, bssid, ...), with
	// quoted values unquoted.
	Fields map[string]string
	Text   string
}

// ParseEvent reads "<LEVEL>NAME key=value ...".
func ParseEvent(msg string) (Event, bool) {
	if !strings.HasPrefix(msg, "<") {
		return Event{}, false
	}
	end := strings.IndexByte(msg, '>')
	if end < 0 {
		return Event{}, false
	}
	text := strings.TrimSpace(msg[end+1:])
	name, rest, _ := strings.Cut(text, " ")
	ev := Event{Name: name, Fields: map[string]string{}, Text: text}
	for rest != "" {
		rest = strings.TrimLeft(rest, " ")
		k, v, ok := strings.Cut(rest, "=")
		if !ok || strings.Contains(k, " ") {
			// A word without '=': skip it.
			_, rest, _ = strings.Cut(rest, " ")
			continue
		}
		if strings.HasPrefix(v, "\"") {
			// A quoted value (an SSID), printf-escaped inside: it ends at
			// the first quote not escaped.
			i := 1
			for i < len(v) && v[i] != '"' {
				if v[i] == '\\' {
					i++
				}
				i++
			}
			ev.Fields[k] = Unescape(v[1:min(i, len(v))])
			rest = v[min(i+1, len(v)):]
			continue
		}
		val, r, _ := strings.Cut(v, " ")
		ev.Fields[k] = val
		rest = r
	}
	return ev, true
}

// Unescape undoes the supplicant's printf_encode of SSIDs: \\, \", \e,
// \n, \r, \t and \xNN.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'e':
			b.WriteByte(0x1b)
		case 'x':
			if i+2 < len(s) {
				if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
					b.WriteByte(byte(v))
					i += 2
					continue
				}
			}
			b.WriteString(`\x`)
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// ParseKV reads STATUS's and SIGNAL_POLL's "key=value" lines.
func ParseKV(reply string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(reply, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = v
		}
	}
	return out
}

// BSS is one line of SCAN_RESULTS.
type BSS struct {
	BSSID     string
	Frequency int
	Signal    int
	Flags     string
	SSID      string
}

// Security says what a scan result's flags offer: "open", "wep", "wpa2",
// "wpa3", "wpa2-wpa3" or "enterprise".
func (b BSS) Security() string {
	f := b.Flags
	switch {
	case strings.Contains(f, "EAP"):
		return "enterprise"
	case strings.Contains(f, "SAE") && strings.Contains(f, "PSK"):
		return config.WifiWPA2WPA3
	case strings.Contains(f, "SAE"):
		return config.WifiWPA3
	case strings.Contains(f, "PSK"):
		return config.WifiWPA2
	case strings.Contains(f, "WEP"):
		return "wep"
	}
	return "open"
}

// ParseScanResults reads SCAN_RESULTS: a header line, then "bssid\tfreq\t
// signal\tflags\tssid" per access point.
func ParseScanResults(reply string) []BSS {
	var out []BSS
	for i, line := range strings.Split(strings.TrimRight(reply, "\n"), "\n") {
		if i == 0 && strings.HasPrefix(line, "bssid") {
			continue
		}
		f := strings.SplitN(line, "\t", 5)
		if len(f) < 4 {
			continue
		}
		freq, _ := strconv.Atoi(f[1])
		sig, _ := strconv.Atoi(f[2])
		b := BSS{BSSID: f[0], Frequency: freq, Signal: sig, Flags: f[3]}
		if len(f) == 5 {
			b.SSID = Unescape(f[4])
		}
		out = append(out, b)
	}
	return out
}

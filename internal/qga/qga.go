// Package qga talks to the QEMU guest agent running inside a guest,
// through the socket QEMU gives its virtio-serial channel
// (org.qemu.guest_agent.0). hostd asks it whether a Windows install has
// finished (a file the setup script leaves), and sets the guest's clock
// after the host resumes.
//
// The channel is a byte pipe that outlives connections and agents: a
// reply to an earlier client may still be in it, and an agent that is not
// running answers nothing. So each connection first synchronises
// (guest-sync-delimited: the agent answers after a 0xFF byte, which ends
// anything stale), and every read has a deadline.
package qga

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"
)

// Client is one connection to a guest agent.
type Client struct {
	conn    net.Conn
	r       *bufio.Reader
	timeout time.Duration
}

// ErrNoAgent means nothing answered on the channel in time: no agent
// runs in the guest (not installed yet, not started, or the guest is
// paused).
var ErrNoAgent = errors.New("no guest agent answered")

// Error is an error the agent returned for a command.
type Error struct {
	Command, Class, Desc string
}

func (e *Error) Error() string {
	return fmt.Sprintf("guest agent %s: %s: %s", e.Command, e.Class, e.Desc)
}

// Dial connects to the agent's socket and synchronises with it; timeout
// bounds each exchange.
func Dial(sock string, timeout time.Duration) (*Client, error) {
	conn, err := net.DialTimeout("unix", sock, timeout)
	if err != nil {
		return nil, fmt.Errorf("connect to the guest agent %s: %w", sock, err)
	}
	c := &Client{conn: conn, r: bufio.NewReader(conn), timeout: timeout}
	if err := c.sync(); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

func (c *Client) sync() error {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	id := int64(binary.BigEndian.Uint32(b[:]) >> 1)
	// A 0xFF first makes the agent drop half a request an earlier client
	// may have left (its protocol's own reset).
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
	if _, err := c.conn.Write([]byte{0xFF}); err != nil {
		return fmt.Errorf("guest agent: %w", err)
	}
	if err := c.send("guest-sync-delimited", map[string]any{"id": id}); err != nil {
		return err
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(c.timeout))
	// Everything up to the agent's 0xFF is stale: a reply to another
	// client, or half of one.
	for {
		// A deadline passed with no 0xFF: nothing listens.
		if _, err := c.r.ReadBytes(0xFF); err != nil {
			return fmt.Errorf("%w: %v", ErrNoAgent, err)
		}
		var got struct {
			Return int64 `json:"return"`
		}
		if err := c.decode(&got); err != nil {
			return fmt.Errorf("%w: %v", ErrNoAgent, err)
		}
		if got.Return == id {
			return nil
		}
	}
}

func (c *Client) send(command string, args map[string]any) error {
	req := map[string]any{"execute": command}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
	if _, err := c.conn.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("guest agent %s: %w", command, err)
	}
	return nil
}

// decode reads one JSON value from the channel, skipping the 0xFF bytes
// and blank space the agent may put between replies.
func (c *Client) decode(v any) error {
	for {
		b, err := c.r.Peek(1)
		if err != nil {
			return err
		}
		if b[0] == 0xFF || b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t' {
			_, _ = c.r.ReadByte()
			continue
		}
		break
	}
	line, err := c.r.ReadBytes('\n')
	if err != nil && len(bytes.TrimSpace(line)) == 0 {
		return err
	}
	return json.Unmarshal(line, v)
}

// Run runs command with args and decodes its "return" into out (nil:
// ignored).
func (c *Client) Run(command string, args map[string]any, out any) error {
	if err := c.send(command, args); err != nil {
		return err
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(c.timeout))
	var resp struct {
		Return json.RawMessage `json:"return"`
		Error  *struct {
			Class string `json:"class"`
			Desc  string `json:"desc"`
		} `json:"error"`
	}
	if err := c.decode(&resp); err != nil {
		return fmt.Errorf("guest agent %s: %w", command, err)
	}
	if resp.Error != nil {
		return &Error{Command: command, Class: resp.Error.Class, Desc: resp.Error.Desc}
	}
	if out != nil && len(resp.Return) > 0 {
		if err := json.Unmarshal(resp.Return, out); err != nil {
			return fmt.Errorf("guest agent %s: %w", command, err)
		}
	}
	return nil
}

// Ping asks the agent to answer.
func (c *Client) Ping() error { return c.Run("guest-ping", nil, nil) }

// Exists says whether the guest has a file at path (the guest's own
// syntax: C:\ProgramData\... in Windows), by opening it for reading.
func (c *Client) Exists(path string) (bool, error) {
	var handle int64
	err := c.Run("guest-file-open", map[string]any{"path": path, "mode": "r"}, &handle)
	var ae *Error
	switch {
	case errors.As(err, &ae):
		// The agent could not open it: Windows and Linux agents word
		// "not found" differently, and any failure to open means the
		// file is not (yet) what the caller waits for.
		return false, nil
	case err != nil:
		return false, err
	}
	return true, c.Run("guest-file-close", map[string]any{"handle": handle}, nil)
}

// SetTime sets the guest's clock to t (after the host resumed from
// suspend, when the guest's clock stood still with its CPUs).
func (c *Client) SetTime(t time.Time) error {
	return c.Run("guest-set-time", map[string]any{"time": t.UnixNano()}, nil)
}

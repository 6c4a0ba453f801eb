package vm

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
	"golang.org/x/sys/unix"
)

// Events is the socket of the guest's second QMP monitor, which hostd
// keeps open to hear QEMU's events (a QMP socket serves one client at a
// time: commands go to the first).
func (p Paths) Events() string { return filepath.Join(p.RunDir, "events.sock") }

// EventEffect is what an event means for a guest's status.
type EventEffect int

const (
	// EventNote is worth a line in the log, on the console and in the
	// guest's recent events.
	EventNote EventEffect = iota + 1
	// EventProblem leaves the guest in trouble until it is resolved
	// (paused on an I/O error): the host's health says so meanwhile.
	EventProblem
	// EventResolved ends the problem (the guest runs again).
	EventResolved
)

// Event is a QMP event as hostd tells it.
type Event struct {
	Effect EventEffect
	Text   string
	// NoSpace is set for an I/O error because the disk's filesystem is
	// full: hostd lets the guest continue once there is room again.
	NoSpace bool
}

// DescribeEvent tells what QEMU's event e means for the guest, in words a
// user acts on; zero Effect for events of no interest (the pauses hostd
// itself asks for, QMP's own bookkeeping).
func DescribeEvent(e qmp.Event) Event {
	str := func(k string) string {
		s, _ := e.Data[k].(string)
		return s
	}
	switch e.Event {
	case "BLOCK_IO_ERROR":
		dev := str("device")
		if dev == "" {
			dev = str("node-name")
		}
		if ns, _ := e.Data["nospace"].(bool); ns {
			return Event{Effect: EventProblem, NoSpace: true,
				Text: fmt.Sprintf("paused: its disk (%s) found no space left on the data partition; it continues by itself once space is freed", dev)}
		}
		what := fmt.Sprintf("%s error on its disk %s", orWord(str("operation"), "an I/O"), dev)
		if r := str("reason"); r != "" {
			what += ": " + r
		}
		if str("action") == "stop" {
			return Event{Effect: EventProblem, Text: "paused: " + what + "; check the data partition's disk, then `thinhost ctl vm NAME stop` and start it"}
		}
		return Event{Effect: EventNote, Text: what + " (reported to the guest)"}
	case "GUEST_PANICKED":
		text := "crashed (a panic the guest reported)"
		if info, ok := e.Data["info"].(map[string]any); ok && info["type"] == "hyper-v" {
			// Windows' stop code and its parameters, through Hyper-V's
			// crash registers.
			code, _ := info["arg1"].(float64)
			text = fmt.Sprintf("crashed: Windows stop code %#x", uint64(code))
		}
		return Event{Effect: EventNote, Text: text + "; it restarts by itself"}
	case "RESET":
		if g, _ := e.Data["guest"].(bool); g {
			return Event{Effect: EventNote, Text: "restarted (" + orWord(str("reason"), "guest") + ")"}
		}
	case "SHUTDOWN":
		if g, _ := e.Data["guest"].(bool); g {
			return Event{Effect: EventNote, Text: "shutting down (" + orWord(str("reason"), "guest") + ")"}
		}
	case "RESUME":
		return Event{Effect: EventResolved}
	}
	return Event{}
}

func orWord(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// maxEvents is how many recent events a guest's status keeps.
const maxEvents = 10

// noteEvent records ev for g (recent events, the standing problem) and
// tells the log and the console.
func (m *Manager) noteEvent(g *guest, ev Event) {
	name := g.spec.Name
	text := strings.ReplaceAll(ev.Text, "NAME", name)
	g.evMu.Lock()
	switch ev.Effect {
	case EventResolved:
		if g.problem == "" {
			g.evMu.Unlock()
			return
		}
		text = "running again after: " + g.problem
		g.problem, g.noSpace = "", false
	case EventProblem:
		g.problem, g.noSpace = text, ev.NoSpace
	}
	g.events = append(g.events, time.Now().UTC().Format("2006-01-02 15:04:05")+" "+text)
	if len(g.events) > maxEvents {
		g.events = g.events[len(g.events)-maxEvents:]
	}
	g.evMu.Unlock()
	if ev.Effect == EventProblem {
		m.Log.Warn("vm event", "vm", name, "event", text)
	} else {
		m.Log.Info("vm event", "vm", name, "event", text)
	}
	if m.Notify != nil {
		m.Notify(fmt.Sprintf("vm %s: %s", name, text))
	}
}

// Problems are the guests' standing problems ("vm windows paused: ..."),
// for the host's health.
func (m *Manager) Problems() []string {
	var out []string
	for _, g := range m.guests {
		g.evMu.Lock()
		if g.problem != "" {
			out = append(out, "vm "+g.spec.Name+" "+g.problem)
		}
		g.evMu.Unlock()
	}
	return out
}

// watchEvents follows g's QMP events until its supervision ends (done):
// the second monitor's socket, connected again whenever the supervisor
// restarts QEMU. While the guest is paused because the data partition was
// full, it lets it continue once there is room again.
func (m *Manager) watchEvents(g *guest, done <-chan struct{}) {
	for {
		mon := m.connectEvents(g, done)
		if mon == nil {
			return
		}
		m.readEvents(g, mon, done)
		select {
		case <-done:
			return
		case <-time.After(500 * time.Millisecond):
			// QEMU ended and the supervisor starts another: what the
			// old one said no longer holds.
			g.evMu.Lock()
			g.problem, g.noSpace = "", false
			g.evMu.Unlock()
		}
	}
}

// connectEvents connects to g's event monitor, retrying while QEMU starts
// (its socket appears then); nil once done or after two minutes without.
func (m *Manager) connectEvents(g *guest, done <-chan struct{}) *qmp.SocketMonitor {
	var err error
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); {
		select {
		case <-done:
			return nil
		default:
		}
		var mon *qmp.SocketMonitor
		if mon, err = qmp.NewSocketMonitor("unix", g.paths.Events(), 2*time.Second); err == nil {
			if err = mon.Connect(); err == nil {
				return mon
			}
			_ = mon.Disconnect()
		}
		time.Sleep(200 * time.Millisecond)
	}
	m.Log.Warn("vm events: no QMP event monitor", "vm", g.spec.Name, "err", err)
	return nil
}

// readEvents reads one QEMU's events until it ends or done.
func (m *Manager) readEvents(g *guest, mon *qmp.SocketMonitor, done <-chan struct{}) {
	events, _ := mon.Events(context.Background())
	defer func() {
		// go-qemu's reader blocks on an unread event, and Disconnect
		// waits for the reader: drain what is left first.
		go func() {
			for range events {
			}
		}()
		_ = mon.Disconnect()
	}()
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case e, ok := <-events:
			if !ok {
				return
			}
			if ev := DescribeEvent(e); ev.Effect != 0 {
				m.noteEvent(g, ev)
			}
		case <-tick.C:
			g.evMu.Lock()
			waiting := g.noSpace
			g.evMu.Unlock()
			if free, total := space(g.paths.Dir); waiting && free >= ResumeFree(total) {
				m.Log.Info("vm paused for space: the data partition has room again, continuing", "vm", g.spec.Name)
				if err := qmpRun(g.paths.QMP(), "cont"); err != nil {
					m.Log.Warn("continue vm", "vm", g.spec.Name, "err", err)
				}
			}
		}
	}
}

// ResumeFree is the free space on a data partition of total bytes at
// which a guest paused for lack of it continues: 1 GiB, or a tenth of a
// smaller partition.
func ResumeFree(total int64) int64 {
	if t := total / 10; t < 1<<30 {
		return t
	}
	return 1 << 30
}

// space is what unprivileged writers may still write on dir's filesystem
// and its size (0, 0 when it cannot be read).
func space(dir string) (free, total int64) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0
	}
	return int64(st.Bavail) * st.Bsize, int64(st.Blocks) * st.Bsize
}

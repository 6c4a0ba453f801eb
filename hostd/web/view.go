package web

import (
	"fmt"
	"html/template"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/thinhost/thinhost/hostd/api"
	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/internal/units"
)

var funcs = template.FuncMap{"bytes": units.Bytes}

// overviewView is the overview's data.
type overviewView struct {
	CSRF string
	Host string
	// DataWarn is the fill level (percent) the data partition turns red at.
	DataWarn int
	// Viewer is the guest the page is viewed from, "" for none.
	Viewer   string
	Health   healthView
	Data     *dataView
	Shares   *api.Shares
	Guests   []guestView
	Services []serviceView
	// Slots says whether the host has A/B slots to update; DefaultTries
	// and MaxTries are the update form's.
	Slots                  bool
	DefaultTries, MaxTries int
}

type healthView struct {
	Healthy    bool
	Problems   []string
	Uptime     string
	MemUsed    int64
	MemTotal   int64
	MemPercent int
	MemHostd   int64
	CPUs       int
	Load       string
	Temps      []tempView
	Power      *powerView
	SecureBoot string
	Slots      []api.Slot
	Update     string
}

type tempView struct {
	Name    string
	Celsius string
	Hot     bool
}

type powerView struct {
	Line string
	Low  bool
}

type dataView struct {
	Device  string
	Size    int64
	Used    int64
	Free    int64
	Percent int
	Full    bool
	Boot    int
	Problem string
	// Encrypted: LUKS2, opened with its passphrase at boot.
	Encrypted bool
}

type guestView struct {
	Name     string
	State    string
	Running  bool
	Accel    string
	Install  bool
	Snapshot string // "3 h ago", "" without one
	HasSnap  bool
	Disk     int64
	Overlay  int64
	Memory   int64
	CPUs     int
	LastExit string
	Notes    []string
	Problem  string
	Busy     string
	Events   []string
	Viewer   bool
	Actions  []guestAction
}

// guestAction is one of a guest's buttons.
type guestAction struct {
	Action, Label string
	Danger        bool
}

// actionsFor are the buttons that make sense in a guest's state.
func actionsFor(g guestView) []guestAction {
	var out []guestAction
	if g.Running {
		out = append(out, guestAction{"stop", "Shut down", true})
	} else {
		out = append(out, guestAction{"start", "Start", false})
	}
	out = append(out, guestAction{"snapshot", "Take snapshot", false})
	if g.HasSnap {
		out = append(out, guestAction{"reset", "Reset to snapshot", true})
	}
	if g.Install {
		out = append(out, guestAction{"install-off", "Eject install media", false})
	}
	return out
}

type serviceView struct {
	Name     string
	State    string
	Restarts int
	LastExit string
	// Guest names the guest the service runs (its QEMU or its TPM):
	// the guest's own buttons steer it, not a restart.
	Guest string
}

// view builds the overview's data from the host's status; shares are
// asked only when withShares (the page's refreshes leave them out: their
// usage walks the share).
func (s *Server) view(r *http.Request, se *session, withShares bool) overviewView {
	st := s.Backend.Status()
	now := s.Now()
	v := overviewView{CSRF: se.csrf, Host: st.Hostname, DataWarn: s.DataWarnPercent}
	if s.GuestOf != nil {
		v.Viewer = s.GuestOf(r)
	}
	h := &v.Health
	h.Healthy = len(st.Problems) == 0
	h.Problems = st.Problems
	h.Uptime = duration(time.Duration(st.Uptime * float64(time.Second)))
	if st.Memory.Total > 0 {
		h.MemTotal = st.Memory.Total
		h.MemUsed = st.Memory.Total - st.Memory.Available
		h.MemPercent = percent(h.MemUsed, h.MemTotal)
		h.MemHostd = st.Memory.Hostd
	}
	h.CPUs = st.CPUs
	if len(st.Load) == 3 {
		h.Load = fmt.Sprintf("%.2f %.2f %.2f", st.Load[0], st.Load[1], st.Load[2])
	}
	for _, t := range st.Temperatures {
		hot := t.Celsius >= 90 || (t.Critical > 0 && t.Celsius >= t.Critical-10)
		h.Temps = append(h.Temps, tempView{Name: t.Name, Celsius: fmt.Sprintf("%.0f °C", t.Celsius), Hot: hot})
	}
	if p := st.Power; p != nil {
		h.Power = &powerView{Line: p.Line(), Low: !p.OnAC && p.Percent >= 0 && p.Percent <= 10}
	}
	h.SecureBoot = st.SecureBoot
	v.Slots, v.DefaultTries, v.MaxTries = len(st.Slots) > 0, layout.DefaultTries, api.MaxTries
	h.Slots, h.Update = st.Slots, st.Update
	if d := st.Data; d != nil {
		dv := &dataView{Device: d.Device, Size: d.Size, Free: d.Free, Boot: d.Boot, Problem: d.Problem, Encrypted: d.Encrypted}
		if !d.Mounted && dv.Problem == "" {
			dv.Problem = "not mounted"
		}
		if d.Size > 0 {
			dv.Used = d.Size - d.Free
			dv.Percent = percent(dv.Used, d.Size)
			dv.Full = dv.Percent >= s.DataWarnPercent
		}
		v.Data = dv
	}
	for _, g := range st.VMs {
		gv := guestView{Name: g.Name, State: g.State, Running: g.State == "running" || g.State == "starting",
			Accel: g.Accel, Install: g.Install, Disk: g.DiskBytes, Overlay: g.OverlayBytes, Memory: g.MemoryMiB << 20,
			CPUs: g.CPUs, LastExit: g.LastExit, Notes: g.Notes, Problem: g.Problem, Busy: g.Busy, Events: g.Events, Viewer: g.Name == v.Viewer}
		if !g.Snapshot.IsZero() {
			gv.HasSnap = true
			gv.Snapshot = duration(now.Sub(g.Snapshot)) + " ago"
		}
		gv.Actions = actionsFor(gv)
		v.Guests = append(v.Guests, gv)
	}
	for _, sv := range st.Services {
		svc := serviceView{Name: sv.Name, State: string(sv.State), Restarts: sv.Restarts, LastExit: sv.LastExit}
		for _, g := range st.VMs {
			if sv.Name == api.VMService(g.Name) || sv.Name == api.TPMService(g.Name) {
				svc.Guest = g.Name
			}
		}
		v.Services = append(v.Services, svc)
	}
	if withShares {
		v.Shares = s.Backend.Shares()
	}
	return v
}

func percent(part, whole int64) int {
	if whole <= 0 {
		return 0
	}
	return int(math.Round(100 * float64(part) / float64(whole)))
}

// duration writes a duration as people read an age or an uptime.
func duration(d time.Duration) string {
	switch {
	case d < 0:
		return "0 s"
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

func (s *Server) overview(w http.ResponseWriter, r *http.Request, se *session) {
	if r.URL.Path != "/" {
		s.errorPage(w, r, http.StatusNotFound, "There is no page at "+r.URL.Path+".")
		return
	}
	v := s.view(r, se, true)
	s.render(w, http.StatusOK, "layout", page{Title: "Overview", Host: v.Host, CSRF: se.csrf, Flash: s.takeFlash(se),
		Body: "overview", Data: v})
}

// parts are the overview's sections the page's script refreshes.
var parts = []string{"health", "data", "guests", "services"}

func (s *Server) part(w http.ResponseWriter, r *http.Request, se *session) {
	name := strings.TrimPrefix(r.URL.Path, "/part/")
	if !slices.Contains(parts, name) {
		http.NotFound(w, r)
		return
	}
	s.render(w, http.StatusOK, name, s.view(r, se, false))
}

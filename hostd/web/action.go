package web

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// What the page's buttons may ask, per kind.
var (
	guestActions = []string{"start", "stop", "snapshot", "reset", "install-off"}
	hostActions  = []string{"poweroff", "reboot"}
)

// confirmView is the page that asks before an action is taken.
type confirmView struct {
	CSRF, Kind, Name, Action string
	// Question and Consequence say what is about to happen; Viewer that
	// it happens to the guest the page is viewed from.
	Question, Consequence string
	Viewer                bool
	Button                string
}

// action takes one of the page's actions. Every action but starting a
// guest is confirmed first: the form comes back as a page that names what
// is about to happen, and only its button (confirm=NAME) acts.
func (s *Server) action(w http.ResponseWriter, r *http.Request, se *session) {
	kind, err := formValue(r, "kind")
	var name, act string
	if err == nil {
		name, err = formValue(r, "name")
	}
	if err == nil {
		act, err = formValue(r, "action")
	}
	if err != nil {
		s.errorPage(w, r, http.StatusBadRequest, err.Error())
		return
	}
	cv := confirmView{CSRF: se.csrf, Kind: kind, Name: name, Action: act}
	host := s.hostname()
	viewer := ""
	if s.GuestOf != nil {
		viewer = s.GuestOf(r)
	}
	switch kind {
	case "guest":
		if !slices.Contains(guestActions, act) {
			s.errorPage(w, r, http.StatusBadRequest, fmt.Sprintf("A guest cannot %q here.", act))
			return
		}
		cv.Viewer = viewer == name
		cv.Question, cv.Consequence, cv.Button = guestQuestion(name, act)
	case "service":
		if act != "restart" {
			s.errorPage(w, r, http.StatusBadRequest, fmt.Sprintf("A service cannot %q here.", act))
			return
		}
		cv.Question = fmt.Sprintf("Restart the service %q?", name)
		cv.Consequence = "It stops and starts again; what it serves is away for a moment (smbd: open files in the shares are closed)."
		cv.Button = "Restart " + name
	case "host":
		if !slices.Contains(hostActions, act) {
			s.errorPage(w, r, http.StatusBadRequest, fmt.Sprintf("The host cannot %q here.", act))
			return
		}
		verb := map[string]string{"poweroff": "Power off", "reboot": "Restart"}[act]
		cv.Question = fmt.Sprintf("%s the host %q?", verb, name)
		cv.Consequence = "Every guest is shut down first (Windows is asked to shut down, as its power button does); the shares go away."
		if act == "poweroff" {
			cv.Consequence += " The host stays off until its power button is pressed."
		}
		cv.Viewer = viewer != ""
		cv.Button = verb + " " + name
		if name != host {
			s.errorPage(w, r, http.StatusBadRequest, fmt.Sprintf("This host is not %q; reload the page.", name))
			return
		}
	default:
		s.errorPage(w, r, http.StatusBadRequest, fmt.Sprintf("Nothing of the kind %q.", kind))
		return
	}
	if !(kind == "guest" && act == "start") && r.PostFormValue("confirm") != name {
		s.render(w, http.StatusOK, "layout", page{Title: "Confirm", Host: host, CSRF: se.csrf, Body: "confirm", Data: cv})
		return
	}

	var msg string
	switch kind {
	case "guest":
		// The action outlives a browser that leaves: a reset from inside
		// the guest ends the connection it came on.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Minute)
		defer cancel()
		msg, err = s.Backend.VM(ctx, name, act)
	case "service":
		err = s.Backend.Restart(name)
		msg = "restarting " + name
	case "host":
		err = s.Backend.Power(act)
		msg = map[string]string{"poweroff": "the host is powering off", "reboot": "the host is restarting"}[act]
	}
	s.Log.Info("page: action", "kind", kind, "name", name, "action", act, "remote", r.RemoteAddr, "err", err)
	if err != nil {
		s.setFlash(se, fmt.Sprintf("%s %s: %v", act, name, err), true)
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	s.setFlash(se, msg, false)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// guestQuestion is what the confirmation says of a guest's action.
func guestQuestion(name, act string) (question, consequence, button string) {
	switch act {
	case "stop":
		return fmt.Sprintf("Shut down the guest %q?", name),
			"It is asked to shut down, as its power button does; one that does not in time is stopped.", "Shut down " + name
	case "snapshot":
		return fmt.Sprintf("Take a snapshot of the guest %q?", name),
			"It shuts down, its disk becomes the state a reset returns to (the snapshot before it is gone), and it starts again.",
			"Snapshot " + name
	case "reset":
		return fmt.Sprintf("Reset the guest %q to its snapshot?", name),
			"It stops at once and its disk goes back to the snapshot: everything written in it since is lost. Your files in the shares stay.",
			"Reset " + name
	case "install-off":
		return fmt.Sprintf("Take the install media out of the guest %q?", name),
			"The installer's CD is ejected; from then on it boots from its disk.", "Eject from " + name
	}
	return fmt.Sprintf("Start the guest %q?", name), "", "Start " + name
}

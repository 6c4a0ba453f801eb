package web

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/thinhost/thinhost/hostd/api"
)

// update takes a host update uploaded from the page: a multipart form
// whose parts come in the form's order, csrf first, then tries, then the
// update file (made by `thinhost ctl update IMAGE --save FILE`), which is
// streamed into the backend as it arrives: nothing of it is buffered, the
// host's /tmp being memory. The CSRF token is checked before a byte of the
// file is read.
func (s *Server) update(w http.ResponseWriter, r *http.Request, se *session) {
	if !sameOrigin(r) {
		http.Error(w, "refused: the form was not sent from this page", http.StatusForbidden)
		return
	}
	mr, err := r.MultipartReader()
	if err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "An update is uploaded with the page's form: "+err.Error())
		return
	}
	// small reads a short field's value.
	small := func(name string) (string, error) {
		p, err := mr.NextPart()
		if err != nil || p.FormName() != name {
			return "", fmt.Errorf("%w (no %s)", errBadForm, name)
		}
		b, err := io.ReadAll(io.LimitReader(p, 256))
		return string(b), err
	}
	csrf, err := small("csrf")
	if err != nil || subtle.ConstantTimeCompare([]byte(csrf), []byte(se.csrf)) != 1 {
		s.Log.Warn("page: update refused without its CSRF token", "remote", r.RemoteAddr)
		http.Error(w, "refused: the form's token is missing or stale; reload the page and try again", http.StatusForbidden)
		return
	}
	triesText, err := small("tries")
	if err != nil {
		s.errorPage(w, r, http.StatusBadRequest, err.Error())
		return
	}
	tries, err := strconv.Atoi(triesText)
	if err != nil || tries < 1 || tries > api.MaxTries {
		s.errorPage(w, r, http.StatusBadRequest, fmt.Sprintf("Tries is a count of boots from 1 to %d.", api.MaxTries))
		return
	}
	file, err := mr.NextPart()
	if err != nil || file.FormName() != "update" || file.FileName() == "" {
		s.errorPage(w, r, http.StatusBadRequest, "Choose an update file (thinhost ctl update IMAGE --save FILE makes one).")
		return
	}
	s.Log.Info("page: update upload", "file", file.FileName(), "remote", r.RemoteAddr)
	res, err := s.Backend.Update(r.Context(), file, tries)
	switch {
	case errors.Is(err, api.ErrBusy), errors.Is(err, api.ErrUpdateRefused):
		s.setFlash(se, fmt.Sprintf("update from %s: %v", file.FileName(), err), true)
	case err != nil:
		s.setFlash(se, fmt.Sprintf("update from %s failed: %v", file.FileName(), err), true)
	default:
		s.setFlash(se, fmt.Sprintf("Slot %s holds build %s: it boots at the next restart, and the host goes back to this build "+
			"by itself if it does not reach ready within %d boots.", res.Slot, res.Build, res.Tries), false)
	}
	// The page's script sends the form itself (for its progress bar) and
	// then opens the overview: a redirect would be followed inside the
	// request, and the overview it fetched would take the message.
	if r.Header.Get(scriptHeader) != "" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// scriptHeader marks a request sent by the page's script.
const scriptHeader = "X-Thinhost-Script"

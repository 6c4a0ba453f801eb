package web

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// logLines is how many lines the log page shows before its stream.
const logLines = 500

type logView struct {
	Service  string
	Services []string
	Lines    []string
	// Next is the sequence number the live stream starts at.
	Next int64
}

// matchService reports whether a log line is the service's: its own
// output (service=NAME) or the supervisor's lines about it (svc=NAME).
func matchService(line, svc string) bool {
	if svc == "" {
		return true
	}
	for _, key := range []string{" service=", " svc="} {
		for rest := line; ; {
			i := strings.Index(rest, key)
			if i < 0 {
				break
			}
			rest = rest[i+len(key):]
			v := rest
			if j := strings.IndexAny(v, " \t"); j >= 0 {
				v = v[:j]
			}
			if v == svc || strings.Trim(v, `"`) == svc {
				return true
			}
		}
	}
	return false
}

var serviceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func (s *Server) logPage(w http.ResponseWriter, r *http.Request, se *session) {
	v := logView{Service: r.URL.Query().Get("svc")}
	st := s.Backend.Status()
	for _, sv := range st.Services {
		v.Services = append(v.Services, sv.Name)
	}
	if v.Service != "" && !slices.Contains(v.Services, v.Service) {
		s.errorPage(w, r, http.StatusNotFound, fmt.Sprintf("There is no service %q.", v.Service))
		return
	}
	lines, next := s.Logs.Since(0)
	for _, l := range lines {
		if matchService(l, v.Service) {
			v.Lines = append(v.Lines, l)
		}
	}
	if len(v.Lines) > logLines {
		v.Lines = v.Lines[len(v.Lines)-logLines:]
	}
	v.Next = next
	s.render(w, http.StatusOK, "layout", page{Title: "Log", Host: st.Hostname, CSRF: se.csrf, Body: "log", Data: v})
}

// logStream sends the log's lines from ?from=SEQ (or the browser's
// Last-Event-ID) on as server-sent events, each with its sequence number
// as its id, while the session lasts.
func (s *Server) logStream(w http.ResponseWriter, r *http.Request, se *session) {
	svc := r.URL.Query().Get("svc")
	if svc != "" && !serviceName.MatchString(svc) {
		http.Error(w, "not a service name", http.StatusBadRequest)
		return
	}
	_, seq := s.Logs.Since(1 << 62)
	if v := r.URL.Query().Get("from"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			seq = n
		}
	}
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			seq = n + 1
		}
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	if _, err := fmt.Fprint(w, "retry: 3000\n\n"); err != nil {
		return
	}
	fl.Flush()
	for {
		lines, next := s.Logs.Since(seq)
		first := next - int64(len(lines))
		for i, l := range lines {
			if !matchService(l, svc) {
				continue
			}
			// A line is one data field: no CR or LF can end it early.
			l = strings.NewReplacer("\r", " ", "\n", " ").Replace(l)
			if _, err := fmt.Fprintf(w, "id: %d\ndata: %s\n\n", first+int64(i), l); err != nil {
				return
			}
		}
		seq = next
		fl.Flush()
		ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
		err := s.Logs.Wait(ctx, seq)
		cancel()
		if r.Context().Err() != nil || !s.alive(se.id) {
			return
		}
		if err != nil {
			// Quiet: a comment keeps proxies and the browser from giving up.
			if _, err := fmt.Fprint(w, ": quiet\n\n"); err != nil {
				return
			}
			fl.Flush()
		}
	}
}

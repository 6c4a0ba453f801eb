// Package supervise runs hostd's child services (QEMU, swtpm, smbd, ...):
// each in its own process group, restarted with capped exponential backoff
// when it exits, its stdout and stderr forwarded line by line, stopped with
// SIGTERM and then SIGKILL after a timeout, started in order and stopped
// in reverse.
package supervise

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/thinhost/thinhost/hostd/api"
	"golang.org/x/sys/unix"
	"io"
	"log/slog"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Service describes one supervised program.
type Service struct {
	Name string
	Path string
	Args []string
	Env  []string
	Dir  string
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL;
	// 0 means 10s.
	StopTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait before a restart; 0 means
	// 1s and 30s. A run that lasted StableAfter (0: 30s) resets it.
	MinBackoff, MaxBackoff, StableAfter time.Duration
	// Graceful, when set, asks the program to stop in its own way (QEMU:
	// the ACPI power button, over QMP) before SIGTERM; Stop waits up to
	// GracefulTimeout for it to exit.
	Graceful        func() error
	GracefulTimeout time.Duration
	// DoneOnSuccess ends supervision when the program exits with status 0
	// by itself (a guest that shut down), instead of restarting it.
	DoneOnSuccess bool
	// Finished, when set, is called (once, in the supervisor's goroutine)
	// when DoneOnSuccess ends supervision: the program exited with status
	// 0 by itself, not stopped by the supervisor.
	Finished func()
	// Once ends supervision when the program exits, however it exits.
	Once bool
	// Credential, when set, runs the program as that user (hostd runs as
	// root).
	Credential *syscall.Credential
	// Chroot, when set, runs the program with that directory as its root;
	// Path and Dir are then inside it.
	Chroot string
	// Nice is the program's scheduling priority as it starts (nice(1):
	// below 0 ahead of the rest); Renice changes it.
	Nice int
}

// Line is one line of a service's output.
type Line struct {
	Service string
	Stream  string // "stdout" or "stderr"
	Text    string
	Time    time.Time
}

// State is a service's state; Status a snapshot of a service: the API's
// types.
type (
	State  = api.ServiceState
	Status = api.Service
)

const (
	Starting = api.ServiceStarting
	Running  = api.ServiceRunning
	Backoff  = api.ServiceBackoff
	Stopping = api.ServiceStopping
	Stopped  = api.ServiceStopped
)

// Supervisor runs services.
type Supervisor struct {
	log  *slog.Logger
	sink func(Line)

	mu       sync.Mutex
	services []*service
}

// New returns a Supervisor. sink receives every output line (it must not
// block for long); log receives state changes.
func New(log *slog.Logger, sink func(Line)) *Supervisor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if sink == nil {
		sink = func(Line) {}
	}
	return &Supervisor{log: log, sink: sink}
}

type service struct {
	spec   Service
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	status Status
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current process has exited
}

// Start starts svc and keeps it running until Stop, StopAll or ctx ends.
func (s *Supervisor) Start(ctx context.Context, svc Service) error {
	if svc.StopTimeout == 0 {
		svc.StopTimeout = 10 * time.Second
	}
	if svc.MinBackoff == 0 {
		svc.MinBackoff = time.Second
	}
	if svc.MaxBackoff == 0 {
		svc.MaxBackoff = 30 * time.Second
	}
	if svc.StableAfter == 0 {
		svc.StableAfter = 30 * time.Second
	}
	s.mu.Lock()
	for i, o := range s.services {
		if o.spec.Name != svc.Name {
			continue
		}
		select {
		case <-o.done: // finished by itself: start it afresh
			s.services = append(s.services[:i:i], s.services[i+1:]...)
		default:
			s.mu.Unlock()
			return fmt.Errorf("start service %s: %w", svc.Name, ErrRunning)
		}
		break
	}
	ctx, cancel := context.WithCancel(ctx)
	sv := &service{spec: svc, cancel: cancel, done: make(chan struct{}),
		status: Status{Name: svc.Name, State: Starting, Since: time.Now()}}
	s.services = append(s.services, sv)
	s.mu.Unlock()
	go s.loop(ctx, sv)
	return nil
}

// NextBackoff is the wait after one of prev: doubled, within [min, max].
func NextBackoff(prev, min, max time.Duration) time.Duration {
	if prev <= 0 {
		return min
	}
	next := prev * 2
	if next > max {
		return max
	}
	return next
}

func (s *Supervisor) loop(ctx context.Context, sv *service) {
	defer close(sv.done)
	var backoff time.Duration
	for {
		started := time.Now()
		err := s.runOnce(ctx, sv)
		if ctx.Err() != nil || (err == nil && sv.spec.DoneOnSuccess) || sv.spec.Once {
			if ctx.Err() == nil {
				s.log.Info("service finished", "svc", sv.spec.Name, "err", err)
			}
			sv.set(func(st *Status) { st.State = Stopped; st.Pid = 0; st.Since = time.Now() })
			if ctx.Err() == nil && err == nil && sv.spec.DoneOnSuccess && sv.spec.Finished != nil {
				sv.spec.Finished()
			}
			return
		}
		if time.Since(started) >= sv.spec.StableAfter {
			backoff = 0
		}
		backoff = NextBackoff(backoff, sv.spec.MinBackoff, sv.spec.MaxBackoff)
		s.log.Warn("service exited; restarting", "svc", sv.spec.Name, "err", err, "after", backoff)
		sv.set(func(st *Status) {
			st.State = Backoff
			st.Pid = 0
			st.Since = time.Now()
			st.Backoffs = append(st.Backoffs, backoff)
			if len(st.Backoffs) > 16 {
				st.Backoffs = st.Backoffs[1:]
			}
		})
		select {
		case <-ctx.Done():
			sv.set(func(st *Status) { st.State = Stopped; st.Since = time.Now() })
			return
		case <-time.After(backoff):
		}
		sv.set(func(st *Status) { st.Restarts++ })
	}
}

// runOnce starts the program and waits for it; when ctx ends it stops the
// process group with SIGTERM, then SIGKILL after StopTimeout.
func (s *Supervisor) runOnce(ctx context.Context, sv *service) error {
	cmd := exec.Command(sv.spec.Path, sv.spec.Args...)
	cmd.Env = sv.spec.Env
	cmd.Dir = sv.spec.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: sv.spec.Credential, Chroot: sv.spec.Chroot}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		sv.set(func(st *Status) { st.LastExit = err.Error() })
		return fmt.Errorf("start %s: %w", sv.spec.Path, err)
	}
	exited := make(chan struct{})
	sv.mu.Lock()
	if nice := sv.spec.Nice; nice != 0 {
		if err := unix.Setpriority(unix.PRIO_PROCESS, cmd.Process.Pid, nice); err != nil {
			s.log.Warn("set a service's priority", "svc", sv.spec.Name, "nice", nice, "err", err)
		}
	}
	sv.cmd, sv.exited = cmd, exited
	sv.status.State, sv.status.Pid, sv.status.Since = Running, cmd.Process.Pid, time.Now()
	sv.mu.Unlock()
	s.log.Info("service started", "svc", sv.spec.Name, "pid", cmd.Process.Pid)

	var wg sync.WaitGroup
	wg.Add(2)
	go s.forward(&wg, sv.spec.Name, "stdout", stdout)
	go s.forward(&wg, sv.spec.Name, "stderr", stderr)

	waitErr := make(chan error, 1)
	go func() {
		wg.Wait() // all output read before Wait closes the pipes
		waitErr <- cmd.Wait()
		close(exited)
	}()
	select {
	case err := <-waitErr:
		sv.set(func(st *Status) { st.LastExit, st.Clean = exitText(err), err == nil })
		return err
	case <-ctx.Done():
	}
	sv.set(func(st *Status) { st.State = Stopping; st.Since = time.Now() })
	pgid := cmd.Process.Pid
	if sv.spec.Graceful != nil {
		if gerr := sv.spec.Graceful(); errors.Is(gerr, ErrSkipGraceful) {
			// Asked not to: straight to SIGTERM.
		} else if gerr != nil {
			s.log.Warn("graceful stop failed", "svc", sv.spec.Name, "err", gerr)
		} else {
			select {
			case err := <-waitErr:
				s.log.Info("service stopped", "svc", sv.spec.Name, "exit", exitText(err), "graceful", true)
				sv.set(func(st *Status) { st.LastExit, st.Clean = exitText(err), err == nil })
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
				return err
			case <-time.After(sv.spec.GracefulTimeout):
				s.log.Warn("graceful stop timed out", "svc", sv.spec.Name, "timeout", sv.spec.GracefulTimeout)
			}
		}
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case err := <-waitErr:
		s.log.Info("service stopped", "svc", sv.spec.Name, "exit", exitText(err))
		sv.set(func(st *Status) { st.LastExit, st.Clean = exitText(err), false })
		_ = syscall.Kill(-pgid, syscall.SIGKILL) // stragglers in its group
		return err
	case <-time.After(sv.spec.StopTimeout):
	}
	s.log.Warn("service ignored SIGTERM; killing it", "svc", sv.spec.Name, "timeout", sv.spec.StopTimeout)
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	err = <-waitErr
	sv.set(func(st *Status) {
		st.LastExit, st.Clean = exitText(err)+" (killed after "+sv.spec.StopTimeout.String()+")", false
	})
	return err
}

func (s *Supervisor) forward(wg *sync.WaitGroup, name, stream string, r io.Reader) {
	defer wg.Done()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		s.sink(Line{Service: name, Stream: stream, Text: sc.Text(), Time: time.Now()})
	}
}

func exitText(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by " + ws.Signal().String()
		}
		return fmt.Sprintf("exit status %d", ee.ExitCode())
	}
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func (sv *service) set(f func(*Status)) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	f(&sv.status)
}

// Status returns every service's status, in start order.
func (s *Supervisor) Status() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, 0, len(s.services))
	for _, sv := range s.services {
		sv.mu.Lock()
		st := sv.status
		st.Backoffs = append([]time.Duration(nil), sv.status.Backoffs...)
		sv.mu.Unlock()
		out = append(out, st)
	}
	return out
}

// Stop stops one service (SIGTERM, then SIGKILL after its timeout) and
// waits for it.
func (s *Supervisor) Stop(name string) error {
	_, err := s.StopWithStatus(name)
	return err
}

// StopWithStatus is Stop, returning the service's last status (its
// LastExit and whether that exit was Clean): a stopped service leaves the
// supervisor's list.
func (s *Supervisor) StopWithStatus(name string) (Status, error) {
	sv := s.find(name, true)
	if sv == nil {
		return Status{}, fmt.Errorf("stop service %s: %w", name, ErrUnknown)
	}
	sv.cancel()
	<-sv.done
	sv.mu.Lock()
	defer sv.mu.Unlock()
	return sv.status, nil
}

// StopAll stops every service in reverse start order; onStop is called
// before each (hostd says on the console what it waits for).
func (s *Supervisor) StopAll(onStop func(name string, timeout time.Duration)) {
	s.mu.Lock()
	svcs := append([]*service(nil), s.services...)
	s.mu.Unlock()
	for i := len(svcs) - 1; i >= 0; i-- {
		if onStop != nil {
			timeout := svcs[i].spec.StopTimeout
			if svcs[i].spec.Graceful != nil {
				timeout += svcs[i].spec.GracefulTimeout
			}
			onStop(svcs[i].spec.Name, timeout)
		}
		_ = s.Stop(svcs[i].spec.Name)
	}
}

// ErrUnknown means no service has that name; ErrRunning that it is
// already supervised; a Graceful that returns ErrSkipGraceful has the
// service stopped at once (SIGTERM), without a warning.
var (
	ErrUnknown      = errors.New("no such service")
	ErrRunning      = api.ErrRunning
	ErrSkipGraceful = errors.New("no graceful stop this time")
)

// Done returns a channel closed when the named service's supervision ends
// (nil for an unknown name).
func (s *Supervisor) Done(name string) <-chan struct{} {
	if sv := s.find(name, false); sv != nil {
		return sv.done
	}
	return nil
}

// Running reports whether the named service is supervised and has not
// finished.
func (s *Supervisor) Running(name string) bool {
	sv := s.find(name, false)
	if sv == nil {
		return false
	}
	select {
	case <-sv.done:
		return false
	default:
		return true
	}
}

// Renice sets the named service's priority (Service.Nice): of every
// process of its group now (what it forked too), and of its later runs.
func (s *Supervisor) Renice(name string, nice int) error {
	sv := s.find(name, false)
	if sv == nil {
		return fmt.Errorf("renice %s: %w", name, ErrUnknown)
	}
	sv.mu.Lock()
	defer sv.mu.Unlock()
	sv.spec.Nice = nice
	if sv.cmd == nil || sv.status.State != Running {
		return nil
	}
	if err := unix.Setpriority(unix.PRIO_PGRP, sv.cmd.Process.Pid, nice); err != nil {
		return fmt.Errorf("renice %s: %w", name, err)
	}
	return nil
}

// Restart ends the service's current process (SIGTERM to its group); the
// supervisor starts it again after its shortest backoff.
func (s *Supervisor) Restart(name string) error {
	sv := s.find(name, false)
	if sv == nil {
		return fmt.Errorf("restart %s: %w", name, ErrUnknown)
	}
	sv.mu.Lock()
	cmd := sv.cmd
	sv.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return nil // between runs: it starts again by itself
	}
	return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
}

// find returns the named service, removing it from the list with remove.
func (s *Supervisor) find(name string, remove bool) *service {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, o := range s.services {
		if o.spec.Name == name {
			if remove {
				s.services = append(s.services[:i:i], s.services[i+1:]...)
			}
			return o
		}
	}
	return nil
}

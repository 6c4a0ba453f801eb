package supervise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary stands in for a child service when this variable names
// a behaviour.
const childEnv = "SUPERVISE_TEST_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "crash":
		if os.Getenv("SUPERVISE_TEST_PRINT_UID") != "" {
			fmt.Printf("uid %d\n", os.Getuid())
		}
		fmt.Println("hello from stdout")
		fmt.Fprintln(os.Stderr, "oops on stderr")
		os.Exit(3)
	case "graceful":
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		fmt.Println("ready")
		<-c
		fmt.Println("got TERM, exiting")
		os.Exit(0)
	case "usr1":
		// Stops on SIGUSR1 (a stand-in for QEMU's ACPI shutdown) and
		// ignores SIGTERM.
		signal.Ignore(syscall.SIGTERM)
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGUSR1)
		fmt.Println("ready")
		<-c
		fmt.Println("got USR1, shutting down")
		os.Exit(0)
	case "done":
		fmt.Println("did my work")
		os.Exit(0)
	case "stubborn":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		time.Sleep(time.Hour)
	case "parent":
		// A child that starts a grandchild in its process group and
		// prints the grandchild's pid.
		p, err := os.StartProcess("/bin/sleep", []string{"sleep", "3600"}, &os.ProcAttr{})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("grandchild", p.Pid)
		time.Sleep(time.Hour)
	}
}

type lines struct {
	mu sync.Mutex
	l  []Line
}

func (ls *lines) add(l Line) { ls.mu.Lock(); ls.l = append(ls.l, l); ls.mu.Unlock() }

func (ls *lines) waitFor(t *testing.T, text string) Line {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ls.mu.Lock()
		for _, l := range ls.l {
			if strings.Contains(l.Text, text) {
				ls.mu.Unlock()
				return l
			}
		}
		ls.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no line %q from the child", text)
	return Line{}
}

func (ls *lines) count(text string) int {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	n := 0
	for _, l := range ls.l {
		if strings.Contains(l.Text, text) {
			n++
		}
	}
	return n
}

func child(t *testing.T, name, behaviour string) Service {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Service{Name: name, Path: self, Env: append(os.Environ(), childEnv+"="+behaviour),
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 80 * time.Millisecond, StopTimeout: 300 * time.Millisecond}
}

func TestNextBackoff(t *testing.T) {
	var got []time.Duration
	var b time.Duration
	for i := 0; i < 7; i++ {
		b = NextBackoff(b, time.Second, 30*time.Second)
		got = append(got, b)
	}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("backoffs = %v", got)
		}
	}
}

// TestCrashRestartsWithBackoff: a child that exits at once is restarted,
// each time after twice the previous wait up to the cap, and its stdout
// and stderr lines reach the sink tagged with the service and stream.
func TestCrashRestartsWithBackoff(t *testing.T) {
	var ls lines
	s := New(nil, ls.add)
	if err := s.Start(context.Background(), child(t, "crasher", "crash")); err != nil {
		t.Fatal(err)
	}
	defer s.StopAll(nil)
	deadline := time.Now().Add(20 * time.Second)
	for ls.count("hello from stdout") < 6 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := ls.count("hello from stdout"); n < 6 {
		t.Fatalf("the child ran %d times; want restarts", n)
	}
	st := s.Status()[0]
	if st.Restarts < 5 || !strings.Contains(st.LastExit, "exit status 3") {
		t.Errorf("status = %+v", st)
	}
	want := []time.Duration{10, 20, 40, 80, 80}
	for i, w := range want {
		if st.Backoffs[i] != w*time.Millisecond {
			t.Errorf("backoffs = %v, want doubling from 10ms capped at 80ms", st.Backoffs)
			break
		}
	}
	out := ls.waitFor(t, "hello from stdout")
	errl := ls.waitFor(t, "oops on stderr")
	if out.Service != "crasher" || out.Stream != "stdout" || errl.Stream != "stderr" {
		t.Errorf("lines not tagged: %+v %+v", out, errl)
	}
}

// TestStopGraceful: SIGTERM ends a well-behaved child; no SIGKILL needed.
func TestStopGraceful(t *testing.T) {
	var ls lines
	s := New(nil, ls.add)
	s.Start(context.Background(), child(t, "nice", "graceful"))
	ls.waitFor(t, "ready")
	// Restart: TERM, and the supervisor starts it again.
	if err := s.Restart("nice"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for ls.count("ready") < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if ls.count("ready") < 2 || ls.count("got TERM") < 1 {
		t.Fatalf("restart did not run the service again")
	}
	if err := s.Restart("nope"); !errors.Is(err, ErrUnknown) {
		t.Errorf("restart of an unknown service: %v", err)
	}
	if err := s.Stop("nice"); err != nil {
		t.Fatal(err)
	}
	ls.waitFor(t, "got TERM")
	if len(s.Status()) != 0 {
		t.Error("a stopped service is still listed")
	}
}

// TestStopKillsStubbornChildAndItsGroup: a child that ignores SIGTERM is
// killed after the timeout, and so is every process in its group.
func TestStopKillsStubbornChildAndItsGroup(t *testing.T) {
	var ls lines
	s := New(nil, ls.add)
	s.Start(context.Background(), child(t, "stubborn", "stubborn"))
	s.Start(context.Background(), child(t, "parent", "parent"))
	ls.waitFor(t, "ready")
	g := ls.waitFor(t, "grandchild")
	pid, _ := strconv.Atoi(strings.Fields(g.Text)[1])

	var order []string
	start := time.Now()
	s.StopAll(func(name string, timeout time.Duration) {
		order = append(order, name)
	})
	if time.Since(start) < 300*time.Millisecond {
		t.Error("the stubborn child was killed before its stop timeout")
	}
	if strings.Join(order, ",") != "parent,stubborn" {
		t.Errorf("stop order = %v, want reverse start order", order)
	}
	// The grandchild was in the parent's group: it is gone too (reaped by
	// init or a zombie; signal 0 fails either way once reaped — accept a
	// zombie by checking its state).
	time.Sleep(100 * time.Millisecond)
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !strings.Contains(string(b), ") Z ") {
		t.Errorf("grandchild %d survived the stop: %s", pid, b)
	}
}

// TestGracefulHook: Stop asks through Graceful first and the child exits
// by itself, without SIGTERM or SIGKILL.
func TestGracefulHook(t *testing.T) {
	var ls lines
	s := New(nil, ls.add)
	svc := child(t, "guest", "usr1")
	var pid int
	svc.Graceful = func() error { return syscall.Kill(pid, syscall.SIGUSR1) }
	svc.GracefulTimeout = 10 * time.Second
	svc.StopTimeout = 50 * time.Millisecond
	if err := s.Start(context.Background(), svc); err != nil {
		t.Fatal(err)
	}
	ls.waitFor(t, "ready")
	pid = s.Status()[0].Pid
	st, err := s.StopWithStatus("guest")
	if err != nil {
		t.Fatal(err)
	}
	if ls.count("got USR1") != 1 {
		t.Fatal("the child was not stopped through the graceful hook")
	}
	if !st.Clean || st.LastExit != "exit status 0" {
		t.Errorf("a graceful stop: %+v, want a clean exit", st)
	}
}

// TestGracefulTimeout: a child that ignores the graceful request is
// killed after GracefulTimeout plus StopTimeout.
func TestGracefulTimeout(t *testing.T) {
	var ls lines
	s := New(nil, ls.add)
	svc := child(t, "guest", "stubborn")
	asked := 0
	svc.Graceful = func() error { asked++; return nil }
	svc.GracefulTimeout = 100 * time.Millisecond
	if err := s.Start(context.Background(), svc); err != nil {
		t.Fatal(err)
	}
	ls.waitFor(t, "ready")
	st, _ := s.StopWithStatus("guest")
	if asked != 1 {
		t.Errorf("graceful hook called %d times", asked)
	}
	if st.Clean {
		t.Errorf("a child killed after the graceful timeout counts as a clean exit: %+v", st)
	}
}

// TestDoneOnSuccess: a child that exits 0 by itself is not restarted,
// and the same name can be started again afterwards.
func TestDoneOnSuccess(t *testing.T) {
	var ls lines
	s := New(nil, ls.add)
	svc := child(t, "job", "done")
	svc.DoneOnSuccess = true
	var finished atomic.Int32
	svc.Finished = func() { finished.Add(1) }
	if err := s.Start(context.Background(), svc); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for s.Running("job") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s.Running("job") {
		t.Fatal("job still supervised after exiting 0")
	}
	time.Sleep(100 * time.Millisecond)
	if n := ls.count("did my work"); n != 1 {
		t.Fatalf("job ran %d times, want 1", n)
	}
	if st := s.Status()[0]; st.State != Stopped || st.Restarts != 0 {
		t.Errorf("status = %+v", st)
	}
	if n := finished.Load(); n != 1 {
		t.Errorf("Finished called %d times for a job that exited 0 by itself, want 1", n)
	}
	if err := s.Start(context.Background(), svc); err != nil {
		t.Fatalf("start again: %v", err)
	}
	ls.waitFor(t, "did my work")
	if err := s.Start(context.Background(), child(t, "job2", "graceful")); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background(), child(t, "job2", "graceful")); !errors.Is(err, ErrRunning) {
		t.Errorf("second start of a running service: %v", err)
	}
	// Stopped by the supervisor, a DoneOnSuccess job is not Finished.
	stopped := child(t, "job3", "graceful")
	stopped.DoneOnSuccess = true
	stopped.Finished = func() { finished.Add(100) }
	if err := s.Start(context.Background(), stopped); err != nil {
		t.Fatal(err)
	}
	s.StopAll(nil)
	time.Sleep(100 * time.Millisecond)
	if n := finished.Load(); n >= 100 {
		t.Errorf("Finished called for a job the supervisor stopped")
	}
}

// TestOnceAndCredential: a Once child that fails is not restarted, and a
// Credential runs the child as that user (the test runs as root; as
// anyone else it only checks Once).
func TestOnceAndCredential(t *testing.T) {
	var ls lines
	s := New(nil, ls.add)
	svc := child(t, "once", "crash")
	svc.Once = true
	if os.Geteuid() == 0 {
		// The test binary's own directory is root's alone: run a copy
		// the child's user can reach.
		dir, err := os.MkdirTemp("", "supervise-cred-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		os.Chmod(dir, 0o755)
		b, err := os.ReadFile(svc.Path)
		if err != nil {
			t.Fatal(err)
		}
		svc.Path = filepath.Join(dir, "child")
		if err := os.WriteFile(svc.Path, b, 0o755); err != nil {
			t.Fatal(err)
		}
		svc.Credential = &syscall.Credential{Uid: 2345, Gid: 2345}
		svc.Env = append(svc.Env, "SUPERVISE_TEST_PRINT_UID=1")
	}
	if err := s.Start(context.Background(), svc); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for s.Running("once") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s.Running("once") {
		t.Fatal("a Once service is still supervised after it exited")
	}
	time.Sleep(200 * time.Millisecond)
	if st := s.Status()[0]; st.State != Stopped || st.Restarts != 0 {
		t.Errorf("status = %+v, want stopped without restarts", st)
	}
	if os.Geteuid() == 0 {
		ls.waitFor(t, "uid 2345")
	}
}

// TestSkipGraceful: a Graceful that says ErrSkipGraceful has the child
// stopped with SIGTERM at once, and nothing is logged as a failure.
func TestSkipGraceful(t *testing.T) {
	var ls lines
	var logged strings.Builder
	var mu sync.Mutex
	s := New(slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logged.Write(p)
	}), nil)), ls.add)
	svc := child(t, "guest", "usr1")
	svc.Graceful = func() error { return ErrSkipGraceful }
	svc.GracefulTimeout = time.Hour
	if err := s.Start(context.Background(), svc); err != nil {
		t.Fatal(err)
	}
	ls.waitFor(t, "ready")
	st, err := s.StopWithStatus("guest")
	if err != nil {
		t.Fatal(err)
	}
	if ls.count("got USR1") != 0 || st.Clean {
		t.Errorf("a skipped graceful stop: %+v", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(logged.String(), "graceful stop") {
		t.Errorf("the log says:\n%s", logged.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestNice: a service starts at its priority, and Renice changes it for
// every process of its group (here a grandchild it started) and for its
// next run.
func TestNice(t *testing.T) {
	nice := func(pid int) int {
		t.Helper()
		prio, err := unix.Getpriority(unix.PRIO_PROCESS, pid)
		if err != nil {
			t.Fatal(err)
		}
		return 20 - prio // the raw syscall's 40..1 for nice -20..19
	}
	var ls lines
	s := New(nil, ls.add)
	svc := child(t, "parent", "parent")
	svc.Nice = 5
	if err := s.Start(context.Background(), svc); err != nil {
		t.Fatal(err)
	}
	defer s.StopAll(nil)
	g := ls.waitFor(t, "grandchild")
	grandchild, _ := strconv.Atoi(strings.Fields(g.Text)[1])
	var pid int
	for _, st := range s.Status() {
		pid = st.Pid
	}
	if n := nice(pid); n != 5 {
		t.Errorf("started at nice %d, want 5", n)
	}
	if err := s.Renice("parent", 2); err != nil {
		t.Fatal(err)
	}
	for _, p := range []int{pid, grandchild} {
		if n := nice(p); n != 2 {
			t.Errorf("pid %d at nice %d after Renice, want 2", p, n)
		}
	}
	if err := s.Renice("absent", 0); !errors.Is(err, ErrUnknown) {
		t.Errorf("Renice of no service: %v", err)
	}
}

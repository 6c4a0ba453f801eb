package modules

import (
	"runtime"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// backgroundNice is the niceness of the loads and scans nothing waits for
// yet (Background, Coldplug): under TCG the boot is bound by its two
// CPUs, and a driver for a device no step needs (a SATA controller, a
// touchpad, vfio) took them from the one the boot waits for (ext4, the
// boot disk's) and from smbd starting.
const backgroundNice = 10

// lower runs the calling goroutine on its own OS thread at
// backgroundNice, unless t was raised or every load is hurried: that
// thread ends with the goroutine, so nothing else ever runs at its
// priority. The program's main thread, which cannot end (Go parks it for
// good instead) and whose priority ps shows as the program's, stays as it
// is.
func (t *lowThread) lower(hurry *atomic.Bool) {
	runtime.LockOSThread()
	tid := unix.Gettid()
	if tid == unix.Getpid() {
		runtime.UnlockOSThread()
		return
	}
	t.tid.Store(int32(tid))
	if t.raised.Load() || hurry.Load() {
		return
	}
	setNice(tid, backgroundNice)
	// Raised between the check and setNice: raise found the thread
	// already (its tid is stored before the check) and set it back first.
	if t.raised.Load() || hurry.Load() {
		setNice(tid, 0)
	}
}

// done says t's thread is no longer t's.
func (t *lowThread) done() { t.tid.Store(0) }

// raise runs t at the boot's priority from now on.
func (t *lowThread) raise() {
	t.raised.Store(true)
	if tid := t.tid.Load(); tid != 0 {
		setNice(int(tid), 0)
	}
}

// setNice sets thread tid's niceness. Raising it back needs
// CAP_SYS_NICE, which hostd has as root; a test run by a user only
// leaves its threads lower, and an error changes no outcome.
func setNice(tid, nice int) {
	_ = unix.Setpriority(unix.PRIO_PROCESS, tid, nice)
}

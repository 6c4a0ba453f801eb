package hostd

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode"
)

// KernelRecord is one record of the kernel's log as /dev/kmsg gives it.
type KernelRecord struct {
	// Level is the syslog level (0 emergency ... 7 debug).
	Level int
	Seq   uint64
	// Message is the record's text, without its continuation lines.
	Message string
}

// ParseKmsg reads one /dev/kmsg record: "PRIO,SEQ,USEC,FLAGS[,...];TEXT"
// then, on their own lines, " KEY=VALUE" continuations. ok is false for
// anything else.
func ParseKmsg(b []byte) (KernelRecord, bool) {
	head, text, ok := strings.Cut(string(b), ";")
	if !ok {
		return KernelRecord{}, false
	}
	fields := strings.Split(head, ",")
	if len(fields) < 3 {
		return KernelRecord{}, false
	}
	prio, err := strconv.Atoi(fields[0])
	if err != nil || prio < 0 {
		return KernelRecord{}, false
	}
	seq, err := strconv.ParseUint(fields[1], 10, 64)
	if err != nil {
		return KernelRecord{}, false
	}
	text, _, _ = strings.Cut(text, "\n")
	return KernelRecord{Level: prio & 7, Seq: seq, Message: text}, true
}

// The kernel's messages KernelWatch acts on.
var (
	// "EXT4-fs error (device vda4): ext4_lookup:1855: inode #2: comm ls: ..."
	ext4ErrorRE = regexp.MustCompile(`^EXT4-fs error \(device ([^)\s]+)\): (.*)`)
	// "EXT4-fs (vda4): Remounting filesystem read-only"
	ext4ReadOnlyRE = regexp.MustCompile(`^EXT4-fs \(([^)\s]+)\): Remounting filesystem read-only`)
	// "Aborting journal on device vda4-8."
	journalAbortRE = regexp.MustCompile(`^Aborting journal on device ([^\s]+?)(?:-\d+)?\.?$`)
	// "I/O error, dev vda, sector 2048 op 0x1:(WRITE) ..." (block layer)
	// and "Buffer I/O error on dev vda4, logical block 0, ..."
	ioErrorRE = regexp.MustCompile(`(?:^|: )(?:critical \w+ error|I/O error), dev ([^,\s]+), sector|^Buffer I/O error on dev ([^,\s]+),`)
	// "kernel BUG at fs/jbd2/transaction.c:1526!", "BUG: unable to
	// handle page fault ...", "Oops: ...", "general protection fault ...".
	// (Not "watchdog: BUG: soft lockup": a busy emulated host says that.)
	kernelBugRE = regexp.MustCompile(`^(?:kernel BUG at |BUG: (?:unable to handle|kernel NULL pointer)|Oops|general protection fault)`)
	// "Out of memory: Killed process 1234 (qemu-system-x86) total-vm:..."
	oomRE = regexp.MustCompile(`^Out of memory(?: \([^)]*\))?: Killed process (\d+) \(([^)]*)\)`)
)

// KernelWatch turns the kernel's log into the host's health: errors of a
// filesystem and a read-only remount (a journal the kernel aborted), disk
// I/O errors, a bug the kernel hit, a process it killed for memory. Each
// becomes one problem, kept until the host restarts: a kernel that hit a
// bug, or a filesystem with an error, stays so.
type KernelWatch struct {
	// DataDevice is the kernel's name of the device the data partition's
	// filesystem is on ("vda4", "dm-0"; empty: none).
	DataDevice string
	// OnData, when set, is called (outside the watch's lock, on the
	// reading goroutine) when a problem of the data partition's
	// filesystem comes or changes.
	OnData func()

	mu       sync.Mutex
	order    []string
	problems map[string]string
	fs       map[string]*fsTrouble
	ioErrors map[string]int
}

// fsTrouble is what the kernel said of one device's filesystem.
type fsTrouble struct {
	first    string
	readOnly bool
}

// kmsgQuote bounds a kernel message shown in a problem and keeps it to
// printable text (a USB device's strings, for one, reach the kernel log).
func kmsgQuote(s string) string {
	s = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
	if r := []rune(s); len(r) > 160 {
		s = string(r[:160]) + "…"
	}
	return s
}

// Observe takes one record, and returns a console line when it brings a
// new problem, or changes one (empty: nothing new).
func (w *KernelWatch) Observe(r KernelRecord) string {
	w.mu.Lock()
	if w.problems == nil {
		w.problems = map[string]string{}
		w.fs = map[string]*fsTrouble{}
		w.ioErrors = map[string]int{}
	}
	line, data := w.observe(r)
	w.mu.Unlock()
	if data && w.OnData != nil {
		w.OnData()
	}
	return line
}

// observe is Observe under the lock; data says the line is of the data
// partition's filesystem.
func (w *KernelWatch) observe(r KernelRecord) (string, bool) {
	// The kernel says all of these at warning level or worse; the same
	// words said quietly are a program writing to /dev/kmsg.
	if r.Level > 4 {
		return "", false
	}
	msg := r.Message
	var dev, first string
	readOnly := false
	if m := ext4ErrorRE.FindStringSubmatch(msg); m != nil {
		dev, first = m[1], "EXT4-fs error: "+m[2]
	} else if m := journalAbortRE.FindStringSubmatch(msg); m != nil {
		dev, first = m[1], msg
	} else if m := ext4ReadOnlyRE.FindStringSubmatch(msg); m != nil {
		dev, readOnly = m[1], true
	}
	if dev != "" {
		line := w.fsEvent(dev, first, readOnly)
		return line, line != "" && dev == w.DataDevice
	}
	return w.other(r), false
}

// other is observe for what is not a filesystem's.
func (w *KernelWatch) other(r KernelRecord) string {
	msg := r.Message
	if m := ioErrorRE.FindStringSubmatch(msg); m != nil {
		dev := m[1] + m[2]
		if ignoredIODevice(dev) {
			return ""
		}
		w.ioErrors[dev]++
		n := w.ioErrors[dev]
		// The first, then at 10, 100, ...: a failing disk says so many
		// times a second.
		if n != 1 && n != 10 && n != 100 && n != 1000 {
			w.problems["io "+dev] = ioProblem(dev, n)
			return ""
		}
		return w.set("io "+dev, ioProblem(dev, n))
	}
	if kernelBugRE.MatchString(msg) {
		if _, seen := w.problems["bug"]; seen {
			return ""
		}
		return w.set("bug", fmt.Sprintf("the kernel hit a bug (%s): the host may misbehave until it restarts; save your work in the guests and restart it", kmsgQuote(msg)))
	}
	if m := oomRE.FindStringSubmatch(msg); m != nil {
		return w.set("oom "+m[2], fmt.Sprintf("the host ran out of memory and the kernel killed %s (pid %s): the guests' memory and the host's own do not fit; give a guest less", kmsgQuote(m[2]), m[1]))
	}
	return ""
}

// ignoredIODevice: an empty optical or floppy drive, and a loop device
// (whose file's own filesystem speaks for it), say I/O error for nothing
// wrong with a disk.
func ignoredIODevice(dev string) bool {
	for _, p := range []string{"sr", "fd", "loop"} {
		if strings.HasPrefix(dev, p) {
			return true
		}
	}
	return false
}

// ioProblem is the problem for n I/O errors on dev.
func ioProblem(dev string, n int) string {
	if n == 1 {
		return fmt.Sprintf("the disk %s has an I/O error: it may be failing; copy what matters off the data partition", kmsgQuote(dev))
	}
	return fmt.Sprintf("the disk %s has %d I/O errors: it may be failing; copy what matters off the data partition", kmsgQuote(dev), n)
}

func (w *KernelWatch) fsEvent(dev, first string, readOnly bool) string {
	t := w.fs[dev]
	if t == nil {
		t = &fsTrouble{}
		w.fs[dev] = t
	}
	changed := false
	if t.first == "" && first != "" {
		t.first, changed = first, true
	}
	if readOnly && !t.readOnly {
		t.readOnly, changed = true, true
	}
	if !changed {
		return ""
	}
	what := "the filesystem on " + kmsgQuote(dev)
	if dev != "" && dev == w.DataDevice {
		what = "the data partition (" + kmsgQuote(dev) + ")"
	}
	var p string
	switch {
	case t.readOnly:
		p = what + " is read-only after a filesystem error"
		if t.first != "" {
			p += " (" + kmsgQuote(t.first) + ")"
		}
		p += ": nothing on it can be written until the host restarts, which checks and repairs it"
	default:
		p = what + " has an error (" + kmsgQuote(t.first) + "): restart the host soon, which checks and repairs it"
	}
	return w.set("fs "+dev, p)
}

// set records problem under key; the console line says it.
func (w *KernelWatch) set(key, problem string) string {
	if _, ok := w.problems[key]; !ok {
		w.order = append(w.order, key)
	}
	w.problems[key] = problem
	return "thinhost: kernel: " + problem
}

// Problems are the problems so far, in the order they came.
func (w *KernelWatch) Problems() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.order))
	for _, k := range w.order {
		out = append(out, w.problems[k])
	}
	return out
}

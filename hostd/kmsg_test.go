package hostd

import (
	"strings"
	"testing"
)

func TestParseKmsg(t *testing.T) {
	r, ok := ParseKmsg([]byte("2,1042,6898355,-;kernel BUG at fs/jbd2/transaction.c:1526!\n SUBSYSTEM=x\n"))
	if !ok || r.Level != 2 || r.Seq != 1042 || r.Message != "kernel BUG at fs/jbd2/transaction.c:1526!" {
		t.Errorf("ParseKmsg = %+v, %v", r, ok)
	}
	// A facility above the kernel's (printk from user space) keeps its level.
	if r, ok := ParseKmsg([]byte("14,7,100,-;hello")); !ok || r.Level != 6 {
		t.Errorf("facility 1: %+v, %v", r, ok)
	}
	for _, bad := range []string{"", "no separator", "x,1,2,-;m", "3,y,2,-;m", "3,1;m", "-1,1,2,-;m"} {
		if _, ok := ParseKmsg([]byte(bad)); ok {
			t.Errorf("ParseKmsg(%q) is a record", bad)
		}
	}
}

// observe feeds w the messages at level 3 and returns the console lines.
func observe(w *KernelWatch, msgs ...string) []string {
	var lines []string
	for i, m := range msgs {
		if l := w.Observe(KernelRecord{Level: 3, Seq: uint64(i), Message: m}); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// TestKernelWatchDataError: the data partition's error, its journal
// aborted and the read-only remount, as ext4 says them, are one problem
// that names the data partition and the first error, and says the host
// must restart; said on the console twice (the error, then read-only),
// and twice hostd is called to flush what is written.
func TestKernelWatchDataError(t *testing.T) {
	calls := 0
	w := &KernelWatch{DataDevice: "vda4", OnData: func() { calls++ }}
	lines := observe(w,
		"EXT4-fs error (device vda4): trigger_test_error:NNN: comm sh: 1",
		"Aborting journal on device vda4-8.",
		"EXT4-fs (vda4): Remounting filesystem read-only",
		"EXT4-fs (vda4): Remounting filesystem read-only",
	)
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "thinhost: kernel: the data partition (vda4) has an error") {
		t.Fatalf("console lines = %q", lines)
	}
	p := w.Problems()
	if len(p) != 1 || !strings.Contains(p[0], "the data partition (vda4) is read-only after a filesystem error (EXT4-fs error: trigger_test_error") ||
		!strings.Contains(p[0], "until the host restarts") {
		t.Errorf("problems = %q", p)
	}
	// Another device's filesystem is named as itself, and hostd is not
	// called to flush the data partition for it.
	observe(w, "Aborting journal on device dm-1-8.")
	if p := w.Problems(); len(p) != 2 || !strings.HasPrefix(p[1], "the filesystem on dm-1 has an error (Aborting journal on device dm-1-8.): restart the host soon") {
		t.Errorf("problems = %q", p)
	}
	if calls != 2 {
		t.Errorf("OnData called %d times, want 2 (the error, then read-only)", calls)
	}
}

// TestKernelWatchBug: the bug that stopped smbd on an ext4 journal (seen
// in CI) is one problem; what follows it, and a busy host's soft lockup,
// are not more.
func TestKernelWatchBug(t *testing.T) {
	w := &KernelWatch{}
	lines := observe(w,
		"------------[ cut here ]------------",
		"kernel BUG at fs/jbd2/transaction.c:1526!",
		"invalid opcode: 0000 [#1] PREEMPT SMP NOPTI",
		"general protection fault, probably for non-canonical address 0xdead: 0000 [#2] PREEMPT SMP NOPTI",
		"watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [qemu-system-x86:812]",
	)
	if len(lines) != 1 || len(w.Problems()) != 1 || !strings.Contains(lines[0], "the kernel hit a bug (kernel BUG at fs/jbd2/transaction.c:1526!)") {
		t.Errorf("lines %q, problems %q", lines, w.Problems())
	}
	// Said at a quiet level, the same words are no problem (a program
	// writing to /dev/kmsg).
	w = &KernelWatch{DataDevice: "vda4"}
	for _, m := range []string{"kernel BUG at nowhere", "EXT4-fs error (device vda4): x", "Out of memory: Killed process 1 (a)"} {
		if l := w.Observe(KernelRecord{Level: 6, Message: m}); l != "" {
			t.Errorf("info-level %q is a problem: %q", m, l)
		}
	}
}

// TestKernelWatchIOErrors: a failing disk's errors are one problem that
// counts them, said on the console at the 1st, 10th and 100th; an empty
// CD drive's are not a problem.
func TestKernelWatchIOErrors(t *testing.T) {
	w := &KernelWatch{}
	var msgs []string
	for range 120 {
		msgs = append(msgs, "I/O error, dev nvme0n1, sector 2048 op 0x1:(WRITE) flags 0x800 phys_seg 1 prio class 2")
	}
	msgs = append(msgs, "blk_update_request: I/O error, dev sr0, sector 0 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0",
		"Buffer I/O error on dev fd0, logical block 0, async page read")
	lines := observe(w, msgs...)
	if len(lines) != 3 || !strings.Contains(lines[1], "the disk nvme0n1 has 10 I/O errors") {
		t.Errorf("console lines = %q", lines)
	}
	if p := w.Problems(); len(p) != 1 || !strings.Contains(p[0], "the disk nvme0n1 has 120 I/O errors") {
		t.Errorf("problems = %q", p)
	}
	observe(w, "Buffer I/O error on dev sda1, logical block 0, lost async page write")
	if p := w.Problems(); len(p) != 2 || !strings.Contains(p[1], "the disk sda1 has an I/O error") {
		t.Errorf("problems = %q", p)
	}
}

// TestKernelWatchOOM: a guest's QEMU killed for memory says what to do.
func TestKernelWatchOOM(t *testing.T) {
	w := &KernelWatch{}
	observe(w, "Out of memory: Killed process 812 (qemu-system-x86) total-vm:9000000kB, anon-rss:8000000kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:100kB oom_score_adj:0",
		"Out of memory: Killed process 813 (qemu-system-x86) total-vm:1kB")
	if p := w.Problems(); len(p) != 1 || !strings.Contains(p[0], "killed qemu-system-x86 (pid 813): the guests' memory") {
		t.Errorf("problems = %q", p)
	}
}

// TestKernelWatchHostile: what reaches the kernel's log from a device (a
// USB stick's name, a filesystem's label) reaches the console only as
// printable text, and bounded.
func TestKernelWatchHostile(t *testing.T) {
	w := &KernelWatch{}
	l := w.Observe(KernelRecord{Level: 2, Message: "EXT4-fs error (device sdb1): \x1b]0;owned\x07" + strings.Repeat("x", 500)})
	if strings.ContainsAny(l, "\x1b\x07") || len(l) > 400 {
		t.Errorf("console line %q", l)
	}
}

func FuzzKmsg(f *testing.F) {
	for _, s := range []string{"3,1,2,-;EXT4-fs error (device vda4): x", "3,1,2,-;EXT4-fs (vda4): Remounting filesystem read-only",
		"2,1,2,-;kernel BUG at x", "3,1,2,-;I/O error, dev sda, sector 1", "3,1,2,-;Out of memory: Killed process 1 (a)",
		"3,1,2,-;Aborting journal on device -8."} {
		f.Add([]byte(s))
	}
	w := &KernelWatch{DataDevice: "vda4"}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, ok := ParseKmsg(b)
		if !ok {
			return
		}
		l := w.Observe(r)
		for _, c := range l {
			if c < 0x20 || c == 0x7f {
				t.Fatalf("control character in %q", l)
			}
		}
		for _, p := range w.Problems() {
			if p == "" {
				t.Fatal("an empty problem")
			}
		}
	})
}

// Package sysmem reads the kernel's memory figures (/proc/meminfo), for
// hostd's status and the guests' sizes, and for `thinhost vm args` on a
// build machine.
package sysmem

import (
	"fmt"
	"math"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Info holds /proc/meminfo's figures, in bytes (0: not reported).
type Info struct {
	Total, Available int64
	// Shmem is files held in memory (the initramfs the host runs from,
	// tmpfs such as /run), which no memory pressure frees.
	Shmem int64
	// Kernel is the kernel's own memory that pressure does not free: its
	// unreclaimable slab, kernel stacks and page tables.
	Kernel int64
}

// Parse reads /proc/meminfo's text ("MemTotal:  16318164 kB").
func Parse(text string) Info {
	var m Info
	eachKB(text, func(key string, n int64) {
		switch key {
		case "MemTotal:":
			m.Total = n
		case "MemAvailable:":
			m.Available = n
		case "Shmem:":
			m.Shmem = n
		case "SUnreclaim:", "KernelStack:", "PageTables:":
			m.Kernel += n
		}
	})
	return m
}

// eachKB calls fn with the key ("MemTotal:") and the figure in bytes of
// each "Key: N kB" line of text (/proc/meminfo, smaps_rollup), skipping
// lines without a sane figure.
func eachKB(text string, fn func(key string, n int64)) {
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[2] != "kB" {
			continue
		}
		kb, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || kb < 0 || kb >= 1<<52 {
			continue
		}
		fn(f[0], kb<<10)
	}
}

// ParseReserve reads /proc/zoneinfo's text and returns the memory the
// kernel keeps free for itself, in bytes: as the kernel counts it against
// MemAvailable (calculate_totalreserve_pages), each zone's high watermark
// plus its largest protection against allocations meant for higher
// zones, at most the zone's managed pages. Transparent huge pages raise
// the watermarks (min_free_kbytes) so that whole 2 MiB blocks stay free.
func ParseReserve(text string, pageSize int64) int64 {
	var total, high, protect, managed int64
	inZone := false
	flush := func() {
		if inZone {
			r := high + protect
			if r > managed {
				r = managed
			}
			total = min(total+r, 1<<40)
		}
		high, protect, managed = 0, 0, 0
	}
	num := func(s string) int64 {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 || n > 1<<40 {
			return 0
		}
		return n
	}
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch {
		case f[0] == "Node" && len(f) >= 4 && f[2] == "zone":
			flush()
			inZone = true
		case f[0] == "high" && len(f) == 2:
			high = num(f[1])
		case f[0] == "managed" && len(f) == 2:
			managed = num(f[1])
		case f[0] == "protection:":
			for _, v := range f[1:] {
				if n := num(strings.Trim(v, "(),")); n > protect {
					protect = n
				}
			}
		}
	}
	flush()
	return total * pageSize
}

// ReadReserve reads /proc/zoneinfo for ParseReserve.
func ReadReserve() (int64, error) {
	b, err := os.ReadFile("/proc/zoneinfo")
	if err != nil {
		return 0, fmt.Errorf("read the kernel's reserve: %w", err)
	}
	return ParseReserve(string(b), int64(os.Getpagesize())), nil
}

// Read reads /proc/meminfo.
func Read() (Info, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return Info{}, fmt.Errorf("read memory figures: %w", err)
	}
	return Parse(string(b)), nil
}

// Program is the memory of the processes running one program.
type Program struct {
	Name string
	// Processes is how many run it; Private their anonymous memory (heap,
	// stacks: what no memory pressure frees, swap aside), each process's
	// share of it where the kernel gives one (Pss_Anon): a forked
	// helper's pages still shared with its parent count once in all.
	Processes int
	Private   int64
}

// ParseStatus reads a /proc/PID/status text's program name and
// anonymous memory (RssAnon); ok is false for a kernel thread, which has
// none.
func ParseStatus(text string) (name string, anon int64, ok bool) {
	for _, line := range strings.Split(text, "\n") {
		k, v, found := strings.Cut(line, ":")
		if !found {
			continue
		}
		switch k {
		case "Name":
			name = strings.TrimSpace(v)
		case "RssAnon":
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil && kb >= 0 && kb < 1<<52 {
					anon, ok = kb<<10, true
				}
			}
		}
	}
	return name, anon, ok && name != ""
}

// ProgramName names a process's program from its status Name and its
// command line: a program the dynamic loader runs (ld-linux-x86-64
// --library-path DIR PROGRAM ...) is PROGRAM's name.
func ProgramName(name string, cmdline []string) string {
	if !strings.HasPrefix(name, "ld-linux") {
		return name
	}
	for i := 1; i < len(cmdline); i++ {
		switch a := cmdline[i]; {
		case a == "--library-path" || a == "--preload" || a == "--argv0":
			i++ // its value
		case strings.HasPrefix(a, "--"):
		default:
			return path.Base(a)
		}
	}
	return name
}

// Programs sums the anonymous memory of the processes under procDir
// (/proc) by program (Program.Private), largest first; names renames processes by pid
// (hostd runs as u-root's "uinit").
func Programs(procDir string, names map[int]string) []Program {
	entries, err := os.ReadDir(procDir)
	if err != nil {
		return nil
	}
	by := map[string]*Program{}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(procDir + "/" + e.Name() + "/status")
		if err != nil {
			continue // gone meanwhile
		}
		name, anon, ok := ParseStatus(string(b))
		if !ok {
			continue
		}
		pid, _ := strconv.Atoi(e.Name())
		if n := names[pid]; n != "" {
			name = n
		} else if c, err := os.ReadFile(procDir + "/" + e.Name() + "/cmdline"); err == nil {
			name = ProgramName(name, strings.Split(strings.TrimRight(string(c), "\x00"), "\x00"))
		}
		p := by[name]
		if p == nil {
			p = &Program{Name: name}
			by[name] = p
		}
		// Its share, where the kernel has it: a forked helper's pages,
		// still shared with its parent, are not its own twice over.
		if r, err := ReadRollup(procDir, pid); err == nil && r.PssAnon > 0 {
			anon = r.PssAnon
		}
		p.Processes++
		p.Private += anon
	}
	out := make([]Program, 0, len(by))
	for _, p := range by {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Private != out[j].Private {
			return out[i].Private > out[j].Private
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// KernelMinFree is the min_free_kbytes the kernel sets for itself from
// the memory it manages (memTotal, in bytes), before transparent huge
// pages raise it (init_per_zone_wmark_min): the square root of 16 times
// the memory in KiB, within 128 KiB and 256 MiB. The result is in KiB.
func KernelMinFree(memTotal int64) int64 {
	kb := max(memTotal>>10, 0)
	return min(max(int64(math.Sqrt(float64(kb)*16)), 128), 262144)
}

// Rollup is a process's figures from /proc/PID/smaps_rollup, in bytes.
type Rollup struct {
	// Anonymous is its anonymous memory (heap, stacks: for QEMU, the
	// guest's memory it touched), AnonHuge how much of it is in
	// transparent huge pages.
	Anonymous, AnonHuge int64
	// PssAnon is its share of anonymous memory: pages it shares with
	// the process it forked from (smbd's helpers) count in part.
	PssAnon int64
}

// ParseRollup reads a /proc/PID/smaps_rollup text.
func ParseRollup(text string) Rollup {
	var r Rollup
	eachKB(text, func(key string, n int64) {
		switch key {
		case "Anonymous:":
			r.Anonymous = n
		case "AnonHugePages:":
			r.AnonHuge = n
		case "Pss_Anon:":
			r.PssAnon = n
		}
	})
	return r
}

// ReadRollup reads process pid's smaps_rollup under procDir (/proc).
func ReadRollup(procDir string, pid int) (Rollup, error) {
	b, err := os.ReadFile(fmt.Sprintf("%s/%d/smaps_rollup", procDir, pid))
	if err != nil {
		return Rollup{}, fmt.Errorf("read process %d's memory: %w", pid, err)
	}
	return ParseRollup(string(b)), nil
}

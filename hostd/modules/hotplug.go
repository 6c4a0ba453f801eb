package modules

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/thinhost/thinhost/images/layout"
)

// AliasTable is depmod's modules.alias: which module drives which
// devices, as glob patterns over the kernel's modalias strings
// ("pci:v00008086d00009A49sv...", "usb:v0781p5581d0100dc00..."). The
// builder writes it for the modules the image ships.
type AliasTable struct {
	entries []aliasEntry
	// byPrefix indexes the entries by their pattern's literal prefix,
	// each list in table order: a modalias can match only the patterns
	// whose prefix is one of its own prefixes, so matching looks up each
	// of those instead of trying every pattern. A laptop's table has
	// 26,000 patterns (9,000 PCI, 8,500 USB); under TCG trying them all
	// for each device took 0.2-0.6 s of every coldplug round.
	byPrefix map[string][]int
	// driven are the modules with a device's pattern (layout.DeviceAlias).
	driven map[string]bool
}

type aliasEntry struct {
	pattern, module string
}

// literalPrefix is pattern up to the first byte fnmatch treats as
// special: a string it matches begins with it.
func literalPrefix(pattern string) string {
	if i := strings.IndexAny(pattern, "*?[\\"); i >= 0 {
		return pattern[:i]
	}
	return pattern
}

// add appends an entry and indexes it.
func (t *AliasTable) add(pattern, module string) {
	if t.byPrefix == nil {
		t.byPrefix, t.driven = map[string][]int{}, map[string]bool{}
	}
	if layout.DeviceAlias(pattern) {
		t.driven[module] = true
	}
	prefix := literalPrefix(pattern)
	t.byPrefix[prefix] = append(t.byPrefix[prefix], len(t.entries))
	t.entries = append(t.entries, aliasEntry{pattern: pattern, module: module})
}

// ParseModulesAlias reads "alias PATTERN MODULE" lines; other lines
// (comments, blank) are skipped.
func ParseModulesAlias(r io.Reader) (*AliasTable, error) {
	t := &AliasTable{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if f[0] != "alias" || len(f) != 3 {
			return nil, fmt.Errorf("parse modules.alias line %d: want \"alias PATTERN MODULE\"", line)
		}
		t.add(f[1], strings.ReplaceAll(f[2], "-", "_"))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read modules.alias: %w", err)
	}
	return t, nil
}

// DeviceDriven reports whether module drives devices the kernel reports:
// whether any of its aliases is a device's (layout.DeviceAlias). Such a module is
// loaded when a device wants it; others are loaded because the profile
// names them.
func (t *AliasTable) DeviceDriven(module string) bool { return t.driven[module] }

// Len is how many patterns the table holds.
func (t *AliasTable) Len() int { return len(t.entries) }

// Match returns the modules whose patterns match modalias, in table
// order, each once.
func (t *AliasTable) Match(modalias string) []string {
	var candidates []int
	for k := 0; k <= len(modalias); k++ {
		candidates = append(candidates, t.byPrefix[modalias[:k]]...)
	}
	slices.Sort(candidates)
	var out []string
	for _, i := range candidates {
		e := &t.entries[i]
		if !slices.Contains(out, e.module) && fnmatch(e.pattern, modalias) {
			out = append(out, e.module)
		}
	}
	return out
}

// fnmatch is fnmatch(3) without flags, as kmod matches aliases: '*' any
// run of bytes (slashes too), '?' one byte, '[...]' a set with ranges and
// '!' or '^' negation, '\' quoting the next byte. A malformed set
// matches nothing.
func fnmatch(pattern, s string) bool {
	// The classic iterative matcher: remember the last '*' and retry from
	// one byte further on a mismatch.
	p, i := 0, 0
	starP, starI := -1, 0
	for i < len(s) {
		if p < len(pattern) {
			switch c := pattern[p]; c {
			case '*':
				starP, starI = p, i
				p++
				continue
			case '?':
				p++
				i++
				continue
			case '[':
				if ok, next, valid := matchSet(pattern, p, s[i]); valid {
					if ok {
						p, i = next, i+1
						continue
					}
				} else if s[i] == '[' { // no closing ']': a literal '['
					p, i = p+1, i+1
					continue
				}
			case '\\':
				if p+1 < len(pattern) && pattern[p+1] == s[i] {
					p, i = p+2, i+1
					continue
				}
			default:
				if c == s[i] {
					p++
					i++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starI++
		p, i = starP+1, starI
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// matchSet matches c against the set starting at pattern[p] == '['; next
// is the index after its ']'; valid is false when there is no ']'.
func matchSet(pattern string, p int, c byte) (ok bool, next int, valid bool) {
	j := p + 1
	negate := j < len(pattern) && (pattern[j] == '!' || pattern[j] == '^')
	if negate {
		j++
	}
	first := true
	for j < len(pattern) {
		if pattern[j] == ']' && !first {
			return ok != negate, j + 1, true
		}
		first = false
		lo := pattern[j]
		if lo == '\\' && j+1 < len(pattern) {
			j++
			lo = pattern[j]
		}
		hi := lo
		if j+2 < len(pattern) && pattern[j+1] == '-' && pattern[j+2] != ']' {
			hi = pattern[j+2]
			j += 2
		}
		if lo <= c && c <= hi {
			ok = true
		}
		j++
	}
	return false, 0, false
}

// Uevent is one kernel uevent: its action ("add", "remove", "bind", ...)
// and its environment (DEVPATH, SUBSYSTEM, MODALIAS, ...).
type Uevent struct {
	Action string
	Env    map[string]string
}

// ParseUevent reads a kernel uevent as NETLINK_KOBJECT_UEVENT carries it:
// "ACTION@DEVPATH" then NUL-separated KEY=VALUE pairs. Messages of other
// senders (udev's "libudev" monitor format) are refused.
func ParseUevent(b []byte) (Uevent, bool) {
	parts := bytes.Split(b, []byte{0})
	head := string(parts[0])
	action, _, ok := strings.Cut(head, "@")
	if !ok || action == "" {
		return Uevent{}, false
	}
	ev := Uevent{Action: action, Env: map[string]string{}}
	for _, kv := range parts[1:] {
		k, v, ok := strings.Cut(string(kv), "=")
		if ok && k != "" {
			ev.Env[k] = v
		}
	}
	if a := ev.Env["ACTION"]; a != "" && a != action {
		return Uevent{}, false
	}
	return ev, true
}

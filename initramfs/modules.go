package initramfs

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/internal/kmod"
	"github.com/xi2/xz"
	"golang.org/x/sync/errgroup"
)

// Module is one kernel module in the closure.
type Module struct {
	// Name is the normalized module name ("virtio_blk").
	Name string
	// Path is relative to the modules directory ("kernel/drivers/...ko").
	Path string
	// Deps are the names of modules that must be loaded first: the hard
	// dependencies (depends=) and the "pre:" soft dependencies that exist.
	Deps []string
	// Aliases are the module's alias= patterns: the devices it drives
	// ("pci:v00008086d*...", "usb:v*p*d*dc*dsc*dp*ic08isc06ip50in*").
	Aliases []string
	// Firmware are the module's firmware= names: files it may load from
	// the firmware directory ("i915/adlp_dmc.bin"); a few are globs.
	Firmware []string
	// Late modules ship in the system image, not the initramfs, and load
	// once it is mounted (MarkLate).
	Late bool
	// Packed modules are stored zstd-compressed in the initramfs (their
	// file ends in .zst), whose files stay in memory for as long as the
	// host runs; hostd decompresses one to load it, since the kernel may
	// not (Debian's 6.1 loads uncompressed modules only). PackEarly sets
	// it.
	Packed bool
}

// ModuleSet is the closure of the modules a profile names.
type ModuleSet struct {
	Release string
	// Dir is the source /lib/modules/<Release> tree.
	Dir string
	// Modules in dependency order: every module comes after its Deps.
	Modules []*Module
	// Requested are the names the profile asked for that are modules
	// (built-in ones are left out), in the profile's order.
	Requested []string
	// Builtin are requested names that are built into the kernel.
	Builtin []string
	// LateDir is where late modules are found on the running host (the
	// system image's /lib/modules/<Release>); MarkLate sets it.
	LateDir string
}

// MarkLate makes every module outside the closure of early late: it
// ships in the system image and its modules.dep path is absolute, under
// lateDir. Early modules' dependencies are early, so a module in the
// initramfs never waits for one that is not.
func (s *ModuleSet) MarkLate(early []string, lateDir string) {
	byName := map[string]*Module{}
	for _, m := range s.Modules {
		byName[m.Name] = m
		m.Late = true
	}
	var keep func(string)
	keep = func(n string) {
		m := byName[kmod.Name(n)]
		if m == nil || !m.Late {
			return
		}
		m.Late = false
		for _, d := range m.Deps {
			keep(d)
		}
	}
	for _, n := range early {
		keep(n)
	}
	s.LateDir = lateDir
}

// Module returns the set's module called name, or nil.
func (s *ModuleSet) Module(name string) *Module {
	name = kmod.Name(name)
	for _, m := range s.Modules {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// depPath is m's path as modules.dep spells it: relative to the modules
// directory, or absolute for a late module.
func (s *ModuleSet) depPath(m *Module) string {
	switch {
	case m.Late:
		return s.LateDir + "/" + m.Path
	case m.Packed:
		return m.Path + ".zst"
	}
	return m.Path
}

// PackEarly marks the initramfs's uncompressed modules Packed, but for
// those that load at every boot: the profile's modules that drive no
// device (ext4, squashfs, ...; see layout.DeviceAlias) and what they
// need, whose files hostd removes once loaded, so that packing them saves
// no memory and costs their unpacking (under TCG ext4's 2.4 MiB took 0.1-0.2 s
// of a boot). Modules the kernel package already compressed (.ko.xz)
// are left as they are.
func (s *ModuleSet) PackEarly() {
	always := map[string]bool{}
	var need func(string)
	need = func(n string) {
		m := s.Module(n)
		if m == nil || always[m.Name] {
			return
		}
		always[m.Name] = true
		for _, d := range m.Deps {
			need(d)
		}
	}
	for _, n := range s.Requested {
		if m := s.Module(n); m != nil && !slices.ContainsFunc(m.Aliases, layout.DeviceAlias) {
			need(n)
		}
	}
	for _, m := range s.Modules {
		m.Packed = !m.Late && strings.HasSuffix(m.Path, ".ko") && !always[m.Name]
	}
}

// Pack compresses a module's file for the initramfs (Packed).
func Pack(ko []byte) ([]byte, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	defer enc.Close()
	return enc.EncodeAll(ko, nil), nil
}

// Optional modules are loaded when the kernel has them and skipped when it
// does not; hostd needs them for the ACPI power button.
var Optional = []string{"button", "evdev"}

// Closure computes the modules to ship for names: each module with its
// dependencies, read from the modules' own .modinfo sections the way depmod
// does (Debian's linux-image packages ship no modules.dep: depmod runs at
// install time). Names that are neither a module nor built in are an error
// that names them.
func Closure(dir, release string, names, optional []string) (*ModuleSet, error) {
	idx, err := indexModules(dir)
	if err != nil {
		return nil, err
	}
	set := &ModuleSet{Release: release, Dir: dir}
	done := map[string]*Module{}
	visiting := map[string]bool{}

	var visit func(name string, chain []string) error
	visit = func(name string, chain []string) error {
		if _, ok := done[name]; ok {
			return nil
		}
		if visiting[name] {
			return nil // softdep cycles exist (e.g. crypto); hard deps cannot cycle
		}
		rel, ok := idx.path[name]
		if !ok {
			return fmt.Errorf("module %q (needed by %s) is missing from %s", name, strings.Join(chain, " <- "), dir)
		}
		visiting[name] = true
		info, err := readModinfo(filepath.Join(dir, rel))
		if err != nil {
			return err
		}
		m := &Module{Name: name, Path: rel, Aliases: info.aliases, Firmware: info.firmware}
		for _, d := range info.depends {
			if idx.builtin[d] {
				continue
			}
			if err := visit(d, append(chain, name)); err != nil {
				return err
			}
			m.Deps = append(m.Deps, d)
		}
		for _, s := range info.softPre {
			// Soft dependencies name modules or aliases ("crypto-crc32c");
			// aliases keep their dashes, module names are normalized.
			target := kmod.Name(s)
			if _, ok := idx.path[target]; !ok {
				var err error
				if target, err = idx.resolveAlias(s); err != nil {
					return err
				}
				if target == "" {
					continue // soft: a missing one is fine
				}
			}
			if target == name || visiting[target] {
				continue
			}
			if err := visit(target, append(chain, name)); err != nil {
				return err
			}
			m.Deps = append(m.Deps, target)
		}
		visiting[name] = false
		done[name] = m
		set.Modules = append(set.Modules, m)
		return nil
	}

	var unknown []string
	want := func(n string, required bool) error {
		n = kmod.Name(n)
		if idx.builtin[n] {
			set.Builtin = append(set.Builtin, n)
			return nil
		}
		if _, ok := idx.path[n]; !ok {
			if required {
				unknown = append(unknown, n)
			}
			return nil
		}
		set.Requested = append(set.Requested, n)
		return visit(n, []string{"profile"})
	}
	for _, n := range names {
		if err := want(n, true); err != nil {
			return nil, err
		}
	}
	for _, n := range optional {
		if err := want(n, false); err != nil {
			return nil, err
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("kernel %s has no module %s (neither a .ko under %s nor in modules.builtin): check the names in host.kernel.modules",
			release, quoteList(unknown), dir)
	}
	return set, nil
}

// ModulesDep renders the set as a depmod-style modules.dep: each module's
// path, then the paths of everything it needs, deepest last, as modprobe
// and u-root's kmodule expect.
func (s *ModuleSet) ModulesDep() []byte {
	byName := map[string]*Module{}
	for _, m := range s.Modules {
		byName[m.Name] = m
	}
	var b bytes.Buffer
	for _, m := range s.Modules {
		var all []string
		seen := map[string]bool{}
		var walk func(*Module)
		walk = func(x *Module) {
			for _, d := range x.Deps {
				if seen[d] {
					continue
				}
				seen[d] = true
				all = append(all, s.depPath(byName[d]))
				walk(byName[d])
			}
		}
		walk(m)
		fmt.Fprintf(&b, "%s:", s.depPath(m))
		for _, p := range all {
			fmt.Fprintf(&b, " %s", p)
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// ModulesAlias renders the set's device aliases as depmod's modules.alias
// ("alias PATTERN MODULE" lines, sorted), which hostd matches against the
// modalias of each device the kernel reports.
func (s *ModuleSet) ModulesAlias() []byte {
	var lines []string
	for _, m := range s.Modules {
		for _, a := range m.Aliases {
			if strings.ContainsAny(a, " \t\n") {
				continue
			}
			lines = append(lines, "alias "+a+" "+m.Name)
		}
	}
	sort.Strings(lines)
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func quoteList(ns []string) string {
	q := make([]string, len(ns))
	for i, n := range ns {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

type moduleIndex struct {
	dir     string
	path    map[string]string // name -> relative path
	builtin map[string]bool
	aliases map[string]string // alias pattern -> name, loaded lazily
}

func indexModules(dir string) (*moduleIndex, error) {
	idx := &moduleIndex{dir: dir, path: map[string]string{}, builtin: map[string]bool{}}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if kmod.IsFile(d.Name()) {
			rel, _ := filepath.Rel(dir, p)
			idx.path[kmod.FileName(d.Name())] = filepath.ToSlash(rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index modules in %s: %w", dir, err)
	}
	if f, err := os.Open(filepath.Join(dir, "modules.builtin")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			idx.builtin[kmod.FileName(strings.TrimSpace(sc.Text()))] = true
		}
		f.Close()
	}
	return idx, nil
}

// resolveAlias finds a module providing alias (soft dependencies name
// aliases such as "crypto-crc32c" or "platform:idma64"). Reading a
// module's modinfo means decompressing it (Debian's 6.12 modules are
// .ko.xz: minutes for all of them), so the likely providers are read
// first: crypto modules for "crypto-", the module named after the bus
// for "bus:name". Only when none provides it is every module read, in
// parallel, once.
func (idx *moduleIndex) resolveAlias(alias string) (string, error) {
	provides := func(n string) (bool, error) {
		info, err := readModinfo(filepath.Join(idx.dir, idx.path[n]))
		if err != nil {
			return false, err
		}
		return slices.Contains(info.aliases, alias) || slices.Contains(info.aliases, "crypto-"+alias), nil
	}
	var likely []string
	if _, name, ok := strings.Cut(alias, ":"); ok {
		if _, ok := idx.path[kmod.Name(name)]; ok {
			likely = append(likely, kmod.Name(name))
		}
	}
	if strings.HasPrefix(alias, "crypto-") || !strings.Contains(alias, ":") {
		for n, p := range idx.path {
			if strings.HasPrefix(p, "kernel/crypto/") || strings.HasPrefix(p, "kernel/arch/x86/crypto/") {
				likely = append(likely, n)
			}
		}
	}
	sort.Strings(likely) // deterministic choice between providers
	for _, n := range likely {
		ok, err := provides(n)
		if err != nil {
			return "", err
		}
		if ok {
			return n, nil
		}
	}
	if err := idx.readAllAliases(); err != nil {
		return "", err
	}
	if n, ok := idx.aliases[alias]; ok {
		return n, nil
	}
	if n, ok := idx.aliases["crypto-"+alias]; ok {
		return n, nil
	}
	return "", nil
}

// readAllAliases reads every module's aliases, on every CPU.
func (idx *moduleIndex) readAllAliases() error {
	if idx.aliases != nil {
		return nil
	}
	names := make([]string, 0, len(idx.path))
	for n := range idx.path {
		names = append(names, n)
	}
	sort.Strings(names) // the first provider by name wins
	infos := make([]*modinfo, len(names))
	var g errgroup.Group
	g.SetLimit(runtime.NumCPU())
	for i, n := range names {
		g.Go(func() error {
			info, err := readModinfo(filepath.Join(idx.dir, idx.path[n]))
			infos[i] = info
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	idx.aliases = map[string]string{}
	for i, n := range names {
		for _, a := range infos[i].aliases {
			if _, ok := idx.aliases[a]; !ok {
				idx.aliases[a] = n
			}
		}
	}
	return nil
}

type modinfo struct {
	depends  []string
	softPre  []string
	aliases  []string
	firmware []string
}

// readModinfo reads the NUL-separated key=value strings of a module's
// .modinfo ELF section.
func readModinfo(path string) (*modinfo, error) {
	data, err := readModuleFile(path)
	if err != nil {
		return nil, fmt.Errorf("read module %s: %w", path, err)
	}
	ef, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("read module %s: %w", path, err)
	}
	sec := ef.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("module %s has no .modinfo section", path)
	}
	raw, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("read .modinfo of %s: %w", path, err)
	}
	info := &modinfo{}
	for _, kv := range bytes.Split(raw, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		if !ok {
			continue
		}
		switch k {
		case "depends":
			for _, d := range strings.Split(v, ",") {
				if d = strings.TrimSpace(d); d != "" {
					info.depends = append(info.depends, kmod.Name(d))
				}
			}
		case "softdep":
			// "pre: a b post: c"
			fields := strings.Fields(v)
			inPre := false
			for _, f := range fields {
				switch f {
				case "pre:":
					inPre = true
				case "post:":
					inPre = false
				default:
					if inPre {
						info.softPre = append(info.softPre, f)
					}
				}
			}
		case "alias":
			info.aliases = append(info.aliases, v)
		case "firmware":
			if v = strings.TrimSpace(v); v != "" {
				info.firmware = append(info.firmware, v)
			}
		}
	}
	return info, nil
}

func readModuleFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	switch {
	case strings.HasSuffix(path, ".xz"):
		// xi2/xz (xz-embedded in Go) decodes a module 20 times faster
		// than ulikunitz/xz: seconds, not minutes, for a laptop's drivers.
		xr, err := xz.NewReader(bufio.NewReader(f), 0)
		if err != nil {
			return nil, err
		}
		r = xr
	case strings.HasSuffix(path, ".zst"):
		zr, err := zstd.NewReader(f)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	}
	return io.ReadAll(r)
}

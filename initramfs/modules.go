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
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
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
		m := &Module{Name: name, Path: rel, Aliases: info.aliases}
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
			target := normalize(s)
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
		n = normalize(n)
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
				all = append(all, byName[d].Path)
				walk(byName[d])
			}
		}
		walk(m)
		fmt.Fprintf(&b, "%s:", m.Path)
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

func normalize(name string) string { return strings.ReplaceAll(name, "-", "_") }

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
		base := d.Name()
		for _, ext := range []string{".ko", ".ko.xz", ".ko.zst"} {
			if strings.HasSuffix(base, ext) {
				rel, _ := filepath.Rel(dir, p)
				idx.path[normalize(strings.TrimSuffix(base, ext))] = filepath.ToSlash(rel)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index modules in %s: %w", dir, err)
	}
	if f, err := os.Open(filepath.Join(dir, "modules.builtin")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			base := filepath.Base(strings.TrimSpace(sc.Text()))
			idx.builtin[normalize(strings.TrimSuffix(base, ".ko"))] = true
		}
		f.Close()
	}
	return idx, nil
}

// resolveAlias finds a module providing alias (soft dependencies name
// aliases such as "crc32c"). It reads every module's modinfo once.
func (idx *moduleIndex) resolveAlias(alias string) (string, error) {
	if idx.aliases == nil {
		idx.aliases = map[string]string{}
		names := make([]string, 0, len(idx.path))
		for n := range idx.path {
			names = append(names, n)
		}
		sort.Strings(names) // deterministic choice between providers
		for _, n := range names {
			info, err := readModinfo(filepath.Join(idx.dir, idx.path[n]))
			if err != nil {
				return "", err
			}
			for _, a := range info.aliases {
				if _, ok := idx.aliases[a]; !ok {
					idx.aliases[a] = n
				}
			}
		}
	}
	if n, ok := idx.aliases[alias]; ok {
		return n, nil
	}
	if n, ok := idx.aliases["crypto-"+alias]; ok {
		return n, nil
	}
	return "", nil
}

type modinfo struct {
	depends []string
	softPre []string
	aliases []string
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
					info.depends = append(info.depends, normalize(d))
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
		xr, err := xz.NewReader(f)
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

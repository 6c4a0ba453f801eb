package modules

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/thinhost/thinhost/internal/kmod"
)

// ModuleGraph is the dependency graph of modules.dep.
type ModuleGraph struct {
	// Path maps a module name to its path relative to the modules dir.
	Path map[string]string
	// Deps maps a module name to the names it needs loaded first. As in
	// depmod's format, the list is the whole closure, not just direct
	// dependencies.
	Deps map[string][]string
}

// ParseModulesDep reads depmod's modules.dep format.
func ParseModulesDep(r io.Reader) (*ModuleGraph, error) {
	g := &ModuleGraph{Path: map[string]string{}, Deps: map[string][]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		mod, deps, ok := strings.Cut(text, ":")
		if !ok {
			return nil, fmt.Errorf("parse modules.dep line %d: missing ':'", line)
		}
		name := kmod.FileName(mod)
		g.Path[name] = mod
		for _, d := range strings.Fields(deps) {
			g.Deps[name] = append(g.Deps[name], kmod.FileName(d))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read modules.dep: %w", err)
	}
	return g, nil
}

// Closure returns names and everything they depend on, dependencies first.
// Names not in the graph are returned in missing.
func (g *ModuleGraph) Closure(names []string) (order []string, missing []string) {
	seen := map[string]bool{}
	var visit func(string)
	visit = func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		deps := g.Deps[n]
		// depmod lists deepest dependencies last; load them first.
		for i := len(deps) - 1; i >= 0; i-- {
			visit(deps[i])
		}
		order = append(order, n)
	}
	for _, n := range names {
		n = kmod.Name(n)
		if _, ok := g.Path[n]; !ok {
			missing = append(missing, n)
			continue
		}
		visit(n)
	}
	return order, missing
}

// ModuleParams reads the options the kernel's command line gives
// loadable modules ("i915.enable_psr=0", "rfkill.default_state=0",
// `mod.p="a b"`): the kernel applies them to what is built in, modprobe to
// what it loads, and hostd loads the modules here. It maps a module's
// name (dashes as underscores) to its options as init_module takes them,
// in the command line's order. What follows "--" is init's.
func ModuleParams(cmdline string) map[string]string {
	out := map[string]string{}
	for _, tok := range cmdlineWords(cmdline) {
		if tok == "--" {
			break
		}
		key, value, hasValue := strings.Cut(tok, "=")
		mod, param, ok := strings.Cut(key, ".")
		if !ok || mod == "" || param == "" || strings.ContainsAny(mod, `/"`) {
			continue
		}
		mod = kmod.Name(mod)
		opt := param
		if hasValue {
			opt += "=" + value
		}
		if out[mod] != "" {
			out[mod] += " "
		}
		out[mod] += opt
	}
	return out
}

// cmdlineWords splits a kernel command line as the kernel does: at
// spaces outside double quotes, which stay in the word.
func cmdlineWords(s string) []string {
	var words []string
	var cur strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			cur.WriteRune(r)
		case !quoted && (r == ' ' || r == '\t' || r == '\n'):
			if cur.Len() > 0 {
				words = append(words, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		words = append(words, cur.String())
	}
	return words
}

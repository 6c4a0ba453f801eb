package modules

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/thinhost/thinhost/internal/kmod"
)

// ModprobePath is the image's modprobe (cmd/modprobe): hostd makes it the
// kernel's helper, which the kernel runs as "modprobe -q -- NAME" when a
// driver asks for another module by name or alias (iwlwifi for iwlmvm,
// a mount for "fs-vfat").
const ModprobePath = "/bbin/modprobe"

// Modprobe loads the modules args name (module names or aliases) with
// their dependencies, from the running kernel's modules directory under
// modulesRoot, and returns the exit status: 0 when every one loaded or
// was loaded before. Flags: -q (quiet: what the kernel passes), -a
// (accepted: every argument is a module anyway), "--".
func Modprobe(modulesRoot string, args []string, stderr io.Writer) int {
	quiet := false
	var names []string
	for i, a := range args {
		if a == "--" {
			names = append(names, args[i+1:]...)
			break
		}
		switch a {
		case "-q", "--quiet":
			quiet = true
		case "-a", "--all", "-b", "--use-blacklist":
		default:
			if strings.HasPrefix(a, "-") {
				fmt.Fprintf(stderr, "modprobe: option %s is not supported (this modprobe only loads modules)\n", a)
				return 2
			}
			names = append(names, a)
		}
	}
	if len(names) == 0 {
		fmt.Fprintln(stderr, "usage: modprobe [-q] [--] MODULE|ALIAS...")
		return 2
	}
	var log *slog.Logger
	if quiet {
		log = slog.New(slog.DiscardHandler)
	} else {
		log = slog.New(slog.NewTextHandler(stderr, nil))
	}
	rel, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		log.Error("read the kernel release", "err", err)
		return 1
	}
	l, err := NewLoader(log, filepath.Join(modulesRoot, strings.TrimSpace(string(rel))))
	if err != nil {
		log.Error("read the image's modules", "err", err)
		return 1
	}
	// The kernel asks only when it needs the module now: a file of the
	// system image not mounted yet fails like any missing file.
	l.systemUp = true
	status := 0
	for _, name := range names {
		targets := l.resolve(name)
		if len(targets) == 0 {
			log.Error("no module or alias in the image", "name", name)
			status = 1
			continue
		}
		loaded, tried := l.Load(context.Background(), "modprobe", targets)
		if loaded < tried {
			status = 1
		}
	}
	return status
}

// resolve turns a module name or an alias into module names.
func (l *Loader) resolve(name string) []string {
	if n := kmod.Name(name); l.graph.Path[n] != "" {
		return []string{n}
	}
	if l.aliases == nil {
		return nil
	}
	return l.aliases.Match(name)
}

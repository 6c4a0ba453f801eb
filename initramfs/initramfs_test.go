package initramfs

import (
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/mod/modfile"
)

// TestCoreCommandsAreTools: every command shipped must be a tool directive
// in go.mod (or mkuimage cannot find its source after go mod tidy), and
// every u-root tool directive must be shipped (or it is dead weight).
func TestCoreCommandsAreTools(t *testing.T) {
	data, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.Parse("go.mod", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	var tools []string
	for _, tl := range f.Tool {
		if name, ok := strings.CutPrefix(tl.Path, "github.com/u-root/u-root/cmds/core/"); ok {
			tools = append(tools, name)
		}
	}
	cmds := append([]string(nil), CoreCommands...)
	sort.Strings(cmds)
	sort.Strings(tools)
	if d := cmp.Diff(cmds, tools); d != "" {
		t.Errorf("CoreCommands (-) and go.mod tool directives (+) differ:\n%s\nfix with: go get -tool github.com/u-root/u-root/cmds/core/NAME@v0.16.0", d)
	}
}

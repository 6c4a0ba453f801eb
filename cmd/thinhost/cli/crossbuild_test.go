package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/thinhost/thinhost/internal/testenv"
)

// TestCrossBuild: thinhost builds for Windows and macOS, where it is
// validate and ctl (a Windows guest's own client to its host), so nothing
// Linux-only may creep into those commands' imports.
func TestCrossBuild(t *testing.T) {
	testenv.NeedE2E(t)
	for _, goos := range []string{"windows", "darwin"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(t.TempDir(), "thinhost-"+goos), "./cmd/thinhost")
		cmd.Dir = testenv.RepoRoot()
		cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("GOOS=%s go build ./cmd/thinhost: %v\n%s", goos, err, out)
		}
	}
}

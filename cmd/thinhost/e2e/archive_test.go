package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thinhost/thinhost/images/imagetest"
	"github.com/thinhost/thinhost/internal/testenv"
)

// hideBuildMachine is a shell prologue, run in a mount namespace of its
// own, that hides what the build machine has installed: dpkg's database
// and the directories and programs the system image used to be copied
// from.
const hideBuildMachine = `set -e
mount -t tmpfs tmpfs /var/lib/dpkg
for d in /usr/share/OVMF /usr/share/qemu /usr/share/seabios /usr/lib/ipxe /usr/lib/systemd/boot \
	/usr/lib/x86_64-linux-gnu/qemu /usr/lib/x86_64-linux-gnu/samba; do
	if [ -d "$d" ]; then mount -t tmpfs tmpfs "$d"; fi
done
for f in /usr/bin/qemu-system-x86_64 /usr/bin/qemu-img /usr/bin/swtpm /usr/sbin/smbd /usr/bin/smbpasswd \
	/sbin/mke2fs /sbin/e2fsck /sbin/resize2fs /sbin/tune2fs; do
	if [ -e "$f" ]; then mount --bind /dev/null "$f"; fi
done
test -z "$(ls /var/lib/dpkg)" && test ! -s /usr/sbin/smbd
`

// TestBuildHidesBuildMachine is the packages issue's acceptance: the
// example builds with the build machine's packages hidden (a tmpfs over
// dpkg's database, empty mounts over QEMU's, OVMF's, Samba's and
// systemd-boot's files, /dev/null over the programs), writes its lock
// file, and boots to ready; a second build from the same lock file, with
// everything visible again and offline, gives the same bytes.
func TestBuildHidesBuildMachine(t *testing.T) {
	testenv.NeedE2E(t)
	testenv.NeedRoot(t)
	unshare := testenv.NeedTool(t, "unshare")
	testenv.NeedTool(t, "qemu-system-x86_64")
	root := testenv.RepoRoot()
	lock := testCache(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "thinhost")
	build := exec.Command("go", "build", "-o", bin, "./cmd/thinhost")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	guest := bareGuest(t)
	args := func(img string) string {
		return strings.Join([]string{bin, "build", filepath.Join(root, "examples", "qemu-test.hcl"), "-o", img,
			"--lock", lock, guest[0], guest[1], "-var", "guest_autostart=false"}, " ")
	}
	hidden := filepath.Join(dir, "hidden.img")
	cmd := exec.Command(unshare, "--mount", "--propagation", "private", "sh", "-c", hideBuildMachine+args(hidden))
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("build with the build machine's packages hidden: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "packages  ") || !strings.Contains(string(out), lock) {
		t.Errorf("the hidden build does not say where its packages came from:\n%s", out)
	}
	if _, err := os.Stat(lock); err != nil {
		t.Fatalf("no lock file written: %v", err)
	}
	man := readManifest(t, hidden+".manifest.json")
	// Services carry their package's data files (hello's translations)
	// and the files they name from other packages (tzdata's zone).
	for _, want := range []string{`"package": "samba"`, `"package": "ovmf"`, `"package": "qemu-system-x86"`, `"package": "hello"`,
		`"path": "/usr/share/locale/de/LC_MESSAGES/hello.mo"`, `"path": "/usr/share/zoneinfo/Europe/Berlin"`} {
		if !strings.Contains(man, want) {
			t.Errorf("manifest lacks %s", want)
		}
	}

	again := filepath.Join(dir, "again.img")
	if stdout, stderr, code := runCLI(t, "build", filepath.Join(root, "examples", "qemu-test.hcl"), "-o", again, "--offline",
		"--lock", lock, guest[0], guest[1], "-var", "guest_autostart=false"); code != 0 {
		t.Fatalf("second build: exit %d\n%s%s", code, stdout, stderr)
	}
	if imagetest.Hash(t, hidden) != imagetest.Hash(t, again) {
		t.Error("two builds from one lock file differ (hidden build machine, then visible and offline)")
	}

	stdout, stderr, code := runCLI(t, "run", hidden, "--check")
	if code != 0 || !strings.Contains(stdout, "services: smbd running") {
		t.Fatalf("the image built from the archive alone: run --check exit %d\n%s%s", code, stdout, stderr)
	}
}

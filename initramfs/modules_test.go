package initramfs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/thinhost/thinhost/internal/testenv"
)

// makeModule compiles an ELF object whose .modinfo section holds the given
// key=value strings — what depmod and Closure read from a real .ko.
func makeModule(t *testing.T, gcc, dir, rel string, modinfo ...string) {
	t.Helper()
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	var lit strings.Builder
	for _, kv := range modinfo {
		fmt.Fprintf(&lit, "%q \"\\0\" ", kv)
	}
	if lit.Len() == 0 {
		lit.WriteString(`"license=GPL"`)
	}
	src := p + ".c"
	code := fmt.Sprintf("__attribute__((section(\".modinfo\"), used)) static const char modinfo[] = %s;\n", lit.String())
	if err := os.WriteFile(src, []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(gcc, "-c", "-o", p, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	os.Remove(src)
}

func fakeModules(t *testing.T) string {
	gcc := testenv.NeedTool(t, "gcc")
	dir := t.TempDir()
	makeModule(t, gcc, dir, "kernel/fs/ext4/ext4.ko", "depends=jbd2,mbcache,crc16", "softdep=pre: crypto-crc32c")
	makeModule(t, gcc, dir, "kernel/fs/jbd2/jbd2.ko", "depends=")
	makeModule(t, gcc, dir, "kernel/fs/mbcache.ko", "depends=")
	makeModule(t, gcc, dir, "kernel/lib/crc16.ko", "depends=")
	makeModule(t, gcc, dir, "kernel/arch/x86/crypto/crc32c-intel.ko", "alias=crypto-crc32c", "alias=crc32c-intel")
	makeModule(t, gcc, dir, "kernel/drivers/block/virtio_blk.ko", "depends=virtio,virtio_ring", "alias=virtio:d00000002v*")
	makeModule(t, gcc, dir, "kernel/drivers/virtio/virtio_ring.ko", "depends=")
	makeModule(t, gcc, dir, "kernel/drivers/virtio/virtio.ko", "depends=")
	makeModule(t, gcc, dir, "kernel/drivers/net/broken.ko", "depends=nonexistent")
	makeModule(t, gcc, dir, "kernel/drivers/unused/unused.ko", "depends=")
	makeModule(t, gcc, dir, "kernel/drivers/gpu/drm/i915/i915.ko", "depends=virtio_ring,drm", "alias=pci:v00008086d00009A49sv*sd*bc03sc*i*",
		"firmware=i915/tgl_dmc_ver2_12.bin", "firmware=i915/tgl_guc_70.bin")
	makeModule(t, gcc, dir, "kernel/drivers/gpu/drm/drm.ko", "depends=")
	os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte("kernel/fs/fat/vfat.ko\nkernel/drivers/acpi/button.ko\n"), 0o644)
	return dir
}

func names(ms []*Module) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

func TestClosure(t *testing.T) {
	dir := fakeModules(t)
	set, err := Closure(dir, "6.1.0-test", []string{"ext4", "virtio-blk", "vfat"}, []string{"button", "evdev"})
	if err != nil {
		t.Fatal(err)
	}
	got := names(set.Modules)
	want := []string{"jbd2", "mbcache", "crc16", "crc32c_intel", "ext4", "virtio", "virtio_ring", "virtio_blk"}
	if !cmp.Equal(got, want) {
		t.Errorf("closure = %v, want %v (dependencies first, unused modules left out)", got, want)
	}
	if !cmp.Equal(set.Requested, []string{"ext4", "virtio_blk"}) {
		t.Errorf("requested = %v", set.Requested)
	}
	if !cmp.Equal(set.Builtin, []string{"vfat", "button"}) {
		t.Errorf("builtin = %v (optional evdev is absent and must be skipped)", set.Builtin)
	}

	if alias := string(set.ModulesAlias()); alias != "alias crc32c-intel crc32c_intel\nalias crypto-crc32c crc32c_intel\nalias virtio:d00000002v* virtio_blk\n" {
		t.Errorf("modules.alias =\n%s", alias)
	}

	dep := string(set.ModulesDep())
	for _, line := range []string{
		"kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko kernel/fs/mbcache.ko kernel/lib/crc16.ko kernel/arch/x86/crypto/crc32c-intel.ko\n",
		"kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n",
		"kernel/fs/jbd2/jbd2.ko:\n",
	} {
		if !strings.Contains(dep, line) {
			t.Errorf("modules.dep lacks %q:\n%s", line, dep)
		}
	}
}

// TestMarkLate: modules outside the early closure go to the system image
// with absolute modules.dep paths; an early module's dependency stays
// early even when a late one needs it too; firmware= names are read.
func TestMarkLate(t *testing.T) {
	dir := fakeModules(t)
	set, err := Closure(dir, "6.1.0-test", []string{"virtio_blk"}, []string{"i915", "absent"})
	if err != nil {
		t.Fatal(err)
	}
	set.MarkLate([]string{"virtio_blk"}, "/system/lib/modules/6.1.0-test")
	late := map[string]bool{}
	for _, m := range set.Modules {
		late[m.Name] = m.Late
	}
	want := map[string]bool{"virtio": false, "virtio_ring": false, "virtio_blk": false, "drm": true, "i915": true}
	if !cmp.Equal(late, want) {
		t.Errorf("late = %v, want %v", late, want)
	}
	if fw := set.Module("i915").Firmware; !cmp.Equal(fw, []string{"i915/tgl_dmc_ver2_12.bin", "i915/tgl_guc_70.bin"}) {
		t.Errorf("i915 firmware = %v", fw)
	}
	dep := string(set.ModulesDep())
	line := "/system/lib/modules/6.1.0-test/kernel/drivers/gpu/drm/i915/i915.ko: kernel/drivers/virtio/virtio_ring.ko /system/lib/modules/6.1.0-test/kernel/drivers/gpu/drm/drm.ko\n"
	if !strings.Contains(dep, line) {
		t.Errorf("modules.dep lacks %q:\n%s", line, dep)
	}
	if !strings.Contains(string(set.ModulesAlias()), "alias pci:v00008086d00009A49sv*sd*bc03sc*i* i915\n") {
		t.Errorf("modules.alias lacks the late module's alias:\n%s", set.ModulesAlias())
	}
	// Packed: the initramfs's modules are .zst files; the system image's
	// stay as they were.
	set.PackEarly()
	dep = string(set.ModulesDep())
	line = "/system/lib/modules/6.1.0-test/kernel/drivers/gpu/drm/i915/i915.ko: kernel/drivers/virtio/virtio_ring.ko.zst /system/lib/modules/6.1.0-test/kernel/drivers/gpu/drm/drm.ko\n"
	if !strings.Contains(dep, line) {
		t.Errorf("packed modules.dep lacks %q:\n%s", line, dep)
	}
}

// TestPackEarly: the initramfs's modules are packed but for those that
// load at every boot (the profile's that drive no device, and what they
// need); a device's driver and its own dependencies are packed.
func TestPackEarly(t *testing.T) {
	dir := fakeModules(t)
	set, err := Closure(dir, "6.1.0-test", []string{"ext4", "virtio_blk"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	set.PackEarly()
	packed := map[string]bool{}
	for _, m := range set.Modules {
		packed[m.Name] = m.Packed
	}
	want := map[string]bool{"ext4": false, "jbd2": false, "mbcache": false, "crc16": false, "crc32c_intel": false,
		"virtio_blk": true, "virtio": true, "virtio_ring": true}
	if !cmp.Equal(packed, want) {
		t.Errorf("packed = %v, want %v", packed, want)
	}
}

func TestClosureErrors(t *testing.T) {
	dir := fakeModules(t)
	_, err := Closure(dir, "6.1.0-test", []string{"ext4", "nvmee", "wifi"}, nil)
	if err == nil || !strings.Contains(err.Error(), `"nvmee", "wifi"`) || !strings.Contains(err.Error(), "host.kernel.modules") {
		t.Errorf("unknown modules: %v", err)
	}
	_, err = Closure(dir, "6.1.0-test", []string{"broken"}, nil)
	if err == nil || !strings.Contains(err.Error(), `"nonexistent" (needed by profile <- broken)`) {
		t.Errorf("missing dependency: %v", err)
	}
}

package modules

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const modulesDep = `kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko kernel/fs/mbcache.ko kernel/lib/crc16.ko
kernel/fs/jbd2/jbd2.ko:
kernel/fs/mbcache.ko:
kernel/lib/crc16.ko:
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko: kernel/drivers/virtio/virtio.ko
kernel/drivers/virtio/virtio.ko:
kernel/arch/x86/kvm/kvm-intel.ko.xz: kernel/arch/x86/kvm/kvm.ko.xz
kernel/arch/x86/kvm/kvm.ko.xz:
`

func TestModuleGraph(t *testing.T) {
	g, err := ParseModulesDep(strings.NewReader(modulesDep))
	if err != nil {
		t.Fatal(err)
	}
	if g.Path["kvm_intel"] != "kernel/arch/x86/kvm/kvm-intel.ko.xz" {
		t.Errorf("names are normalized: %v", g.Path)
	}
	order, missing := g.Closure([]string{"virtio-blk", "ext4", "kvm_intel", "nvme"})
	pos := map[string]int{}
	for i, n := range order {
		pos[n] = i
	}
	for mod, deps := range g.Deps {
		if _, in := pos[mod]; !in {
			continue
		}
		for _, d := range deps {
			if pos[d] > pos[mod] {
				t.Errorf("%s comes before its dependency %s in %v", mod, d, order)
			}
		}
	}
	if len(order) != 9 || !cmp.Equal(missing, []string{"nvme"}) {
		t.Errorf("order %v, missing %v", order, missing)
	}
	if _, err := ParseModulesDep(strings.NewReader("no colon here\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("bad line: %v", err)
	}
}

func TestLoadParallel(t *testing.T) {
	g, _ := ParseModulesDep(strings.NewReader(modulesDep))
	order, _ := g.Closure([]string{"ext4", "virtio_blk"})

	var mu sync.Mutex
	loaded := map[string]bool{}
	// ext4's and virtio_blk's chains are independent: jbd2 waits until
	// virtio has started, which only happens if loads run side by side.
	virtioStarted := make(chan struct{})
	load := func(ctx context.Context, name, rel string) error {
		if name == "virtio" {
			close(virtioStarted)
		}
		if name == "jbd2" {
			select {
			case <-virtioStarted:
			case <-time.After(10 * time.Second):
				return errors.New("virtio never started while jbd2 loaded: loads are not parallel")
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for _, d := range g.Deps[name] {
			if !loaded[d] {
				return fmt.Errorf("%s loaded before its dependency %s", name, d)
			}
		}
		if name == "crc16" {
			return errors.New("crc16: bad module")
		}
		loaded[name] = true
		return nil
	}
	results := LoadParallel(context.Background(), g, order, load)
	byName := map[string]error{}
	for _, r := range results {
		byName[r.Name] = r.Err
	}
	for _, ok := range []string{"jbd2", "mbcache", "virtio", "virtio_ring", "virtio_blk"} {
		if byName[ok] != nil {
			t.Errorf("%s: %v", ok, byName[ok])
		}
	}
	if !errors.Is(byName["ext4"], ErrDependency) || !strings.Contains(byName["ext4"].Error(), "crc16") {
		t.Errorf("ext4 must be skipped naming its failed dependency: %v", byName["ext4"])
	}
	if loaded["ext4"] {
		t.Error("ext4 was loaded although crc16 failed")
	}
}

// TestModuleParams: the command line's module options, as the kernel
// splits it: quotes keep spaces, dashes in a module's name are
// underscores, a flag without a value stays one, what is not a module's
// option (no dot, a path, init's after "--") is left.
func TestModuleParams(t *testing.T) {
	got := ModuleParams(`BOOT_IMAGE=/vmlinuz root=/dev/x quiet i915.enable_psr=0 rfkill.default_state=0 snd-hda-intel.model=dell-headset-multi ` +
		`i915.enable_guc=3 mod.flag my.p="a b c" init=/sbin/init ./x.y=1 .a=b c.=d -- after.x=1` + "\n")
	want := map[string]string{"i915": "enable_psr=0 enable_guc=3", "rfkill": "default_state=0", "snd_hda_intel": "model=dell-headset-multi",
		"mod": "flag", "my": `p="a b c"`}
	if len(got) != len(want) {
		t.Errorf("ModuleParams = %q, want %q", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("ModuleParams[%q] = %q, want %q", k, got[k], v)
		}
	}
}

func FuzzModuleParams(f *testing.F) {
	f.Add(`quiet i915.enable_psr=0 my.p="a b" -- x.y=1`)
	f.Fuzz(func(t *testing.T, s string) {
		for mod, opts := range ModuleParams(s) {
			if mod == "" || opts == "" || strings.ContainsAny(mod, "-/\" \t\n") {
				t.Fatalf("module %q options %q from %q", mod, opts, s)
			}
		}
	})
}

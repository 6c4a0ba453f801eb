package hostd

import "testing"

func TestMinFreeFor(t *testing.T) {
	for _, c := range []struct {
		cur, kernel int64
		cmdline     string
		want        int64
		ok          bool
	}{
		{45056, 3949, "console=ttyS0 quiet", 3949, true},
		{3949, 3949, "quiet", 3949, false},
		{2048, 3949, "quiet", 2048, false},
		{45056, 3949, "quiet sysctl.vm.min_free_kbytes=45056", 45056, false},
		{65536, 3949, "sysctl.vm/min_free_kbytes=65536", 65536, false},
		{45056, 3949, "xsysctl.vm.min_free_kbytes=1", 3949, true},
	} {
		got, ok := minFreeFor(c.cur, c.kernel, c.cmdline)
		if got != c.want || ok != c.ok {
			t.Errorf("minFreeFor(%d, %d, %q) = %d, %v; want %d, %v", c.cur, c.kernel, c.cmdline, got, ok, c.want, c.ok)
		}
	}
}

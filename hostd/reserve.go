package hostd

import "strings"

// minFreeFor decides the kernel's min_free_kbytes: the kernel's own
// figure (kernel, sysmem.KernelMinFree) where transparent huge pages
// raised it (cur, what the kernel has now), unless the command line sets
// it itself (sysctl.vm.min_free_kbytes=, which the kernel applied). ok
// is false when it stays as it is.
//
// khugepaged raises it so that, on average, two 2 MiB blocks per zone
// and migration type stay free: on the 1 GiB test host from 4 to
// 44 MiB, which with the watermarks above it kept 69 MiB from every
// program, the guests included; on a 16 GiB laptop from 16 to 66 MiB.
// That heuristic predates the kernel's proactive compaction
// (vm.compaction_proactiveness), which keeps memory defragmented in the
// background, and it guards against unmovable kernel allocations
// scattering over memory, of which this host makes few. The guests'
// memory, the only large user of huge pages here, is allocated when a
// guest starts and compacted for on demand (defrag "madvise"); `ctl
// status` shows how much of each guest's memory is in huge pages.
func minFreeFor(cur, kernel int64, cmdline string) (int64, bool) {
	for _, w := range strings.Fields(cmdline) {
		if strings.HasPrefix(w, "sysctl.vm.min_free_kbytes=") || strings.HasPrefix(w, "sysctl.vm/min_free_kbytes=") {
			return cur, false
		}
	}
	if cur <= kernel {
		return cur, false
	}
	return kernel, true
}

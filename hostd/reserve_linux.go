package hostd

import (
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/thinhost/thinhost/internal/sysmem"
)

const minFreeFile = "/proc/sys/vm/min_free_kbytes"

// relaxReserve gives back the memory transparent huge pages made the
// kernel keep free (minFreeFor).
func relaxReserve(log *slog.Logger) {
	info, err := sysmem.Read()
	if err != nil || info.Total == 0 {
		log.Warn("memory kept free by the kernel: left as it is", "err", err)
		return
	}
	b, err := os.ReadFile(minFreeFile)
	if err != nil {
		log.Warn("memory kept free by the kernel: left as it is", "err", err)
		return
	}
	cur, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		log.Warn("memory kept free by the kernel: left as it is", "file", minFreeFile, "err", err)
		return
	}
	cmdline, _ := os.ReadFile("/proc/cmdline")
	want, ok := minFreeFor(cur, sysmem.KernelMinFree(info.Total), string(cmdline))
	if !ok {
		return
	}
	if err := os.WriteFile(minFreeFile, []byte(strconv.FormatInt(want, 10)), 0o644); err != nil {
		log.Warn("memory kept free by the kernel: left as it is", "file", minFreeFile, "err", err)
		return
	}
	log.Info("memory kept free by the kernel: its own figure, not the one raised for transparent huge pages", "min_free_kib", want, "was_kib", cur)
}

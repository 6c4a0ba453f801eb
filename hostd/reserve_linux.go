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
	want, was, err := setMinFree()
	switch {
	case err != nil:
		log.Warn("memory kept free by the kernel: left as it is", "file", minFreeFile, "err", err)
	case want != was:
		log.Info("memory kept free by the kernel: its own figure, not the one raised for transparent huge pages", "min_free_kib", want, "was_kib", was)
	}
}

// setMinFree writes minFreeFor's figure to minFreeFile where it differs,
// and returns it with the one before (KiB).
func setMinFree() (want, was int64, err error) {
	info, err := sysmem.Read()
	if err != nil {
		return 0, 0, err
	}
	b, err := os.ReadFile(minFreeFile)
	if err != nil {
		return 0, 0, err
	}
	was, err = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, 0, err
	}
	if info.Total == 0 {
		return was, was, nil // no MemTotal: nothing to go by
	}
	cmdline, _ := os.ReadFile("/proc/cmdline")
	want, ok := minFreeFor(was, sysmem.KernelMinFree(info.Total), string(cmdline))
	if !ok {
		return was, was, nil
	}
	if err := os.WriteFile(minFreeFile, []byte(strconv.FormatInt(want, 10)), 0o644); err != nil {
		return was, was, err
	}
	return want, was, nil
}

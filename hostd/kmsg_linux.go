package hostd

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/thinhost/thinhost/hostd/storage"
	"golang.org/x/sys/unix"
)

// kmsgRecordMax is the longest record /dev/kmsg gives in one read.
const kmsgRecordMax = 8192

// startKernelWatch reads the kernel's log from its start (what happened
// before hostd ran counts too) into w, saying each new problem on the
// console, then follows it while the host runs. The records already there
// are read before it returns, so the ready line's health has them.
func startKernelWatch(log *slog.Logger, console io.Writer, w *KernelWatch) {
	// A raw descriptor: os.File would hand it to the runtime's poller,
	// and its Fd makes it blocking again.
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		log.Warn("the kernel's log is not watched: its errors stay out of the host's health", "err", err)
		return
	}
	buf := make([]byte, kmsgRecordMax)
	read := func() (bool, error) {
		n, err := unix.Read(fd, buf)
		switch {
		case errors.Is(err, unix.EPIPE):
			// Records were overwritten before they were read: go on
			// with the oldest left.
			return true, nil
		case err != nil:
			return false, err
		}
		if r, ok := ParseKmsg(buf[:n]); ok {
			if line := w.Observe(r); line != "" {
				fmt.Fprintln(console, line)
				log.Warn("kernel", "problem", line, "message", r.Message)
			}
		}
		return true, nil
	}
	for {
		if ok, err := read(); !ok {
			if !errors.Is(err, unix.EAGAIN) {
				log.Warn("read the kernel's log", "err", err)
				unix.Close(fd)
				return
			}
			break
		}
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		log.Warn("follow the kernel's log", "err", err)
		unix.Close(fd)
		return
	}
	go func() {
		defer unix.Close(fd)
		for {
			if ok, err := read(); !ok {
				log.Warn("read the kernel's log", "err", err)
				return
			}
		}
	}()
}

// kernelDeviceName is the kernel's name ("vda4", "dm-0") of the block
// device the filesystem at dir is on: the name its messages use.
func kernelDeviceName(dir string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return "", fmt.Errorf("stat %s: %w", dir, err)
	}
	link, err := os.Readlink(fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev)))
	if err != nil {
		return "", fmt.Errorf("find the device of %s: %w", dir, err)
	}
	return filepath.Base(link), nil
}

// syncData flushes the data partition's filesystem.
func syncData(log *slog.Logger) {
	fd, err := unix.Open(storage.DataDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err == nil {
		err = unix.Syncfs(fd)
		unix.Close(fd)
	}
	if err != nil {
		log.Warn("flush the data partition after its error", "err", err)
		return
	}
	log.Info("data partition flushed after its error")
}

// Command minimalimg writes a disk image that boots a given kernel and
// initramfs through systemd-boot under UEFI, with thinhost's own image
// writer and nothing else of thinhost: bench/foundation.sh boots it
// beside a thinhost image, so the difference is thinhost's own cost and
// not the firmware's or the loader's.
//
//	go run ./bench/minimalimg -loader systemd-bootx64.efi -kernel vmlinuz -initrd minimal.cpio -cmdline "console=ttyS0" -o minimal.img
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/thinhost/thinhost/images"
)

func main() {
	loader := flag.String("loader", "", "systemd-boot's EFI binary")
	kernel := flag.String("kernel", "", "the kernel")
	initrd := flag.String("initrd", "", "the initramfs")
	cmdline := flag.String("cmdline", "console=ttyS0,115200", "the kernel command line")
	out := flag.String("o", "minimal.img", "the image to write")
	flag.Parse()
	if *loader == "" || *kernel == "" || *initrd == "" {
		fmt.Fprintln(os.Stderr, "minimalimg: -loader, -kernel and -initrd are needed")
		os.Exit(2)
	}
	if err := write(*out, images.Boot{Bootloader: *loader, Kernel: *kernel, Initrd: *initrd, Cmdline: *cmdline, Title: "minimal", Build: "bench"}); err != nil {
		fmt.Fprintln(os.Stderr, "minimalimg:", err)
		os.Exit(1)
	}
}

func write(path string, boot images.Boot) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = images.Write(context.Background(), f, images.Config{
		Sizes: images.Sizes{Image: 1 << 30, ESP: 256 << 20, System: 128 << 20, Data: 0},
		Boot:  boot,
		Seed:  []byte("thinhost bench minimal image"),
		Log:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

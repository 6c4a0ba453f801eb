// Command mkguest builds the test guest's initramfs that
// examples/qemu-test.hcl boots as its vm "guest":
//
//	go run ./internal/testguest/mkguest -kernel examples/kernel/linux-image-amd64.deb -o examples/kernel/guest-initrd.cpio
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/thinhost/thinhost/builder"
	"github.com/thinhost/thinhost/internal/testguest"
)

func main() {
	kernel := flag.String("kernel", "examples/kernel/linux-image-amd64.deb", "Debian linux-image package")
	out := flag.String("o", "examples/kernel/guest-initrd.cpio", "initramfs to write")
	flag.Parse()
	cache, err := builder.DefaultCacheDir()
	if err == nil {
		var wd string
		wd, err = os.Getwd()
		if err == nil {
			err = testguest.Build(context.Background(), wd, cache, *kernel, *out)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkguest:", err)
		os.Exit(1)
	}
	fmt.Println("wrote", *out)
}

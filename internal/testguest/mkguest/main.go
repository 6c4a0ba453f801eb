// Command mkguest builds the test guest's initramfs that
// examples/qemu-test.hcl boots as its vm "guest", with the modules of the
// kernel that profile's lock file pins (the guest boots the host's
// kernel):
//
//	go run ./internal/testguest/mkguest -o examples/guest-initrd.cpio
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
	lock := flag.String("lock", "", "lock file of "+testguest.Profile+" (default: the one beside it)")
	out := flag.String("o", "examples/guest-initrd.cpio", "initramfs to write")
	offline := flag.Bool("offline", false, "use only the cache")
	flag.Parse()
	if err := run(*lock, *out, *offline); err != nil {
		fmt.Fprintln(os.Stderr, "mkguest:", err)
		os.Exit(1)
	}
	fmt.Println("wrote", *out)
}

func run(lock, out string, offline bool) error {
	ctx := context.Background()
	cache, err := builder.DefaultCacheDir()
	if err != nil {
		return err
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	k, err := testguest.Kernel(ctx, wd, cache, lock, offline)
	if err != nil {
		return err
	}
	return testguest.Build(ctx, wd, k, out)
}

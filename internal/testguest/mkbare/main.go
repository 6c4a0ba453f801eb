// Command mkbare builds the bare test guest (a multiboot kernel of a few
// KiB; testguest.BuildBare) for examples/qemu-test.hcl's test_guest
// variable and the benchmarks:
//
//	go run ./internal/testguest/mkbare -o bare-guest.elf
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/thinhost/thinhost/internal/testenv"
	"github.com/thinhost/thinhost/internal/testguest"
)

func main() {
	out := flag.String("o", "bare-guest.elf", "where to write the kernel")
	flag.Parse()
	if err := testguest.BuildBare(context.Background(), testenv.RepoRoot(), *out); err != nil {
		fmt.Fprintln(os.Stderr, "mkbare:", err)
		os.Exit(1)
	}
	fmt.Println(*out)
}

// Command thinhost builds, runs and flashes thinhost images. All of its
// logic lives in package cli, so tests drive the real CLI in-process.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/thinhost/thinhost/cmd/thinhost/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

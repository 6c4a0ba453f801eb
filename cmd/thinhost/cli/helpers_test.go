package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// runCLI runs the CLI as its main does, with no input, and returns what
// it printed and its exit code. (The E2E suite has its own, whose
// buffers take QEMU's concurrent writes.)
func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

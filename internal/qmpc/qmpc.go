// Package qmpc runs one QMP command on a QEMU's control socket: what both
// `thinhost run` and hostd's guest manager need of QMP.
package qmpc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

// Run connects to the QMP socket, runs command with args (nil: none) and
// returns QEMU's raw answer. A connection QEMU closes while answering
// (as "quit" does) is not an error.
func Run(sock, command string, args map[string]any) ([]byte, error) {
	mon, err := qmp.NewSocketMonitor("unix", sock, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("connect to QMP %s: %w", sock, err)
	}
	if err := mon.Connect(); err != nil {
		return nil, fmt.Errorf("connect to QMP %s: %w", sock, err)
	}
	defer mon.Disconnect()
	req := map[string]any{"execute": command}
	if args != nil {
		req["arguments"] = args
	}
	cmd, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	out, err := mon.Run(cmd)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("QMP %s: %w", command, err)
	}
	return out, nil
}

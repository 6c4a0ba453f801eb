package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/thinhost/thinhost/hostd/api"
)

// wifiCmd is `ctl wifi`: the host's wireless link.
func wifiCmd(e *env, client func() *api.Client) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "wifi [status|scan|connect NETWORK|forget NETWORK]",
		Short: "Show the host's Wi-Fi, scan, or join a network",
		Long: `wifi shows the host's wireless link: the network joined, its address, the
networks the host knows and what went wrong with each (a refused passphrase).

  wifi scan                 the networks in range, strongest first
  wifi connect NETWORK      join one of the host's networks (by name or SSID) now
  wifi connect SSID --passphrase-stdin
                            join a network the host does not know, or give a
                            known one a new passphrase; the host keeps it on
                            its data partition (an open network the last scan
                            saw needs no passphrase)
  wifi forget SSID          forget a network wifi connect added, with its
                            passphrase (the profile's stay: edit the profile)

The passphrase is read from standard input (a line), never from the command
line, which every user of the machine sees.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			w, err := client().Wifi(cmd.Context())
			if err != nil {
				return fmt.Errorf("wifi: %w", err)
			}
			printWifi(e.stdout, w)
			return nil
		},
	}
	status := &cobra.Command{Use: "status", Short: "The link and the networks (the default)", Args: cobra.NoArgs, RunE: cmd.RunE}
	scan := &cobra.Command{
		Use: "scan", Short: "Scan for networks in range", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			found, err := client().WifiScan(cmd.Context())
			if err != nil {
				return fmt.Errorf("wifi scan: %w", err)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "SSID\tSIGNAL\tMHZ\tSECURITY\tBSSID\tKNOWN AS")
			for _, b := range found {
				ssid := b.SSID
				if ssid == "" {
					ssid = "(hidden)"
				}
				fmt.Fprintf(tw, "%q\t%d dBm\t%d\t%s\t%s\t%s\n", ssid, b.Signal, b.Frequency, b.Security, b.BSSID, dash(plainName(b.Known)))
			}
			return tw.Flush()
		},
	}
	var fromStdin bool
	var wait time.Duration
	connect := &cobra.Command{
		Use: "connect NETWORK", Short: "Join a network now", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.WifiConnect{Network: args[0]}
			if fromStdin {
				line, err := bufio.NewReader(e.stdin).ReadString('\n')
				if err != nil && !errors.Is(err, io.EOF) {
					return fmt.Errorf("read the passphrase from standard input: %w", err)
				}
				req.Passphrase = strings.TrimRight(line, "\r\n")
				if req.Passphrase == "" {
					return errors.New("read the passphrase from standard input: it is empty")
				}
			}
			c := client()
			msg, err := c.WifiConnect(cmd.Context(), req)
			if err != nil {
				return fmt.Errorf("wifi connect %s: %w", args[0], err)
			}
			fmt.Fprintln(e.stdout, msg)
			return waitJoined(cmd.Context(), c, args[0], wait, e.stdout)
		},
	}
	forget := &cobra.Command{
		Use: "forget NETWORK", Short: "Forget a network wifi connect added, and its passphrase", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			msg, err := client().WifiForget(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("wifi forget %s: %w", args[0], err)
			}
			fmt.Fprintln(e.stdout, msg)
			return nil
		},
	}
	connect.Flags().BoolVar(&fromStdin, "passphrase-stdin", false, "read the network's passphrase from standard input")
	connect.Flags().DurationVar(&wait, "wait", 45*time.Second, "how long to wait for the network and an address (0: do not wait)")
	cmd.AddCommand(status, scan, connect, forget)
	return cmd
}

// waitJoined polls the link until it holds network with an address, or
// the network's passphrase was refused, or wait passes.
func waitJoined(ctx context.Context, c *api.Client, network string, wait time.Duration, out io.Writer) error {
	if wait <= 0 {
		return nil
	}
	deadline := time.Now().Add(wait)
	for {
		w, err := c.Wifi(ctx)
		if err != nil {
			return err
		}
		for _, n := range w.Networks {
			if (n.Name == network || n.SSID == network) && strings.Contains(n.Problem, "refused") {
				return fmt.Errorf("wifi connect %s: %s", network, n.Problem)
			}
		}
		if w.Connected && joinedAs(w, network) && len(w.Addresses) > 0 {
			fmt.Fprintf(out, "joined %q on %s: %s\n", w.SSID, w.Interface, strings.Join(w.Addresses, ", "))
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("wifi connect %s: not joined after %s (state %s): thinhost ctl wifi shows more", network, wait, dash(w.State))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// joinedAs reports whether w's link holds network (a name or an SSID):
// by the network's name where the host says it (two networks may share an
// SSID), else by the SSID.
func joinedAs(w *api.Wifi, network string) bool {
	if w.Network != "" {
		// An SSID given counts unless it is also another network's name.
		return w.Network == network || (w.SSID == network && !hasName(w, network))
	}
	return w.SSID == network || nameOf(w, w.SSID) == network
}

// hasName reports whether one of w's networks is named name.
func hasName(w *api.Wifi, name string) bool {
	for _, n := range w.Networks {
		if n.Name == name {
			return true
		}
	}
	return false
}

// nameOf is the name of w's network with ssid, or "".
func nameOf(w *api.Wifi, ssid string) string {
	for _, n := range w.Networks {
		if n.SSID == ssid {
			return n.Name
		}
	}
	return ""
}

// printWifiLine is ctl status's line: the link alone.
func printWifiLine(out io.Writer, w *api.Wifi) {
	switch {
	case w.Connected:
		fmt.Fprintf(out, "wifi      %s joined %q (%s, %d MHz, %d dBm): %s\n", w.Interface, w.SSID, w.BSSID, w.Frequency, w.Signal, dash(strings.Join(w.Addresses, ", ")))
	case w.Interface != "":
		fmt.Fprintf(out, "wifi      %s not joined (%s)\n", w.Interface, strings.ToLower(dash(w.State)))
	default:
		fmt.Fprintln(out, "wifi      no interface")
	}
	if w.Problem != "" {
		fmt.Fprintf(out, "          %s\n", w.Problem)
	}
}

func printWifi(out io.Writer, w *api.Wifi) {
	printWifiLine(out, w)
	if len(w.Networks) == 0 {
		return
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NETWORK\tSSID\tSECURITY\tPRIORITY\tPROBLEM")
	for _, n := range w.Networks {
		name := plainName(n.Name)
		if n.Added {
			name += " (added)"
		}
		if n.Hidden {
			name += " (hidden)"
		}
		fmt.Fprintf(tw, "%s\t%q\t%s\t%d\t%s\n", name, n.SSID, n.Security, n.Priority, dash(n.Problem))
	}
	tw.Flush()
}

// plainName is a network's name as the terminal shows it: a profile's
// name as it is, an SSID (an added network's name, which any access point
// in range chooses) quoted, so no control character reaches the terminal.
func plainName(s string) string {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return strconv.Quote(s)
		}
	}
	return s
}

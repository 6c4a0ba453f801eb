package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/thinhost/thinhost/hostd/api"
	"github.com/thinhost/thinhost/images"
	"github.com/thinhost/thinhost/images/layout"

	"github.com/thinhost/thinhost/internal/units"
)

func ctlCmd(e *env) *cobra.Command {
	var addr, token, tokenFile, fingerprint string
	client := func() *api.Client {
		if token == "" {
			token = os.Getenv("THINHOST_TOKEN")
		}
		c := api.NewClient(addr, token)
		if fingerprint != "" {
			// Checked in PersistentPreRunE.
			c, _ = c.WithFingerprint(fingerprint)
		}
		return c
	}
	cmd := &cobra.Command{
		Use:   "ctl --addr HOST:PORT --token TOKEN status|logs|poweroff|reboot|suspend|restart|shares|vm|wifi|update",
		Short: "Talk to a running host's management API",
		Long: `ctl talks to hostd's management API: over TCP (the guest side, or a
forward such as thinhost run IMAGE --forward 8484:8484) with the host's token,
or over the unix socket /run/hostd.sock inside the host.

The token is the profile's api_token, or the one hostd generated on first
boot: /data/state/api-token on the host. Give it with --token-file or
THINHOST_TOKEN rather than --token, which every user of this machine sees
in the process list.

With api_on_host_network, the host's network (and a forward from run, which
arrives there) gets HTTPS alone, with a certificate the host made itself on
first boot. Its fingerprint is on the host's console ("api on ... certificate
sha256 AB:CD:...") and in ctl status; give it with --fingerprint or
THINHOST_FINGERPRINT, and ctl accepts that certificate and no other.

Run from a Windows guest's THINHOST drive, thinhost.exe finds the API's
address and the guest's own token in thinhost.json beside it: that token
reads the host's status and shares, and stops, snapshots or resets that
guest alone.`,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("addr") {
				if gc, ok := besideProgram(); ok {
					addr = gc.Addr
					if token == "" && tokenFile == "" && os.Getenv("THINHOST_TOKEN") == "" {
						token = gc.Token
					}
				}
			}
			if fingerprint == "" {
				fingerprint = os.Getenv("THINHOST_FINGERPRINT")
			}
			if fingerprint != "" {
				if _, err := api.NewClient(addr, "").WithFingerprint(fingerprint); err != nil {
					return fmt.Errorf("--fingerprint: %w", err)
				}
			}
			if tokenFile == "" {
				return nil
			}
			b, err := os.ReadFile(tokenFile)
			if err != nil {
				return fmt.Errorf("read the API token: %w", err)
			}
			token = strings.TrimSpace(string(b))
			return nil
		},
	}
	cmd.PersistentFlags().StringVar(&addr, "addr", "127.0.0.1:8484", "HOST:PORT of the API, or the path of its unix socket")
	cmd.PersistentFlags().StringVar(&token, "token", "", "API token (default $THINHOST_TOKEN; prefer that or --token-file: argv is public)")
	cmd.PersistentFlags().StringVar(&tokenFile, "token-file", "", "read the API token from this file")
	cmd.PersistentFlags().StringVar(&fingerprint, "fingerprint", "", "speak HTTPS and accept only the host certificate with this SHA-256 (default $THINHOST_FINGERPRINT)")

	status := &cobra.Command{
		Use: "status", Short: "Show uptime, memory, the data partition and services", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := client().Status(cmd.Context())
			if err != nil {
				return fmt.Errorf("status of %s: %w", addr, err)
			}
			fmt.Fprintf(e.stdout, "host      %s, up %.0fs\n", st.Hostname, st.Uptime)
			fmt.Fprintf(e.stdout, "memory    %s available of %s (hostd: %s)\n", units.Bytes(st.Memory.Available), units.Bytes(st.Memory.Total), units.Bytes(st.Memory.Hostd))
			if l := memoryUse(st.Memory); l != "" {
				fmt.Fprintf(e.stdout, "          in use: %s\n", l)
			}
			if len(st.Load) == 3 {
				fmt.Fprintf(e.stdout, "cpu       %d, load %.2f %.2f %.2f\n", st.CPUs, st.Load[0], st.Load[1], st.Load[2])
			}
			for _, tm := range st.Temperatures {
				crit := ""
				if tm.Critical > 0 {
					crit = fmt.Sprintf(" (critical %.0f °C)", tm.Critical)
				}
				fmt.Fprintf(e.stdout, "temp      %s %.0f °C%s\n", tm.Name, tm.Celsius, crit)
			}
			if st.SecureBoot != "" {
				fmt.Fprintf(e.stdout, "secure    %s\n", st.SecureBoot)
			}
			if st.APIFingerprint != "" {
				fmt.Fprintf(e.stdout, "api       https on the host's network, certificate sha256 %s\n", st.APIFingerprint)
			}
			if st.Power != nil {
				fmt.Fprintf(e.stdout, "power     %s\n", st.Power.Line())
			}
			if st.Wifi != nil {
				printWifiLine(e.stdout, st.Wifi)
			}
			if len(st.Problems) == 0 {
				fmt.Fprintln(e.stdout, "health    ok")
			} else {
				fmt.Fprintln(e.stdout, "health    DEGRADED")
				for _, p := range st.Problems {
					fmt.Fprintf(e.stdout, "          - %s\n", p)
				}
			}
			if data := st.Data; data != nil {
				if data.Problem != "" {
					fmt.Fprintf(e.stdout, "data      NOT MOUNTED: %s\n", data.Problem)
				} else {
					enc := ""
					switch {
					case data.Encrypted && data.Unlock == api.UnlockTPM:
						enc = " (encrypted, unlocked by the TPM)"
					case data.Encrypted && data.Unlock == api.UnlockRecovery:
						enc = " (encrypted, opened with the recovery key)"
					case data.Encrypted:
						enc = " (encrypted)"
					}
					fmt.Fprintf(e.stdout, "data      %s%s: %s, %s free, boot %d\n", data.Device, enc, units.Bytes(data.Size), units.Bytes(data.Free), data.Boot)
					if data.TPMProblem != "" {
						fmt.Fprintf(e.stdout, "tpm       the TPM does not unlock the data partition: %s\n", data.TPMProblem)
					}
				}
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "SERVICE\tSTATE\tPID\tRESTARTS\tLAST EXIT")
			for _, s := range st.Services {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", s.Name, s.State, s.Pid, s.Restarts, dash(s.LastExit))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(st.VMs) > 0 {
				fmt.Fprintln(e.stdout)
				printVMs(e.stdout, st.VMs)
			}
			if len(st.Slots) > 0 {
				fmt.Fprintln(e.stdout)
				if err := printSlots(e.stdout, st.Slots); err != nil {
					return err
				}
			}
			if st.Update != "" {
				fmt.Fprintf(e.stdout, "update    ROLLED BACK: %s\n", st.Update)
			}
			return nil
		},
	}
	var follow bool
	logs := &cobra.Command{
		Use: "logs", Short: "Print hostd's log (-f follows it)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return client().Logs(cmd.Context(), follow, e.stdout)
		},
	}
	logs.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	power := func(action, short string) *cobra.Command {
		return &cobra.Command{
			Use: action, Short: short, Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				if err := client().Power(cmd.Context(), action); err != nil {
					return fmt.Errorf("%s %s: %w", action, addr, err)
				}
				fmt.Fprintf(e.stdout, "%s: %s started\n", addr, action)
				return nil
			},
		}
	}
	restart := &cobra.Command{
		Use: "restart SERVICE", Short: "Restart a supervised service", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return client().Restart(cmd.Context(), args[0])
		},
	}
	shares := &cobra.Command{
		Use: "shares", Short: "List the shares: paths, usage, and the line that maps each in Windows", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sh, err := client().Shares(cmd.Context())
			if err != nil {
				return fmt.Errorf("shares of %s: %w", addr, err)
			}
			printShares(e.stdout, sh)
			return nil
		},
	}
	var forceSnapshot bool
	vmc := &cobra.Command{
		Use:   "vm NAME start|stop|status|snapshot|reset|console|install-on|install-off|vnc-password|new-vnc-password",
		Short: "Control a guest",
		Long: `vm controls one of the host's guests:

  start        start it (creating its disk, UEFI variables and TPM state the first time)
  stop         ACPI shutdown, waiting up to its shutdown_timeout, then stop QEMU
  status       its state, resources, install mode, snapshot and disk use
  snapshot     make the current disk, UEFI variables and TPM state the base; later writes go to an
               overlay (refused for a guest that did not shut down cleanly, unless --force)
  reset        drop the overlay (everything since the snapshot), put the snapshot's UEFI variables
               and TPM state back, and start it again
  console      follow its serial console (QEMU's output) in hostd's log
  install-on   attach the install media and boot from them at its next start
  install-off  end install mode (it also ends when the guest boots from its disk)
  vnc-password      where its VNC display listens and its password (a display beyond loopback
                    gets one at the guest's first start, kept on the data partition)
  new-vnc-password  replace that password; a running guest takes it at once`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, action := args[0], args[1]
			c := client()
			switch action {
			case "status":
				st, err := c.Status(cmd.Context())
				if err != nil {
					return fmt.Errorf("status of %s: %w", addr, err)
				}
				for _, v := range st.VMs {
					if v.Name == name {
						printVMs(e.stdout, []api.VM{v})
						for _, n := range v.Notes {
							fmt.Fprintln(e.stdout, "note:", n)
						}
						for _, ev := range v.Events {
							fmt.Fprintln(e.stdout, "event:", ev)
						}
						return nil
					}
				}
				return fmt.Errorf("%s has no vm %q", addr, name)
			case "console":
				return c.Logs(cmd.Context(), true, &lineFilter{w: e.stdout, match: "service=vm-" + name + " "})
			}
			if forceSnapshot {
				if action != "snapshot" {
					return fmt.Errorf("--force goes with snapshot, not %s", action)
				}
				action = "force-snapshot"
			}
			msg, err := c.VM(cmd.Context(), name, action)
			if err != nil {
				return fmt.Errorf("vm %s %s on %s: %w", name, action, addr, err)
			}
			fmt.Fprintln(e.stdout, msg)
			return nil
		},
	}
	var tries int
	var save string
	update := &cobra.Command{
		Use:   "update IMAGE",
		Short: "Send a newly built image to the host: it boots next, and the host falls back if it fails",
		Long: `update sends IMAGE's kernel, initramfs and system image (a build of the
same profile, or of another with the same layout) to the running host. hostd
writes them into the A/B slot that is not running, checks every byte against
the image's SHA-256 and reads it back; the data partition is never written.

The next boot tries the new slot. Once hostd is ready there (system image and
data partition mounted), the slot is good and stays the default. If it does
not get there within --tries boots, the boot loader boots the previous slot
again by itself, and ctl status says the update rolled back.

The host refuses an image whose system image does not fit its slot, whose
boot files do not fit its ESP, or that boots through another chain (Secure
Boot's shim and GRUB against systemd-boot): reflash those with
thinhost flash --keep-data.

With --save FILE nothing is sent: the update is written to FILE, for the
host's page (Host update) to upload from a browser, inside Windows too.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := images.ReadUpdate(args[0])
			if err != nil {
				return err
			}
			m := &api.UpdateManifest{Info: u.Info}
			open := map[string]func() (io.ReadCloser, error){}
			var total int64
			for _, f := range u.Files {
				m.Files = append(m.Files, api.UpdateFile{Name: f.Name, Size: f.Size, SHA256: f.SHA256})
				open[f.Name] = f.Open
				total += f.Size
			}
			if err := m.Check(); err != nil {
				return fmt.Errorf("update from %s: %w", args[0], err)
			}
			fmt.Fprintf(e.stdout, "update    build %s (%s) from %s, %s\n", u.Info.Build, dash(u.Info.Profile), args[0], units.Bytes(total))
			if save != "" {
				return saveUpdate(save, m, open, total, e)
			}
			pr, pw := io.Pipe()
			bar := newBar(e.stderr, "sending", total)
			go func() {
				var sent int64
				pw.CloseWithError(api.WriteUpdate(pw, m, func(name string) (io.ReadCloser, error) {
					r, err := open[name]()
					if err != nil {
						return nil, err
					}
					return &countReader{ReadCloser: r, n: &sent, progress: bar, total: total}, nil
				}))
			}()
			res, err := client().Update(cmd.Context(), pr, tries)
			pr.CloseWithError(io.ErrClosedPipe)
			if err != nil {
				return fmt.Errorf("update %s: %w", addr, err)
			}
			fmt.Fprintf(e.stdout, "update    slot %s holds build %s: it boots next, with %d tries to reach ready (thinhost ctl reboot)\n", res.Slot, res.Build, res.Tries)
			return nil
		},
	}
	update.Flags().IntVar(&tries, "tries", layout.DefaultTries, "boots the new slot gets to reach ready before the host falls back to the running one")
	update.Flags().StringVar(&save, "save", "", "write the update to this file instead of sending it (the host's page uploads it)")
	vmc.Flags().BoolVar(&forceSnapshot, "force", false, "snapshot a guest even if it did not shut down cleanly (its disk may hold half-written data)")
	cmd.AddCommand(status, logs, power("poweroff", "Shut the host down cleanly and power it off"),
		power("reboot", "Shut the host down cleanly and reboot it"),
		power("suspend", "Pause the guests, sync and suspend the host (as closing the lid does); the power button or a key wakes it"),
		restart, shares, vmc, update, wifiCmd(e, client))
	return cmd
}

// memoryUse says where the memory in use goes: the programs' own memory,
// files held in memory, the kernel's, and what the kernel keeps free for
// itself; "" when the host does not say.
func memoryUse(m api.Memory) string {
	var parts []string
	for _, p := range m.Programs {
		n := ""
		if p.Processes > 1 {
			n = fmt.Sprintf(" ×%d", p.Processes)
		}
		parts = append(parts, fmt.Sprintf("%s%s %s", p.Name, n, units.Bytes(p.Private)))
	}
	if m.Files > 0 {
		parts = append(parts, "files in memory (initramfs, /run) "+units.Bytes(m.Files))
	}
	if m.Kernel > 0 {
		parts = append(parts, "kernel "+units.Bytes(m.Kernel))
	}
	if m.Reserved > 0 {
		parts = append(parts, "kept free by the kernel "+units.Bytes(m.Reserved))
	}
	return strings.Join(parts, ", ")
}

// besideProgram reads the guest configuration (api.GuestConfigFile)
// beside the running program: thinhost.exe on a guest's THINHOST drive.
func besideProgram() (api.GuestConfig, bool) {
	exe, err := os.Executable()
	if err != nil {
		return api.GuestConfig{}, false
	}
	return readGuestConfig(filepath.Join(filepath.Dir(exe), api.GuestConfigFile))
}

func readGuestConfig(path string) (api.GuestConfig, bool) {
	var gc api.GuestConfig
	b, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(b, &gc) != nil || gc.Addr == "" {
		return api.GuestConfig{}, false
	}
	return gc, true
}

func printShares(w io.Writer, sh *api.Shares) {
	fmt.Fprintf(w, "user      %s\n", sh.User)
	if sh.Password == "" {
		fmt.Fprintf(w, "password  %s\n", sh.PasswordFrom)
	} else {
		fmt.Fprintf(w, "password  %s  (%s)\n", sh.Password, sh.PasswordFrom)
	}
	where := "the guests only (their host-only link, and loopback, where their 10.0.2.2 arrives)"
	if sh.HostNetwork {
		where = "the guest and the host's network"
	}
	fmt.Fprintf(w, "served to %s; listening on %s\n\n", where, strings.Join(sh.Listen, ", "))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SHARE\tDRIVE\tACCESS\tPATH\tUSED\tFREE")
	for _, s := range sh.Shares {
		access, used := "read-write", units.Bytes(s.UsedBytes)
		if s.ReadOnly {
			access = "read-only"
		}
		if !s.UsageComplete {
			used = "≥" + used
		}
		drive := "-"
		if s.Drive != "" {
			drive = s.Drive + ":"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, drive, access, s.Path, used, units.Bytes(s.FreeBytes))
	}
	tw.Flush()
	fmt.Fprintln(w, "\nIn Windows (cmd.exe), each share maps with:")
	for _, s := range sh.Shares {
		fmt.Fprintln(w, "  "+s.NetUse)
	}
}

func printVMs(w io.Writer, vms []api.VM) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VM\tSTATE\tACCEL\tMEMORY\tCPUS\tINSTALL\tSNAPSHOT\tDISK\tOVERLAY\tDISPLAY")
	for _, v := range vms {
		snap := "-"
		if !v.Snapshot.IsZero() {
			snap = v.Snapshot.Format("2006-01-02 15:04")
		}
		install := "no"
		if v.Install {
			install = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d MiB\t%d\t%s\t%s\t%s\t%s\t%s\n", v.Name, v.State, v.Accel, v.MemoryMiB, v.CPUs,
			install, snap, units.Bytes(v.DiskBytes), units.Bytes(v.OverlayBytes), v.Display)
	}
	tw.Flush()
	for _, v := range vms {
		if v.MemoryUsedBytes > 0 {
			fmt.Fprintf(w, "vm %s: memory in use %s, %s of it in 2 MiB pages\n", v.Name, units.Bytes(v.MemoryUsedBytes), units.Bytes(v.MemoryHugeBytes))
		}
		if v.Busy != "" {
			fmt.Fprintf(w, "vm %s: %s\n", v.Name, v.Busy)
		}
		if v.Problem != "" {
			fmt.Fprintf(w, "vm %s: %s\n", v.Name, v.Problem)
		}
	}
}

// lineFilter passes through the lines that contain match.
type lineFilter struct {
	w     io.Writer
	match string
	buf   []byte
}

func (f *lineFilter) Write(p []byte) (int, error) {
	f.buf = append(f.buf, p...)
	for {
		i := bytes.IndexByte(f.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := f.buf[:i+1]
		if bytes.Contains(line, []byte(f.match)) {
			if _, err := f.w.Write(line); err != nil {
				return 0, err
			}
		}
		f.buf = f.buf[i+1:]
	}
}

// printSlots lists the A/B slots.
func printSlots(w io.Writer, slots []api.Slot) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SLOT\tSTATE\tBOOTED\tVERSION\tBUILD\tPROFILE")
	for _, s := range slots {
		state := s.State
		if s.State == "trying" {
			state = fmt.Sprintf("trying (%d boots left)", s.TriesLeft)
		}
		booted := ""
		if s.Booted {
			booted = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", s.Name, state, dash(booted), s.Version, dash(s.Build), dash(s.Profile))
	}
	return tw.Flush()
}

// countReader reports the bytes read through it to a progress bar.
type countReader struct {
	io.ReadCloser
	n        *int64
	progress func(done, total int64)
	total    int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	*c.n += int64(n)
	if c.progress != nil {
		c.progress(*c.n, c.total)
	}
	return n, err
}

// saveUpdate writes the update stream to path (through a temporary file
// beside it, renamed when complete) for the host's page to upload.
func saveUpdate(path string, m *api.UpdateManifest, open map[string]func() (io.ReadCloser, error), total int64, e *env) error {
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("save update to %s: not a regular file", path)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("save update: %w", err)
	}
	defer os.Remove(tmp.Name())
	bar := newBar(e.stderr, "writing", total)
	var written int64
	err = api.WriteUpdate(tmp, m, func(name string) (io.ReadCloser, error) {
		r, err := open[name]()
		if err != nil {
			return nil, err
		}
		return &countReader{ReadCloser: r, n: &written, progress: bar, total: total}, nil
	})
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("save update to %s: %w", path, err)
	}
	fmt.Fprintf(e.stdout, "update    saved to %s: upload it on the host's page (Host update)\n", path)
	return nil
}

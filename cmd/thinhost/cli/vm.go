//go:build linux

package cli

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/thinhost/thinhost/builder"
	"github.com/thinhost/thinhost/hostd/guestdrive"
	"github.com/thinhost/thinhost/hostd/vm"
	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/images/layout/config"
	"github.com/thinhost/thinhost/internal/sysmem"
	"github.com/thinhost/thinhost/profiles"
)

func vmCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vm args|drive PROFILE [--vm NAME]",
		Short: "Show what hostd will run and write for a profile's guests",
	}
	var pf profileFlags
	var name, vendor, memory string
	var kvm bool
	var cpus int
	args := &cobra.Command{
		Use:   "args PROFILE",
		Short: "Print the QEMU command line hostd runs for a guest (a dry run)",
		Long: `args prints, for each guest of the profile (or the one --vm names), the QEMU
command line hostd runs on the laptop. It depends on the laptop: whether KVM
works, its CPU vendor, RAM and CPUs (for "75%" and "all-but-1"). By default
it assumes KVM works and takes the rest from this machine; the flags change
that.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			prof, err := pf.load(e, args[0])
			if err != nil {
				return err
			}
			if len(prof.VMs) == 0 {
				return fmt.Errorf("%s defines no vm blocks", args[0])
			}
			host := vm.Host{KVM: kvm, CPUVendor: vendor, CPUs: cpus, Root: layout.SystemDir}
			if host.MemBytes, err = profiles.ParseSize(memory); err != nil {
				return fmt.Errorf("--memory: %w", err)
			}
			var specs []config.VM
			for _, s := range builder.VMSpecs(prof) {
				if name == "" || s.Name == name {
					specs = append(specs, s)
				}
			}
			if len(specs) == 0 {
				var names []string
				for _, v := range prof.VMs {
					names = append(names, v.Name)
				}
				return fmt.Errorf("%s has no vm %q (it has: %s)", args[0], name, strings.Join(names, ", "))
			}
			for i, s := range specs {
				if i > 0 {
					fmt.Fprintln(e.stdout)
				}
				printVMArgs(e.stdout, &s, host)
			}
			return nil
		},
	}
	pf.register(args)
	args.Flags().StringVar(&name, "vm", "", "only this guest")
	args.Flags().BoolVar(&kvm, "kvm", true, "assume KVM works on the laptop (false: TCG)")
	args.Flags().StringVar(&vendor, "cpu-vendor", vm.CPUVendor(), "the laptop's CPU vendor id")
	args.Flags().IntVar(&cpus, "cpus", runtime.NumCPU(), "the laptop's CPUs")
	args.Flags().StringVar(&memory, "memory", fmt.Sprintf("%dMiB", memTotal()>>20), "the laptop's RAM")
	cmd.AddCommand(args, vmDriveCmd(e))
	return cmd
}

func vmDriveCmd(e *env) *cobra.Command {
	var pf profileFlags
	var name, out string
	c := &cobra.Command{
		Use:   "drive PROFILE -o DIR",
		Short: "Write a Windows guest's THINHOST drive as hostd would (a dry run)",
		Long: `drive writes the files hostd puts on a Windows guest's THINHOST CD at its first
start, in install mode: autounattend.xml (from the vm's windows block), the
setup script its first logon runs, map-drives.cmd and the README. Passwords
hostd makes on the laptop (the setup account's, and the share user's when the
profile gives none) are samples here.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("-o DIR is needed: the folder to write the drive's files into")
			}
			prof, err := pf.load(e, args[0])
			if err != nil {
				return err
			}
			cfg, err := builder.HostdConfig(prof)
			if err != nil {
				return err
			}
			var spec *config.VM
			var names []string
			for i := range cfg.VMs {
				s := &cfg.VMs[i]
				if !strings.HasPrefix(s.OS, "windows") {
					continue
				}
				names = append(names, s.Name)
				if name == "" || s.Name == name {
					spec = s
				}
			}
			switch {
			case len(names) == 0:
				return fmt.Errorf("%s has no Windows vm: only Windows guests get a THINHOST drive", args[0])
			case name != "" && spec == nil:
				return fmt.Errorf("%s has no Windows vm %q (it has: %s)", args[0], name, strings.Join(names, ", "))
			case name == "" && len(names) > 1:
				return fmt.Errorf("%s has several Windows vms (%s): choose one with --vm", args[0], strings.Join(names, ", "))
			}
			in := guestdrive.Input{Config: cfg, Guest: guestdrive.Guest{VM: spec, Install: spec.InstallMedia != ""}}
			var notes []string
			if in.Guest.Install && spec.Windows != nil {
				in.Guest.SetupPassword = sampleSecret(16)
				notes = append(notes, fmt.Sprintf("the setup password in %s is a sample: hostd makes the guest's own at its first start (thinhost ctl vm %s setup-password)", guestdrive.AnswerFile, spec.Name))
			}
			if fs := cfg.FileServer; fs != nil && fs.PasswordNTHash == "" && fs.Password == "" {
				raw := make([]byte, 9)
				_, _ = rand.Read(raw)
				in.SharePassword = hex.EncodeToString(raw)
				notes = append(notes, "the share password is a sample: hostd makes the host's at its first boot (thinhost ctl shares)")
			}
			files, err := guestdrive.Files(in)
			if err != nil {
				return err
			}
			if len(files) == 0 {
				return fmt.Errorf("vm %s gets no THINHOST drive: the profile has no shares, no API port and no windows block", spec.Name)
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return fmt.Errorf("create %s: %w", out, err)
			}
			fnames := make([]string, 0, len(files))
			for n := range files {
				fnames = append(fnames, n)
			}
			sort.Strings(fnames)
			for _, n := range fnames {
				if err := os.WriteFile(filepath.Join(out, n), []byte(files[n]), 0o644); err != nil {
					return fmt.Errorf("write %s: %w", filepath.Join(out, n), err)
				}
			}
			mode := "after install mode"
			if in.Guest.Install {
				mode = "in install mode, as at its first start"
			}
			fmt.Fprintf(e.stdout, "vm %s's THINHOST drive (%s): %s in %s\n", spec.Name, mode, strings.Join(fnames, ", "), out)
			if spec.Windows == nil && in.Guest.Install {
				notes = append(notes, "no windows block: Windows setup asks its questions (add a windows block to the vm for an unattended install)")
			}
			for _, n := range notes {
				fmt.Fprintln(e.stdout, "note:", n)
			}
			return nil
		},
	}
	pf.register(c)
	c.Flags().StringVar(&name, "vm", "", "the Windows guest (needed when the profile has several)")
	c.Flags().StringVarP(&out, "output", "o", "", "the folder to write the files into")
	return c
}

// sampleSecret is n letters and digits from crypto/rand, as hostd makes
// its passwords.
func sampleSecret(n int) string { return rand.Text()[:n] }

// printVMArgs prints the command as a shell would take it, an option and
// its value per line.
func printVMArgs(w io.Writer, s *config.VM, host vm.Host) {
	paths := vm.GuestPaths(layout.VMStateDir, layout.VMRunDir, s.Name)
	argv := vm.Args(s, host, paths, vm.State{Install: s.InstallMedia != "", DiskBus: vm.DiskBusFor(s), HelperISO: helperISO(s, paths)})
	accel := "KVM"
	if !host.KVM {
		accel = "no KVM (TCG)"
	}
	fmt.Fprintf(w, "# vm %q (%s): host with %s, %s, %d CPUs, %d MiB RAM\n", s.Name, s.OS, accel, host.CPUVendor, host.CPUs, host.MemBytes>>20)
	if s.InstallMedia != "" {
		fmt.Fprintln(w, "# as on first start, in install mode (install media attached)")
	}
	for _, n := range vm.Size(s, host).Notes {
		fmt.Fprintln(w, "# note:", n)
	}
	if s.TPM {
		fmt.Fprintf(w, "# after: %s %s\n", layout.SystemDir+vm.SwtpmBinary, strings.Join(vm.SwtpmArgs(paths), " "))
	}
	fmt.Fprintf(w, "%s%s", layout.SystemDir, vm.QEMUBinary)
	for i := 0; i < len(argv); i++ {
		fmt.Fprintf(w, " \\\n  %s", shellQuote(argv[i]))
		if strings.HasPrefix(argv[i], "-") && i+1 < len(argv) && !strings.HasPrefix(argv[i+1], "-") {
			i++
			fmt.Fprintf(w, " %s", shellQuote(argv[i]))
		}
	}
	fmt.Fprintln(w)
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_=,./:+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// memTotal is this machine's memory, or 16 GiB where it cannot be read
// (a build machine that is no Linux).
func memTotal() int64 {
	if m, err := sysmem.Read(); err == nil && m.Total > 0 {
		return m.Total
	}
	return 16 << 30
}

// helperISO is the THINHOST CD hostd gives a Windows guest (when it has
// something to put on it, which depends on the host's configuration:
// printVMArgs shows it for every Windows guest).
func helperISO(s *config.VM, p vm.Paths) string {
	if strings.HasPrefix(s.OS, "windows") {
		return p.HelperISO()
	}
	return ""
}

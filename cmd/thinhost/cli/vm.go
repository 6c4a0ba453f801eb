//go:build linux

package cli

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/thinhost/thinhost/builder"
	"github.com/thinhost/thinhost/hostd/config"
	"github.com/thinhost/thinhost/hostd/vm"
	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/profiles"
)

func vmCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vm args PROFILE [--vm NAME]",
		Short: "Show what hostd will run for a profile's guests",
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
	cmd.AddCommand(args)
	return cmd
}

// printVMArgs prints the command as a shell would take it, an option and
// its value per line.
func printVMArgs(w io.Writer, s *config.VM, host vm.Host) {
	paths := vm.Paths{Dir: "/data/vms/" + s.Name, RunDir: "/run/vms/" + s.Name}
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
		fmt.Fprintf(w, "# after: %s socket --tpm2 --tpmstate dir=%s --ctrl type=unixio,path=%s\n",
			layout.SystemDir+"/usr/bin/swtpm", paths.TPMState(), paths.TPMSocket())
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

func memTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			var kb int64
			if _, err := fmt.Sscanf(l, "MemTotal: %d kB", &kb); err == nil {
				return kb << 10
			}
		}
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

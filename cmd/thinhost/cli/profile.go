package cli

import (
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/thinhost/thinhost/profiles"
)

// profileFlags are the flags of every command that reads a profile.
type profileFlags struct {
	vars, varFiles []string
}

func (f *profileFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.vars, "var", nil, "set a profile variable, NAME=VALUE (repeatable)")
	cmd.Flags().StringArrayVar(&f.varFiles, "var-file", nil, "read profile variables from an HCL file of NAME = VALUE lines (repeatable)")
}

// load parses the profile and prints every diagnostic; it returns
// errReported when any is an error.
func (f *profileFlags) load(e *env, path string) (*profiles.Profile, error) {
	p := profiles.NewParser()
	prof, diags := p.ParseFile(path, profiles.Options{Vars: f.vars, VarFiles: f.varFiles})
	if len(diags) > 0 {
		width, color := uint(100), false
		if fd, ok := e.stderr.(interface{ Fd() uintptr }); ok && term.IsTerminal(int(fd.Fd())) {
			if w, _, err := term.GetSize(int(fd.Fd())); err == nil && w > 20 {
				width = uint(w)
			}
			color = true
		}
		_ = p.WriteDiagnostics(e.stderr, diags, width, color)
	}
	if diags.HasErrors() {
		return nil, errReported
	}
	return prof, nil
}

package profiles

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"
)

// Boot is how the image boots: the chain of loaders on the ESP.
type Boot struct {
	// SecureBoot is SecureBootOff, SecureBootStock or SecureBootOwn; ""
	// until decoded.
	SecureBoot string
	// Keys is the own chain's key set: a directory (relative to the
	// profile) holding PK, KEK and db as NAME.key and NAME.crt, which
	// `thinhost keys DIR` makes.
	Keys string
	// DeclRange is the boot block, when there is one.
	DeclRange hcl.Range
}

// The Secure Boot chains a profile can ask for.
const (
	// SecureBootOff boots systemd-boot, unsigned: a laptop must have
	// Secure Boot turned off in its firmware setup.
	SecureBootOff = "off"
	// SecureBootStock boots through Debian's chain signed from
	// Microsoft's UEFI CA, which laptops ship enrolled: shim, then GRUB,
	// then Debian's kernel, each signed and each verifying the next.
	SecureBootStock = "stock"
	// SecureBootOwn boots systemd-boot and a unified kernel image
	// (kernel, initramfs and command line in one file), both signed with
	// the profile's own keys, which the laptop's firmware must hold: the
	// ESP carries them for enrollment from setup mode.
	SecureBootOwn = "own"
)

var bootSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "secure_boot"}, {Name: "keys"}},
}

// defaultSecureBoot is the chain of a profile that names none: laptops
// ship with Secure Boot on, so a laptop profile boots the signed chain.
func defaultSecureBoot(p *Profile) string {
	if p.Host.Kernel.Hardware == "laptop" {
		return SecureBootStock
	}
	return SecureBootOff
}

func decodeBoot(b *hcl.Block, ctx *hcl.EvalContext, boot *Boot) hcl.Diagnostics {
	content, diags := b.Body.Content(bootSchema)
	boot.DeclRange = b.DefRange
	sb, attr, d := evalString(content.Attributes, "secure_boot", ctx)
	diags = append(diags, d...)
	if attr != nil && !d.HasErrors() {
		switch sb {
		case SecureBootOff, SecureBootStock, SecureBootOwn:
			boot.SecureBoot = sb
		default:
			diags = append(diags, attrDiag(attr, "Unknown Secure Boot chain",
				fmt.Sprintf("secure_boot must be %q (Debian's signed shim, GRUB and kernel: boots on laptops with Secure Boot on, as they ship), %q (systemd-boot and a kernel image signed with your keys, keys = \"DIR\") or %q (systemd-boot, unsigned: Secure Boot must be off); %q is none of them.", SecureBootStock, SecureBootOwn, SecureBootOff, sb)))
		}
	}
	keys, kattr, d := evalString(content.Attributes, "keys", ctx)
	diags = append(diags, d...)
	if keys == "" {
		kattr = nil // null (an unset variable) is no keys
	}
	switch {
	case d.HasErrors():
	case kattr != nil && boot.SecureBoot != SecureBootOwn:
		diags = append(diags, attrDiag(kattr, "Keys without the own-keys chain",
			fmt.Sprintf("keys is the key set of secure_boot = %q; with %q nothing is signed with them. Set secure_boot = %q, or remove keys.", SecureBootOwn, boot.SecureBoot, SecureBootOwn)))
	case boot.SecureBoot == SecureBootOwn && kattr == nil:
		diags = append(diags, attrDiag(attr, "No keys for the own-keys chain",
			fmt.Sprintf("secure_boot = %q signs the loader and the kernel image with your keys: add keys = \"DIR\", a directory holding PK, KEK and db (NAME.key and NAME.crt; `thinhost keys DIR` makes a new set).", SecureBootOwn)))
	case kattr != nil:
		dir := keys
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(filepath.Dir(b.DefRange.Filename), dir)
		}
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			diags = append(diags, attrDiag(kattr, "No key set there",
				fmt.Sprintf("keys = %q: %s is not a directory. Make a key set with `thinhost keys %s`, or name the directory that holds yours (PK, KEK and db as NAME.key and NAME.crt).", keys, dir, dir)))
		}
		keys = dir
		boot.Keys = keys
	}
	return diags
}

package profiles

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
)

// Boot is how the image boots: the chain of loaders on the ESP.
type Boot struct {
	// SecureBoot is SecureBootOff or SecureBootStock; "" until decoded.
	SecureBoot string
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
)

var bootSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "secure_boot"}},
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
		case SecureBootOff, SecureBootStock:
			boot.SecureBoot = sb
		case "own":
			diags = append(diags, attrDiag(attr, "Secure Boot with your own keys is not built yet",
				fmt.Sprintf("secure_boot = %q (a UKI signed with your keys) is not supported by this thinhost; use %q (Debian's chain signed for the keys laptops ship with) or %q.", sb, SecureBootStock, SecureBootOff)))
		default:
			diags = append(diags, attrDiag(attr, "Unknown Secure Boot chain",
				fmt.Sprintf("secure_boot must be %q (Debian's signed shim, GRUB and kernel: boots on laptops with Secure Boot on, as they ship) or %q (systemd-boot, unsigned: Secure Boot must be off); %q is neither.", SecureBootStock, SecureBootOff, sb)))
		}
	}
	return diags
}

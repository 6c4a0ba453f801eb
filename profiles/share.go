package profiles

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/thinhost/thinhost/images/layout/config"
)

// FileServer is how the host serves its shares (SMB, by Samba's smbd).
type FileServer struct {
	// User is the one share user; Password its password, or "" to have
	// hostd generate one on first boot (shown by `thinhost ctl shares`).
	User     string
	Password string
	// HostNetwork serves the shares on the host's own network too; by
	// default only the guest reaches them (QEMU's user networking maps
	// the guest's 10.0.2.2 to the host's loopback).
	HostNetwork bool
	DeclRange   hcl.Range
}

// Share is one folder of the data partition served to the guest.
type Share struct {
	Name string
	// Path is relative to the data partition's shares/ folder.
	Path     string
	ReadOnly bool
	// Drive is the letter Windows maps it to ("Z"), or "".
	Drive     string
	DeclRange hcl.Range
}

// DefaultShareUser is the share user when the profile names none.
const DefaultShareUser = "thin"

var (
	fileServerSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "user"}, {Name: "password"}, {Name: "serve_on_host_network"}},
	}
	shareSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "path"}, {Name: "read_only"}, {Name: "drive"}},
	}
	driveRE = regexp.MustCompile(`^([D-Zd-z]):?$`)
)

func decodeFileServer(b *hcl.Block, ctx *hcl.EvalContext, fs *FileServer) hcl.Diagnostics {
	content, diags := b.Body.Content(fileServerSchema)
	fs.DeclRange = b.DefRange
	user, attr, d := evalString(content.Attributes, "user", ctx)
	diags = append(diags, d...)
	if attr != nil && !d.HasErrors() {
		switch {
		case !config.ValidShareUser(user) && !config.ReservedShareUser(user):
			diags = append(diags, attrDiag(attr, "Invalid share user", fmt.Sprintf("user %q must be 1-32 lower-case letters, digits, '_' or '-', starting with a letter or '_'.", user)))
		case config.ReservedShareUser(user):
			diags = append(diags, attrDiag(attr, "Invalid share user", fmt.Sprintf("user %q is a system account; choose another name such as %q.", user, DefaultShareUser)))
		default:
			fs.User = user
		}
	}
	pw, attr, d := evalString(content.Attributes, "password", ctx)
	diags = append(diags, d...)
	if attr != nil && !d.HasErrors() {
		if len(pw) < 8 || strings.ContainsAny(pw, "\r\n\x00") {
			diags = append(diags, attrDiag(attr, "Weak share password",
				"password must be at least 8 characters on one line; leave it out to have hostd generate one on first boot (thinhost ctl shares shows it)."))
		}
		fs.Password = pw
	}
	hn, attr, d := evalBool(content.Attributes, "serve_on_host_network", ctx)
	diags = append(diags, d...)
	if attr != nil {
		fs.HostNetwork = hn
	}
	return diags
}

func decodeShares(blocks []*hcl.Block, ctx *hcl.EvalContext, prof *Profile) hcl.Diagnostics {
	var diags hcl.Diagnostics
	byName := map[string]*Share{}
	byPath := map[string]*Share{}
	byDrive := map[string]*Share{}
	for _, b := range blocks {
		sh := &Share{Name: b.Labels[0], DeclRange: b.DefRange}
		nameRng := b.LabelRanges[0]
		content, d := b.Body.Content(shareSchema)
		diags = append(diags, d...)
		lower := strings.ToLower(sh.Name)
		switch {
		case !config.ValidShareName(sh.Name):
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid share name",
				Detail:  fmt.Sprintf("Share name %q must be 1-32 letters, digits, '_' or '-' (and not global, homes or printers).", sh.Name),
				Subject: &nameRng})
			continue
		case byName[lower] != nil:
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate share",
				Detail:  fmt.Sprintf("Share %q is already declared at %s (share names are not case-sensitive for Windows).", sh.Name, byName[lower].DeclRange),
				Subject: &nameRng})
			continue
		}
		byName[lower] = sh

		p, attr, d := evalString(content.Attributes, "path", ctx)
		diags = append(diags, d...)
		sh.Path = sh.Name
		if attr != nil && !d.HasErrors() {
			clean := path.Clean(p)
			switch {
			case p == "" || strings.HasPrefix(p, "/") || clean == "." || clean == ".." || strings.HasPrefix(clean, "../") || strings.ContainsRune(p, '\\'):
				diags = append(diags, attrDiag(attr, "Share path escapes the data partition",
					fmt.Sprintf("path %q must be a folder under the data partition's shares/, given relative to it (such as %q); it may not be absolute or climb out with \"..\".", p, sh.Name)))
				continue
			case !config.ValidSharePath(clean):
				diags = append(diags, attrDiag(attr, "Unsafe share path",
					fmt.Sprintf("path %q: each folder name must be letters, digits, '.', '_', '-' and inner spaces (no newline, NUL, %%, quotes or other punctuation: smb.conf would read them as its own syntax), not starting with '.' or ending in '.' or a space (Windows cannot use such names).", p)))
				continue
			default:
				sh.Path = clean
			}
		}
		if prev := byPath[sh.Path]; prev != nil {
			diags = append(diags, attrDiagOr(attr, &nameRng, "Two shares, one folder",
				fmt.Sprintf("share %q serves shares/%s, which share %q (%s) serves already.", sh.Name, sh.Path, prev.Name, prev.DeclRange)))
		}
		byPath[sh.Path] = sh

		ro, attr, d := evalBool(content.Attributes, "read_only", ctx)
		diags = append(diags, d...)
		if attr != nil {
			sh.ReadOnly = ro
		}
		drive, attr, d := evalString(content.Attributes, "drive", ctx)
		diags = append(diags, d...)
		if attr != nil && !d.HasErrors() {
			m := driveRE.FindStringSubmatch(drive)
			if m == nil {
				diags = append(diags, attrDiag(attr, "Invalid drive letter",
					fmt.Sprintf("drive %q must be one letter from D to Z (A and B are floppies, C is Windows itself), such as \"Z\".", drive)))
			} else {
				sh.Drive = strings.ToUpper(m[1])
				if prev := byDrive[sh.Drive]; prev != nil {
					diags = append(diags, attrDiag(attr, "Duplicate drive letter",
						fmt.Sprintf("drive %s: is already share %q's (%s).", sh.Drive, prev.Name, prev.DeclRange)))
				}
				byDrive[sh.Drive] = sh
			}
		}
		prof.Shares = append(prof.Shares, sh)
	}
	return diags
}

func attrDiagOr(attr *hcl.Attribute, rng *hcl.Range, summary, detail string) *hcl.Diagnostic {
	if attr != nil {
		return attrDiag(attr, summary, detail)
	}
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: rng}
}

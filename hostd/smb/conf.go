package smb

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"github.com/thinhost/thinhost/hostd/guestdrive"
	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/images/layout/config"
)

// Samba's runtime directories and files inside the host.
const (
	SambaDir  = "/run/samba"
	SMBConf   = SambaDir + "/smb.conf"
	SharesDir = layout.DataDir + "/shares"
	// SambaModulesDir is where Debian's smbd looks for its VFS modules
	// (`smbd -b`: MODULESDIR); it refuses absolute module paths, so hostd
	// links this path to the system image's copy.
	SambaModulesDir = "/usr/lib/x86_64-linux-gnu/samba"
	// GuestHostAddress is the host as a guest on QEMU's user network sees
	// it: QEMU maps it to the host's loopback.
	GuestHostAddress = guestdrive.NATHostAddress
)

// StateDir is Samba's on the data partition: the machine SID the
// shares' stored Windows ACLs name (SIDFile). The ACLs smbd stores with
// the files (acl_xattr) name the share user by a SID made of the machine
// SID; made afresh each boot, it made every file with a stored ACL (one
// set from Windows, or inherited from a folder's) unreadable to its own
// user after a reboot. Images before kept Samba's whole private
// directory here, whose secrets.tdb holds it.
const StateDir = layout.DataDir + "/state/samba"

// PrivateDir is Samba's private directory, in memory, made afresh each
// boot: its secrets (the machine SID, from MACHINE.SID) and the password
// database.
const PrivateDir = SambaDir + "/private"

// NetbiosName is the server's name, which Samba's secrets key its SID by.
const NetbiosName = "THINHOST"

// Dirs are where smbd keeps its files: Run and Private, made afresh each
// boot in memory.
type Dirs struct{ Run, Private string }

// HostDirs are the booted host's.
var HostDirs = Dirs{Run: SambaDir, Private: PrivateDir}

// SambaRunDirs are smbd's directories under its run directory ("log"
// only holds the cores directory smbd insists on: it logs to stdout).
var SambaRunDirs = []string{"lock", "state", "cache", "pid", "ncalrpc", "log"}

// GuestLoopback is the address the guest's SMB connections arrive on:
// QEMU's user network connects from the host's loopback.
const GuestLoopback = "127.0.0.1"

// guestProtection writes the signing and encryption the guest gets:
// Windows 11 24H2 requires signing and gets it; SMB3 clients may encrypt.
// Nothing else reaches its loopback connections, and encryption would tax
// every byte of the guest's drives.
func guestProtection(w func(string, ...any)) {
	w("  # Windows 11 24H2 requires signing and gets it; SMB3 clients may encrypt.")
	w("  server signing = default")
	w("  server smb encrypt = if_required")
}

// GuestConnConf is the file smbd includes for connections to the guest's
// loopback address when it also serves the host's network (RenderSMBConf's
// "conn-%i.conf"), and its content: the guest's relaxed protection.
func GuestConnConf(runDir string) (path, content string) {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("# Written by hostd: connections to %s, which only the guest makes.", GuestLoopback)
	guestProtection(w)
	return filepath.Join(runDir, "conn-"+GuestLoopback+".conf"), b.String()
}

// RenderSMBConf is smbd's configuration for fs, a pure function of it:
// SMB2 or newer only, no guest access, no printing, no home shares, no
// NetBIOS, symlinks followed only inside their share, and — unless the
// profile opts in to the host's network — listening on loopback alone,
// which is where the guest's 10.0.2.2 lands.
//
// It refuses a file server whose names or paths are not plain text to
// smb.conf (config.FileServer.Check): a value never becomes smb.conf
// syntax, whatever hostd.json says.
//
// link, when set, is the host's address on the guests' host-only link
// (10.0.3.1/24): smbd serves it too, to that network alone. With the
// host's network served, connections there stay strict like any other
// address but loopback's.
func RenderSMBConf(fs *config.FileServer, sharesDir string, dirs Dirs, link *net.IPNet) (string, error) {
	runDir := dirs.Run
	if err := fs.Check(); err != nil {
		return "", fmt.Errorf("render smb.conf: %w", err)
	}
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("# Written by hostd at boot from the image's profile; changes are lost.")
	w("[global]")
	w("  server role = standalone server")
	w("  workgroup = WORKGROUP")
	w("  netbios name = %s", NetbiosName)
	w("  server string = thinhost")
	w("  # SMB1 off: SMB2.02 (Vista) is the oldest dialect served.")
	w("  server min protocol = SMB2_02")
	w("  smb ports = 445")
	w("  disable netbios = yes")
	if fs.HostNetwork {
		w("  # serve_on_host_network = true: every address of the host. There every")
		w("  # session is signed and encrypted, which SMB3 alone can do: an SMB2")
		w("  # client is refused at session setup. The guest's connections arrive")
		w("  # on %s (QEMU's user network) and read the file included below,", GuestLoopback)
		w("  # which relaxes that; any other address finds no file and stays strict.")
		w("  bind interfaces only = no")
		w("  server signing = mandatory")
		w("  server smb encrypt = required")
		w("  include = %s", filepath.Join(runDir, "conn-%i.conf"))
	} else if link != nil {
		guestProtection(w)
		ones, _ := link.Mask.Size()
		network := &net.IPNet{IP: link.IP.Mask(link.Mask), Mask: link.Mask}
		w("  # Loopback, where the guests' %s arrives, and the guests' host-only", GuestHostAddress)
		w("  # link (%s), to the link's network alone; the host's network does not.", link.IP)
		w("  interfaces = %s %s/%d", GuestLoopback, link.IP, ones)
		w("  bind interfaces only = yes")
		w("  hosts allow = %s %s", GuestLoopback, network)
	} else {
		guestProtection(w)
		w("  # Loopback only: the guest reaches it as %s; the host's network does not.", GuestHostAddress)
		w("  interfaces = %s", GuestLoopback)
		w("  bind interfaces only = yes")
	}
	w("  # No guest or anonymous access.")
	w("  map to guest = Never")
	w("  restrict anonymous = 2")
	w("  usershare max shares = 0")
	w("  # No printing.")
	w("  load printers = no")
	w("  printing = bsd")
	w("  printcap name = /dev/null")
	w("  disable spoolss = yes")
	w("  # Symlinks are followed only when they stay inside their share.")
	w("  follow symlinks = yes")
	w("  wide links = no")
	w("  allow insecure wide links = no")
	w("  unix extensions = no")
	w("  unix charset = UTF-8")
	w("  # Reads straight from the page cache to the socket where unsigned.")
	w("  use sendfile = yes")
	w("")
	w("  # What Windows programs expect of a drive (Office, installers, programs")
	w("  # run from the share), checked against Samba's own smbtorture suites:")
	w("  # Windows ACLs, kept in the security.NTACL xattr and evaluated by")
	w("  # Samba alone (only smbd reaches these files), so a file's owner gets")
	w("  # the full rights Windows asks for (a Unix create mask would deny")
	w("  # execute and fail opens that ask for everything); alternate data")
	w("  # streams (Zone.Identifier, application metadata) in user.DosStream.*")
	w("  # xattrs, up to 64 KiB each on the data partition (ext4 with ea_inode).")
	w("  vfs objects = acl_xattr streams_xattr")
	w("  acl_xattr:ignore system acls = yes")
	w("  # Files without a stored ACL (made before, or by the host) read as")
	w("  # owner and SYSTEM full control, as on an NTFS folder of one's own.")
	w("  acl_xattr:default acl style = windows")
	w("  # Read-only, hidden, system and archive bits in the user.DOSATTRIB")
	w("  # xattr, not squeezed into the Unix mode.")
	w("  store dos attributes = yes")
	w("  map archive = no")
	w("  map hidden = no")
	w("  map readonly = no")
	w("  map system = no")
	w("  ea support = yes")
	w("  # Byte-range locks, oplocks and leases kept by smbd itself (no host")
	w("  # program shares these files), which SMB2 leases and durable handles")
	w("  # need: Office and databases rely on them, and an open file survives a")
	w("  # short network blip or the guest's sleep.")
	w("  oplocks = yes")
	w("  level2 oplocks = yes")
	w("  smb2 leases = yes")
	w("  kernel oplocks = no")
	w("  kernel share modes = no")
	w("  posix locking = no")
	w("  durable handles = yes")
	w("  # A client's flush reaches the disk.")
	w("  strict sync = yes")
	w("  # Names as on NTFS: case-insensitive, case kept as written.")
	w("  case sensitive = no")
	w("  preserve case = yes")
	w("  short preserve case = yes")
	w("")
	w("  # The share user's account, written by hostd each boot: its NT hash alone.")
	w("  passdb backend = smbpasswd:%s", PassdbFile(dirs.Private))
	w("  # Samba's secrets and password database, in memory; the server's SID")
	w("  # comes in each boot as MACHINE.SID, the same from boot to boot.")
	w("  private dir = %s", dirs.Private)
	for _, d := range SambaRunDirs {
		switch d {
		case "ncalrpc":
			w("  %s dir = %s", d, filepath.Join(runDir, d))
		case "log":
			// Unused with logging = stdout, but smbd puts its cores
			// directory beside it.
			w("  log file = %s", filepath.Join(runDir, d, "smbd.log"))
		default:
			w("  %s directory = %s", d, filepath.Join(runDir, d))
		}
	}
	w("  logging = stdout")
	w("  log level = 1")
	for _, s := range fs.Shares {
		w("")
		w("[%s]", s.Name)
		w("  path = %s", filepath.Join(sharesDir, s.Path))
		w("  valid users = %s", fs.User)
		w("  guest ok = no")
		w("  browseable = yes")
		if s.ReadOnly {
			w("  read only = yes")
		} else {
			w("  read only = no")
			// Every file belongs to the share user, whoever it was made
			// for; permissions are the Windows ACLs above.
			w("  force user = %s", fs.User)
		}
	}
	return b.String(), nil
}

package builder

import (
	"github.com/thinhost/thinhost/images/layout/config"
	"github.com/thinhost/thinhost/profiles"
)

// SambaFiles serve the shares: Debian's smbd and pdbedit (package samba)
// and smbpasswd (samba-common-bin), the VFS modules smb.conf names for Windows ACLs and
// alternate data streams (samba-vfs-modules), with the character-set
// modules Samba asks glibc for (its default DOS code page and UTF-16).
var SambaFiles = []HostFile{
	{Src: "/usr/sbin/smbd", Package: "samba"},
	{Src: "/usr/bin/smbpasswd", Package: "samba-common-bin"},
	{Src: "/usr/bin/pdbedit", Package: "samba"},
	{Src: "/usr/lib/x86_64-linux-gnu/samba/vfs/acl_xattr.so", Package: "samba-vfs-modules"},
	{Src: "/usr/lib/x86_64-linux-gnu/samba/vfs/streams_xattr.so", Package: "samba-vfs-modules"},
	{Src: "/usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache", Package: "libc6"},
	{Src: "/usr/lib/x86_64-linux-gnu/gconv/IBM850.so", Package: "libc6"},
	{Src: "/usr/lib/x86_64-linux-gnu/gconv/UTF-16.so", Package: "libc6"},
}

// FileServerSpec is hostd's view of the profile's shares; nil without any.
func FileServerSpec(p *profiles.Profile) *config.FileServer {
	if len(p.Shares) == 0 {
		return nil
	}
	fs := &config.FileServer{User: p.FileServer.User, PasswordNTHash: config.NTHash(p.FileServer.Password), HostNetwork: p.FileServer.HostNetwork}
	for _, s := range p.Shares {
		fs.Shares = append(fs.Shares, config.Share{Name: s.Name, Path: s.Path, ReadOnly: s.ReadOnly, Drive: s.Drive})
	}
	return fs
}

#!/bin/sh
# setup-debian.sh: install what building and booting thinhost images needs on
# Debian 12 (run as root), and fetch Debian's kernel package for the example
# profiles into examples/kernel/. Safe to run again.
set -eu

here=$(cd "$(dirname "$0")" && pwd)

if [ "$(id -u)" -ne 0 ]; then
	echo "setup-debian.sh: run as root (apt-get install needs it): sudo $0" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# qemu-system-x86, ovmf: `thinhost run` and the boot tests; with
# qemu-utils, swtpm, seabios and ipxe-qemu they are also what the built
# image's system partition carries for the guests hostd runs.
# systemd-boot-efi: the boot loader put on the ESP.
# samba, samba-common-bin, samba-vfs-modules: smbd, smbpasswd and the
# acl_xattr and streams_xattr modules for the shares (the image carries
# them); smbclient and samba-testsuite (smbtorture): the tests' SMB clients.
# gdisk, dosfstools, e2fsprogs, squashfs-tools, cpio: the real checkers the
# tests run on built images.
had_samba=$(dpkg-query -W -f='${Status}' samba 2>/dev/null | grep -c 'ok installed' || true)
apt-get install -y -qq --no-install-recommends \
	qemu-system-x86 qemu-utils ovmf swtpm seabios ipxe-qemu systemd-boot-efi \
	samba samba-common-bin samba-vfs-modules smbclient samba-testsuite \
	gdisk dosfstools e2fsprogs squashfs-tools cpio ca-certificates >/dev/null
# Samba is installed for its programs, not to serve this machine's files:
# if this script brought it, it does not leave its servers running.
if [ "$had_samba" = 0 ] && command -v systemctl >/dev/null; then
	systemctl disable --now smbd nmbd samba-ad-dc >/dev/null 2>&1 || true
fi

# The newest Debian kernel package, as linux-image-amd64 depends on it.
pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
if [ -z "$pkg" ]; then
	echo "setup-debian.sh: cannot tell which linux-image package linux-image-amd64 depends on" >&2
	exit 1
fi
mkdir -p "$here/kernel"
cd "$here/kernel"
if [ ! -f "$pkg.deb" ]; then
	apt-get download -qq "$pkg" 2>/dev/null || apt-get download "$pkg"
	mv "$pkg"_*.deb "$pkg.deb"
fi
ln -sf "$pkg.deb" linux-image-amd64.deb

# The test guest of examples/qemu-test.hcl (vm "guest"): the same kernel and
# a small initramfs built from internal/testguest.
cd "$here/.."
go run ./internal/testguest/mkguest -kernel examples/kernel/linux-image-amd64.deb -o examples/kernel/guest-initrd.cpio >/dev/null
echo "setup-debian.sh: ready; kernel package examples/kernel/$pkg.deb, test guest examples/kernel/guest-initrd.cpio"

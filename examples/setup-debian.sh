#!/bin/sh
# setup-debian.sh: install what running and testing thinhost images needs
# on Debian 12 (run as root), and build the test guest of
# examples/qemu-test.hcl. What an image carries (kernel, QEMU, OVMF, Samba,
# ...) comes from Debian's archive when it is built, not from here. Safe to
# run again.
set -eu

here=$(cd "$(dirname "$0")" && pwd)

if [ "$(id -u)" -ne 0 ]; then
	echo "setup-debian.sh: run as root (apt-get install needs it): sudo $0" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# qemu-system-x86, ovmf: `thinhost run` and the boot tests; qemu-utils and
# swtpm: hostd's guest tests run them on this machine.
# systemd-boot-efi, alsa-utils: profiles without a packages block take the
# loader and (for guests with sound) amixer and alsactl from here.
# samba, samba-common-bin, samba-vfs-modules: hostd's smb.conf tests run a
# local smbd; smbclient and samba-testsuite (smbtorture): the tests' SMB
# clients.
# gdisk, dosfstools, e2fsprogs, squashfs-tools, cpio: the real checkers the
# tests run on built images. gcc: the bare test guest. chromium: the
# browser the host's page is tested in (headless).
# grub-common: grub-script-check and grub-editenv read the GRUB
# configuration and environment block the builder and hostd write.
# sbsigntool: sbverify checks the own-keys chain's signatures beside Go.
# cryptsetup-bin: cryptsetup luksDump reads the encrypted data partition.
# libxml2-utils: xmllint reads the Windows answer file hostd writes; xorriso
# reads back the helper CD hostd writes for Windows.
# qemu-guest-agent: hostd's guest agent client is tested against qemu-ga.
# iproute2: the guests' link is tested in a network namespace of its own.
# wpasupplicant: hostd's Wi-Fi client is tested against this machine's
# wpa_supplicant (its wired driver, on loopback).
had_samba=$(dpkg-query -W -f='${Status}' samba 2>/dev/null | grep -c 'ok installed' || true)
apt-get install -y -qq --no-install-recommends \
	qemu-system-x86 qemu-utils ovmf swtpm seabios ipxe-qemu systemd-boot-efi alsa-utils \
	samba samba-common-bin samba-vfs-modules smbclient samba-testsuite \
	gdisk dosfstools e2fsprogs squashfs-tools cpio ca-certificates gcc grub-common sbsigntool cryptsetup-bin libxml2-utils xorriso qemu-guest-agent iproute2 wpasupplicant chromium >/dev/null
# Samba is installed for its programs, not to serve this machine's files:
# if this script brought it, it does not leave its servers running.
if [ "$had_samba" = 0 ] && command -v systemctl >/dev/null; then
	systemctl disable --now smbd nmbd samba-ad-dc >/dev/null 2>&1 || true
fi

# The test guest of examples/qemu-test.hcl (vm "guest"): it boots the
# host's kernel, pinned by examples/qemu-test.lock and fetched from the
# archive, with a small initramfs built from internal/testguest.
cd "$here/.."
go run ./internal/testguest/mkguest -o examples/guest-initrd.cpio >/dev/null
echo "setup-debian.sh: ready; test guest examples/guest-initrd.cpio"

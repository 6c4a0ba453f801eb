package qemu

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Firmware is a UEFI firmware pair: the read-only code and the variable
// store template, of which every run gets a private copy.
type Firmware struct {
	Code, Vars string
}

// OVMFPaths are the firmware locations searched, in order: Debian and
// Ubuntu (ovmf), Fedora (edk2-ovmf), Arch (edk2-ovmf), openSUSE
// (qemu-ovmf-x86_64). The plain builds come first: thinhost images are not
// signed for Secure Boot.
var OVMFPaths = []Firmware{
	{"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"},
	{"/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"},
	{"/usr/share/edk2/ovmf/OVMF_CODE.fd", "/usr/share/edk2/ovmf/OVMF_VARS.fd"},
	{"/usr/share/edk2/x64/OVMF_CODE.4m.fd", "/usr/share/edk2/x64/OVMF_VARS.4m.fd"},
	{"/usr/share/edk2-ovmf/x64/OVMF_CODE.fd", "/usr/share/edk2-ovmf/x64/OVMF_VARS.fd"},
	{"/usr/share/qemu/ovmf-x86_64-code.bin", "/usr/share/qemu/ovmf-x86_64-vars.bin"},
}

// ErrNoFirmware means no OVMF pair was found.
var ErrNoFirmware = errors.New("no UEFI firmware (OVMF) found")

// FindOVMF returns the first pair of OVMFPaths whose two files exist.
func FindOVMF() (*Firmware, error) {
	return findFirmware(OVMFPaths)
}

func findFirmware(paths []Firmware) (*Firmware, error) {
	var tried []string
	for _, fw := range paths {
		if isFile(fw.Code) && isFile(fw.Vars) {
			f := fw
			return &f, nil
		}
		tried = append(tried, fw.Code)
	}
	return nil, fmt.Errorf("%w: looked for %s; install it (Debian: apt-get install ovmf; Fedora: dnf install edk2-ovmf; Arch: pacman -S edk2-ovmf) or pass --ovmf-code and --ovmf-vars",
		ErrNoFirmware, strings.Join(tried, ", "))
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

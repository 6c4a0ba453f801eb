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
	// SecureBoot is firmware built with Secure Boot, whose variable store
	// enrolls Microsoft's keys and enforces it: QEMU must run it with
	// SMM and its flash secured (Args does).
	SecureBoot bool
	// Setup is Secure Boot firmware whose variable store holds no keys:
	// setup mode, in which the image's loader enrolls its own keys and
	// restarts, enforcing them from then on.
	Setup bool
}

// OVMFPaths are the firmware locations searched, in order: Debian and
// Ubuntu (ovmf), Fedora (edk2-ovmf), Arch (edk2-ovmf), openSUSE
// (qemu-ovmf-x86_64). These are the builds without Secure Boot;
// SecureBootOVMFPaths has those with it.
var OVMFPaths = []Firmware{
	{Code: "/usr/share/OVMF/OVMF_CODE_4M.fd", Vars: "/usr/share/OVMF/OVMF_VARS_4M.fd"},
	{Code: "/usr/share/OVMF/OVMF_CODE.fd", Vars: "/usr/share/OVMF/OVMF_VARS.fd"},
	{Code: "/usr/share/edk2/ovmf/OVMF_CODE.fd", Vars: "/usr/share/edk2/ovmf/OVMF_VARS.fd"},
	{Code: "/usr/share/edk2/x64/OVMF_CODE.4m.fd", Vars: "/usr/share/edk2/x64/OVMF_VARS.4m.fd"},
	{Code: "/usr/share/edk2-ovmf/x64/OVMF_CODE.fd", Vars: "/usr/share/edk2-ovmf/x64/OVMF_VARS.fd"},
	{Code: "/usr/share/qemu/ovmf-x86_64-code.bin", Vars: "/usr/share/qemu/ovmf-x86_64-vars.bin"},
}

// ErrNoFirmware means no OVMF pair was found.
var ErrNoFirmware = errors.New("no UEFI firmware (OVMF) found")

// SecureBootOVMFPaths are the Secure Boot builds with a variable store
// that enrolls Microsoft's keys (as laptops ship) and enforces them:
// Debian and Ubuntu, Fedora, Arch.
var SecureBootOVMFPaths = []Firmware{
	{Code: "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd", Vars: "/usr/share/OVMF/OVMF_VARS_4M.ms.fd", SecureBoot: true},
	{Code: "/usr/share/OVMF/OVMF_CODE.secboot.fd", Vars: "/usr/share/OVMF/OVMF_VARS.ms.fd", SecureBoot: true},
	{Code: "/usr/share/edk2/ovmf/OVMF_CODE.secboot.fd", Vars: "/usr/share/edk2/ovmf/OVMF_VARS.secboot.fd", SecureBoot: true},
	{Code: "/usr/share/edk2/x64/OVMF_CODE.secboot.4m.fd", Vars: "/usr/share/edk2/x64/OVMF_VARS.4m.fd", SecureBoot: true},
}

// SecureBootSetupVars are the empty variable stores (setup mode) that go
// with SecureBootOVMFPaths' code, by code path.
var SecureBootSetupVars = map[string]string{
	"/usr/share/OVMF/OVMF_CODE_4M.secboot.fd":     "/usr/share/OVMF/OVMF_VARS_4M.fd",
	"/usr/share/OVMF/OVMF_CODE.secboot.fd":        "/usr/share/OVMF/OVMF_VARS.fd",
	"/usr/share/edk2/ovmf/OVMF_CODE.secboot.fd":   "/usr/share/edk2/ovmf/OVMF_VARS.fd",
	"/usr/share/edk2/x64/OVMF_CODE.secboot.4m.fd": "/usr/share/edk2/x64/OVMF_VARS.4m.fd",
}

// FindSecureBootSetupOVMF returns Secure Boot firmware in setup mode: the
// first of SecureBootOVMFPaths' code with its empty variable store.
func FindSecureBootSetupOVMF() (*Firmware, error) {
	var paths []Firmware
	for _, fw := range SecureBootOVMFPaths {
		paths = append(paths, Firmware{Code: fw.Code, Vars: SecureBootSetupVars[fw.Code], SecureBoot: true, Setup: true})
	}
	return findFirmware(paths)
}

// FindOVMF returns the first pair of OVMFPaths whose two files exist.
func FindOVMF() (*Firmware, error) {
	return findFirmware(OVMFPaths)
}

// FindSecureBootOVMF returns the first pair of SecureBootOVMFPaths whose
// two files exist.
func FindSecureBootOVMF() (*Firmware, error) {
	return findFirmware(SecureBootOVMFPaths)
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

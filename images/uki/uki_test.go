package uki

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// stub is systemd's EFI stub from the build machine (Debian's
// systemd-boot-efi), which the own-keys chain assembles.
const stubPath = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"

func readStub(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(stubPath)
	if err != nil {
		t.Skipf("no systemd stub (apt-get install systemd-boot-efi): %v", err)
	}
	return b
}

// TestChecksum: the PE checksum of Debian's stub is the one its linker
// wrote.
func TestChecksum(t *testing.T) {
	stub := readStub(t)
	h, err := parse(stub)
	if err != nil {
		t.Fatal(err)
	}
	if want, got := binary.LittleEndian.Uint32(stub[h.optional+64:]), Checksum(stub); got != want {
		t.Errorf("checksum %#x, the stub says %#x", got, want)
	}
}

// TestAssemble: the sections are where Go's debug/pe and binutils'
// objdump find them, with their bytes, in memory after the stub's own,
// page-aligned, and the headers add up.
func TestAssemble(t *testing.T) {
	stub := readStub(t)
	kernel := bytes.Repeat([]byte("K"), 5000)
	img, err := Assemble(stub, Sections("ID=thinhost\n", "console=ttyS0 quiet", kernel, []byte("microcode"), []byte("initramfs")))
	if err != nil {
		t.Fatal(err)
	}
	f, err := pe.NewFile(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{".osrel": "ID=thinhost\n", ".cmdline": "console=ttyS0 quiet", ".initrd": "microcodeinitramfs", ".linux": string(kernel)}
	var lastEnd uint32
	for _, s := range f.Sections {
		if s.VirtualAddress < lastEnd {
			t.Errorf("section %s at %#x overlaps the one before (ends %#x)", s.Name, s.VirtualAddress, lastEnd)
		}
		lastEnd = s.VirtualAddress + s.VirtualSize
		w, ok := want[s.Name]
		if !ok {
			continue
		}
		delete(want, s.Name)
		if s.VirtualAddress%pageSize != 0 {
			t.Errorf("section %s at %#x, not page-aligned", s.Name, s.VirtualAddress)
		}
		data, err := s.Data()
		if err != nil {
			t.Fatal(err)
		}
		if string(data[:s.VirtualSize]) != w {
			t.Errorf("section %s holds %q", s.Name, data[:min(len(data), 40)])
		}
		if got, err := SectionData(img, s.Name); err != nil || string(got) != w {
			t.Errorf("SectionData(%s) = %q, %v", s.Name, got[:min(len(got), 40)], err)
		}
	}
	if len(want) > 0 {
		t.Errorf("sections missing: %v", want)
	}
	oh := f.OptionalHeader.(*pe.OptionalHeader64)
	if oh.SizeOfImage < lastEnd || oh.SizeOfImage%oh.SectionAlignment != 0 {
		t.Errorf("SizeOfImage %#x, last section ends at %#x", oh.SizeOfImage, lastEnd)
	}
	if oh.CheckSum != Checksum(img) {
		t.Errorf("CheckSum %#x, want %#x", oh.CheckSum, Checksum(img))
	}
	if objdump, err := exec.LookPath("objdump"); err == nil {
		tmp := t.TempDir() + "/uki.efi"
		os.WriteFile(tmp, img, 0o644)
		out, err := exec.Command(objdump, "-h", tmp).CombinedOutput()
		if err != nil || !strings.Contains(string(out), ".linux") || !strings.Contains(string(out), ".initrd") {
			t.Errorf("objdump -h: %v\n%s", err, out)
		}
	}
}

// TestAssembleRefuses: what is not an unsigned PE32+ stub with room for
// the sections is refused, never written half.
func TestAssembleRefuses(t *testing.T) {
	stub := readStub(t)
	for name, c := range map[string]struct {
		stub []byte
		secs []Section
	}{
		"not PE":    {[]byte("MZ but nothing else"), Sections("a", "b", []byte("k"))},
		"empty":     {stub, []Section{{".linux", nil}}},
		"long name": {stub, []Section{{".toolongname", []byte("x")}}},
		"no room":   {stub, make([]Section, 40)},
	} {
		if _, err := Assemble(c.stub, c.secs); err == nil {
			t.Errorf("%s: assembled", name)
		}
	}
	signed := append([]byte(nil), stub...)
	h, _ := parse(signed)
	binary.LittleEndian.PutUint32(signed[h.optional+112+4*8+4:], 100)
	if _, err := Assemble(signed, Sections("a", "b", []byte("k"))); !errors.Is(err, ErrNotPE) {
		t.Errorf("a signed stub: %v", err)
	}
}

// FuzzAssemble: any bytes as a stub give an error or an image, never a
// panic (the stub comes from a package, but is not trusted).
func FuzzAssemble(f *testing.F) {
	if b, err := os.ReadFile(stubPath); err == nil {
		f.Add(b[:min(len(b), 4096)])
	}
	f.Add([]byte("MZ"))
	f.Fuzz(func(t *testing.T, b []byte) {
		Assemble(b, Sections("a", "b", []byte("kernel")))
		SectionData(b, ".linux")
		Checksum(b)
	})
}

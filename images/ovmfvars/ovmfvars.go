// Package ovmfvars reads and edits OVMF's UEFI variable store (the
// OVMF_VARS*.fd files): a firmware volume holding edk2's authenticated
// variable store. thinhost uses it to add Microsoft's 2023 Secure Boot
// certificates to the store Debian's ovmf package ships with only the
// 2011 ones: Windows media signed by the "Windows UEFI CA 2023" boot only
// with it in db.
//
// The layout (edk2's MdeModulePkg VariableFormat.h): the firmware volume
// header (its length at offset 48), then the variable store header
// (a GUID, the store's size, format 0x5a, state 0xfe), then variables, each
// an authenticated header (start id 0x55aa, state, attributes, monotonic
// count, time stamp, public key index, name and data sizes, vendor GUID),
// the UTF-16 name and the data, 4-byte aligned. A variable is replaced by
// marking the old one deleted and writing the new one after the last:
// what the firmware itself does, so every other byte stays as the package
// made it.
package ovmfvars

import (
	"bytes"
	"crypto/x509"
	"embed"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf16"

	"github.com/foxboron/go-uefi/efi/signature"
	"github.com/foxboron/go-uefi/efi/util"
)

// GUIDs of the variables and owners this package touches.
var (
	// GlobalVariable owns PK and KEK; ImageSecurityDatabase db and dbx.
	GlobalVariable        = *util.StringToGUID("8be4df61-93ca-11d2-aa0d-00e098032b8c")
	ImageSecurityDatabase = *util.StringToGUID("d719b2cb-3d3a-4596-a3bc-dad00e67656f")
	// Microsoft is the owner GUID Microsoft's certificates carry in
	// signature lists.
	Microsoft = *util.StringToGUID("77fa9abd-0359-4d32-bd60-28f4e78f784b")
	// authenticatedStore is the variable store GUID of a store with
	// authenticated variable headers.
	authenticatedStore = *util.StringToGUID("aaf32c78-947b-439a-a180-2e144ec37792")
)

const (
	headerSize = 60 // authenticated variable header
	startID    = 0x55aa
	// Variable states (bits cleared as a variable goes through them).
	stateAdded      = 0x3f
	stateInDeletion = 0x3e // added, in deleted transition (0x3f & 0xfe)
	deletedBit      = 0x02 // VAR_DELETED clears it
)

// Variable is one variable of the store, as the firmware would read it.
type Variable struct {
	Name       string
	Vendor     util.EFIGUID
	Attributes uint32
	Data       []byte

	offset int // of its header in the file
	size   int // header, name and data, aligned
	state  byte
	header []byte
}

// Store is a variable store file, parsed.
type Store struct {
	raw []byte
	// storeStart and storeEnd bound the variable area; end is where the
	// next variable goes.
	storeStart, storeEnd, end int
	vars                      []*Variable
}

// Parse reads an OVMF_VARS file.
func Parse(raw []byte) (*Store, error) {
	if len(raw) < 0x48+28 || string(raw[40:44]) != "_FVH" {
		return nil, errors.New("not a UEFI firmware volume (no _FVH signature)")
	}
	hlen := int(binary.LittleEndian.Uint16(raw[48:50]))
	if hlen < 0x48 || hlen+28 > len(raw) {
		return nil, fmt.Errorf("firmware volume header length %d out of range", hlen)
	}
	var g util.EFIGUID
	if err := binary.Read(bytes.NewReader(raw[hlen:hlen+16]), binary.LittleEndian, &g); err != nil {
		return nil, err
	}
	if !util.CmpEFIGUID(g, authenticatedStore) {
		return nil, fmt.Errorf("variable store %s is not an authenticated store", g.Format())
	}
	size := int(binary.LittleEndian.Uint32(raw[hlen+16 : hlen+20]))
	if raw[hlen+20] != 0x5a || size < 28 || hlen+size > len(raw) {
		return nil, fmt.Errorf("variable store header: format %#x, size %d in a %d-byte file", raw[hlen+20], size, len(raw))
	}
	s := &Store{raw: append([]byte(nil), raw...), storeStart: hlen, storeEnd: hlen + size}
	p := hlen + 28
	for p+headerSize <= s.storeEnd && binary.LittleEndian.Uint16(raw[p:]) == startID {
		h := raw[p : p+headerSize]
		nameSize := int(binary.LittleEndian.Uint32(h[36:40]))
		dataSize := int(binary.LittleEndian.Uint32(h[40:44]))
		if nameSize < 2 || nameSize%2 != 0 || dataSize < 0 || p+headerSize+nameSize+dataSize > s.storeEnd {
			return nil, fmt.Errorf("variable at %#x: name %d and data %d bytes run past the store", p, nameSize, dataSize)
		}
		v := &Variable{offset: p, state: h[2], Attributes: binary.LittleEndian.Uint32(h[4:8]), header: h}
		_ = binary.Read(bytes.NewReader(h[44:60]), binary.LittleEndian, &v.Vendor)
		name := raw[p+headerSize : p+headerSize+nameSize]
		u := make([]uint16, nameSize/2)
		for i := range u {
			u[i] = binary.LittleEndian.Uint16(name[2*i:])
		}
		for len(u) > 0 && u[len(u)-1] == 0 {
			u = u[:len(u)-1]
		}
		v.Name = string(utf16.Decode(u))
		v.Data = raw[p+headerSize+nameSize : p+headerSize+nameSize+dataSize]
		v.size = align4(headerSize + nameSize + dataSize)
		s.vars = append(s.vars, v)
		p += v.size
	}
	s.end = p
	for i := p; i < s.storeEnd; i++ {
		if raw[i] != 0xff {
			return nil, fmt.Errorf("variable store: no variable header at %#x, yet the space after is not empty", p)
		}
	}
	return s, nil
}

func align4(n int) int { return (n + 3) &^ 3 }

// live says whether v is the variable the firmware reads: added and not
// deleted, or in deleted transition with no added copy after it.
func (s *Store) live(v *Variable) bool {
	switch v.state {
	case stateAdded:
		return true
	case stateInDeletion:
		for _, o := range s.vars {
			if o != v && o.state == stateAdded && o.Name == v.Name && util.CmpEFIGUID(o.Vendor, v.Vendor) {
				return false
			}
		}
		return true
	}
	return false
}

// Variables are the store's live variables, in order.
func (s *Store) Variables() []*Variable {
	var out []*Variable
	for _, v := range s.vars {
		if s.live(v) {
			out = append(out, v)
		}
	}
	return out
}

// Lookup returns the live variable name of vendor, or nil.
func (s *Store) Lookup(name string, vendor util.EFIGUID) *Variable {
	for _, v := range s.Variables() {
		if v.Name == name && util.CmpEFIGUID(v.Vendor, vendor) {
			return v
		}
	}
	return nil
}

// Certificates lists the X.509 certificates in the signature lists of the
// live variable name of vendor (db, KEK, PK).
func (s *Store) Certificates(name string, vendor util.EFIGUID) ([]*x509.Certificate, error) {
	v := s.Lookup(name, vendor)
	if v == nil {
		return nil, fmt.Errorf("no variable %s", name)
	}
	sdb, err := signature.ReadSignatureDatabase(bytes.NewReader(v.Data))
	if err != nil {
		return nil, fmt.Errorf("variable %s: %w", name, err)
	}
	var out []*x509.Certificate
	for _, l := range sdb {
		if !util.CmpEFIGUID(l.SignatureType, signature.CERT_X509_GUID) {
			continue
		}
		for _, sd := range l.Signatures {
			c, err := x509.ParseCertificate(sd.Data)
			if err != nil {
				return nil, fmt.Errorf("variable %s: %w", name, err)
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// AddCertificates appends X.509 certificates (DER), owned by owner, to the
// signature lists of the live variable name of vendor, skipping those it
// holds already: the old variable is marked deleted and the new one
// written after the last, with the old one's attributes, monotonic count
// and time stamp.
func (s *Store) AddCertificates(name string, vendor util.EFIGUID, owner util.EFIGUID, certs [][]byte) error {
	v := s.Lookup(name, vendor)
	if v == nil {
		return fmt.Errorf("add certificates to %s: the store has no such variable", name)
	}
	sdb, err := signature.ReadSignatureDatabase(bytes.NewReader(v.Data))
	if err != nil {
		return fmt.Errorf("add certificates to %s: %w", name, err)
	}
	added := 0
	for _, c := range certs {
		if sdb.BytesExists(signature.CERT_X509_GUID, owner, c) {
			continue
		}
		if err := sdb.Append(signature.CERT_X509_GUID, owner, c); err != nil {
			return fmt.Errorf("add certificates to %s: %w", name, err)
		}
		added++
	}
	if added == 0 {
		return nil
	}
	data := sdb.Bytes()
	nameBytes := v.header[36:40]
	nameSize := int(binary.LittleEndian.Uint32(nameBytes))
	size := align4(headerSize + nameSize + len(data))
	if s.end+size > s.storeEnd {
		return fmt.Errorf("add certificates to %s: %d bytes do not fit in the store's %d free", name, size, s.storeEnd-s.end)
	}
	// The new variable: the old header with the new data size, its name,
	// the new data, padding as the firmware leaves it (0xff).
	nv := make([]byte, size)
	for i := range nv {
		nv[i] = 0xff
	}
	copy(nv, s.raw[v.offset:v.offset+headerSize+nameSize])
	nv[2] = stateAdded
	binary.LittleEndian.PutUint32(nv[40:44], uint32(len(data)))
	copy(nv[headerSize+nameSize:], data)
	copy(s.raw[s.end:], nv)
	// The old one is deleted only once the new one is written, as the
	// firmware does, so a reader never finds neither.
	s.raw[v.offset+2] &^= deletedBit
	reparsed, err := Parse(s.raw)
	if err != nil {
		return fmt.Errorf("add certificates to %s: the store does not read back: %w", name, err)
	}
	*s = *reparsed
	return nil
}

// Bytes is the store file as it stands.
func (s *Store) Bytes() []byte { return append([]byte(nil), s.raw...) }

//go:embed certs/*.der
var certFS embed.FS

// Microsoft2023 are Microsoft's 2023 Secure Boot certificates, as Debian
// ships them (python3-virt-firmware 24.2-1~bpo12+1, bookworm-backports:
// virt/firmware/certs/*.pem, converted to DER): the KEK ("Microsoft
// Corporation KEK 2K CA 2023") and db's "Windows UEFI CA 2023" (Windows'
// boot manager) and "Microsoft UEFI CA 2023" (third parties: shim, option
// ROMs). Their SHA-256 fingerprints are checked in the tests.
func Microsoft2023() (kek [][]byte, db [][]byte) {
	read := func(name string) []byte {
		b, err := certFS.ReadFile("certs/" + name + ".der")
		if err != nil {
			panic(err) // embedded: present by construction
		}
		return b
	}
	return [][]byte{read("MicrosoftCorporationKEK2KCA2023")},
		[][]byte{read("WindowsUEFICA2023"), read("MicrosoftUEFICA2023")}
}

// WithMicrosoft2023 returns the variable store raw with Microsoft's 2023
// KEK and db certificates added beside those it has.
func WithMicrosoft2023(raw []byte) ([]byte, error) {
	s, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	kek, db := Microsoft2023()
	if err := s.AddCertificates("KEK", GlobalVariable, Microsoft, kek); err != nil {
		return nil, err
	}
	if err := s.AddCertificates("db", ImageSecurityDatabase, Microsoft, db); err != nil {
		return nil, err
	}
	return s.Bytes(), nil
}

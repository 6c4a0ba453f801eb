// Package secureboot holds the own-keys Secure Boot chain's keys and what
// is made with them: Authenticode signatures of EFI programs (the loader
// and the unified kernel image), and the authenticated variables
// (PK.auth, KEK.auth, db.auth) that enroll the keys in a laptop's firmware
// from setup mode. The cryptography is go-uefi's (the library sbctl is
// built on); this package chooses what is signed with which key.
//
// A key set is a directory holding PK, KEK and db, each as NAME.key (a
// PEM private key: RSA, which every firmware verifies) and NAME.crt (its
// PEM X.509 certificate): what [Generate] writes, and the layout of
// sbctl's keys flattened.
package secureboot

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/foxboron/go-uefi/authenticode"
	"github.com/foxboron/go-uefi/efi/signature"
	"github.com/foxboron/go-uefi/efi/util"
	"github.com/foxboron/go-uefi/efivar"
)

// Names are the keys of a set, from the top of the chain down: the
// platform key signs the KEK's enrollment, the KEK signs db's, and db's
// key signs the programs the firmware starts.
var Names = []string{"PK", "KEK", "db"}

// Owner is the owner GUID of thinhost's entries in the signature lists.
var Owner = *util.StringToGUID("a8e1b1b5-7bd0-4b38-9a51-7468696e686f")

// Pair is one key and its certificate.
type Pair struct {
	Key  crypto.Signer
	Cert *x509.Certificate
}

// Keys is a key set.
type Keys struct {
	Dir         string
	PK, KEK, DB Pair
}

func (k *Keys) pair(name string) *Pair {
	switch name {
	case "PK":
		return &k.PK
	case "KEK":
		return &k.KEK
	default:
		return &k.DB
	}
}

// ErrKeys means a key set is missing or unusable.
var ErrKeys = errors.New("secure boot keys")

// Load reads the key set in dir. Each error names the file and what to do.
func Load(dir string) (*Keys, error) {
	k := &Keys{Dir: dir}
	for _, name := range Names {
		p := k.pair(name)
		keyPath, certPath := filepath.Join(dir, name+".key"), filepath.Join(dir, name+".crt")
		kb, err := os.ReadFile(keyPath)
		if err != nil {
			return nil, fmt.Errorf("%w: read %s (thinhost keys %s makes a set): %w", ErrKeys, keyPath, dir, err)
		}
		if p.Key, err = parseKey(kb); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrKeys, keyPath, err)
		}
		cb, err := os.ReadFile(certPath)
		if err != nil {
			return nil, fmt.Errorf("%w: read %s: %w", ErrKeys, certPath, err)
		}
		blk, _ := pem.Decode(cb)
		if blk == nil || blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%w: %s is not a PEM certificate", ErrKeys, certPath)
		}
		if p.Cert, err = x509.ParseCertificate(blk.Bytes); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrKeys, certPath, err)
		}
		pub, ok := p.Cert.PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%w: %s: the key is not RSA (firmware verifies RSA-2048 signatures; make RSA keys)", ErrKeys, certPath)
		}
		if !pub.Equal(p.Key.Public()) {
			return nil, fmt.Errorf("%w: %s is not the certificate of %s", ErrKeys, certPath, keyPath)
		}
	}
	return k, nil
}

func parseKey(b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("not a PEM private key")
	}
	var key any
	var err error
	switch blk.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("a PEM %q, not a private key (an encrypted key must be decrypted first)", blk.Type)
	}
	if err != nil {
		return nil, err
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an RSA key (firmware verifies RSA-2048 signatures)")
	}
	return rk, nil
}

// Generate writes a new key set into dir (made if missing): RSA-2048 keys
// (what every firmware verifies), readable by their owner only, and
// certificates valid for 20 years, named "NAME thinhost (cn)". It refuses
// to overwrite a key that exists.
func Generate(dir, cn string) (*Keys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("make key directory: %w", err)
	}
	for _, name := range Names {
		for _, ext := range []string{".key", ".crt"} {
			if _, err := os.Lstat(filepath.Join(dir, name+ext)); err == nil {
				return nil, fmt.Errorf("%w: %s exists: keys are never overwritten (move them away to make new ones)", ErrKeys, filepath.Join(dir, name+ext))
			}
		}
	}
	for _, name := range Names {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("generate %s key: %w", name, err)
		}
		serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
		if err != nil {
			return nil, err
		}
		now := time.Now()
		tmpl := &x509.Certificate{
			SerialNumber: serial,
			Subject:      pkix.Name{CommonName: fmt.Sprintf("%s thinhost (%s)", name, cn)},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.AddDate(20, 0, 0),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			// Code signing, as sbctl and the firmware's own keys have.
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			return nil, fmt.Errorf("make %s certificate: %w", name, err)
		}
		kb := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
		if err := writeNew(filepath.Join(dir, name+".key"), kb, 0o600); err != nil {
			return nil, err
		}
		cb := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		if err := writeNew(filepath.Join(dir, name+".crt"), cb, 0o644); err != nil {
			return nil, err
		}
	}
	return Load(dir)
}

func writeNew(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// Sign returns the EFI program img signed with db's key (Authenticode,
// SHA-256), which the firmware checks against db.
func (k *Keys) Sign(img []byte) ([]byte, error) {
	p, err := authenticode.Parse(bytes.NewReader(img))
	if err != nil {
		return nil, fmt.Errorf("sign EFI program: %w", err)
	}
	if _, err := p.Sign(k.DB.Key, k.DB.Cert); err != nil {
		return nil, fmt.Errorf("sign EFI program: %w", err)
	}
	return p.Bytes(), nil
}

// Verify checks img's Authenticode signature against cert, as the
// firmware does with db.
func Verify(img []byte, cert *x509.Certificate) error {
	p, err := authenticode.Parse(bytes.NewReader(img))
	if err != nil {
		return fmt.Errorf("verify EFI program: %w", err)
	}
	ok, err := p.Verify(cert)
	if err != nil {
		return fmt.Errorf("verify EFI program: %w", err)
	}
	if !ok {
		return errors.New("verify EFI program: no signature by " + cert.Subject.CommonName)
	}
	return nil
}

// AuthFiles are the authenticated variables that enroll the set from
// setup mode, by file name (as systemd-boot reads them from
// /loader/keys/NAME/): db signed by KEK, KEK by PK, PK by itself.
// Certificates (NAME.cer, DER) are there too, for firmware setup screens
// that import a certificate from a FAT volume instead.
func (k *Keys) AuthFiles() (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, v := range []struct {
		name     string
		variable efivar.Efivar
		cert     *x509.Certificate
		signer   Pair
	}{
		{"PK", efivar.PK, k.PK.Cert, k.PK},
		{"KEK", efivar.KEK, k.KEK.Cert, k.PK},
		{"db", efivar.Db, k.DB.Cert, k.KEK},
	} {
		sl := signature.NewSignatureDatabase()
		if err := sl.Append(signature.CERT_X509_GUID, Owner, v.cert.Raw); err != nil {
			return nil, fmt.Errorf("make %s signature list: %w", v.name, err)
		}
		_, auth, err := signature.SignEFIVariable(v.variable, sl, v.signer.Key, v.signer.Cert)
		if err != nil {
			return nil, fmt.Errorf("sign %s variable: %w", v.name, err)
		}
		out[v.name+".auth"] = auth.Bytes()
		out[v.name+".cer"] = v.cert.Raw
	}
	return out, nil
}

// Certificates are the X.509 certificates of a signature database (the
// EFI_SIGNATURE_LIST format of the db variable, without its attributes);
// hashes and other entries are skipped. Every length is checked against
// the bytes there are: a damaged variable is an error, not a panic or an
// allocation the lengths ask for.
func Certificates(esl []byte) ([]*x509.Certificate, error) {
	const header = 16 + 4 + 4 + 4 // SignatureType, ListSize, HeaderSize, SignatureSize
	// The GUID as the list stores it: its first three fields
	// little-endian.
	var x509Type bytes.Buffer
	binary.Write(&x509Type, binary.LittleEndian, signature.CERT_X509_GUID)
	var out []*x509.Certificate
	for off := 0; off < len(esl); {
		if len(esl)-off < header {
			return nil, fmt.Errorf("read signature database: %d bytes left at %d, no list header", len(esl)-off, off)
		}
		l := esl[off:]
		listSize := uint64(binary.LittleEndian.Uint32(l[16:]))
		hdrSize := uint64(binary.LittleEndian.Uint32(l[20:]))
		sigSize := uint64(binary.LittleEndian.Uint32(l[24:]))
		if listSize > uint64(len(l)) || listSize < header+hdrSize || sigSize < 16 || (listSize-header-hdrSize)%sigSize != 0 {
			return nil, fmt.Errorf("read signature database: the list at %d has impossible sizes (list %d, header %d, signature %d)", off, listSize, hdrSize, sigSize)
		}
		if bytes.Equal(l[:16], x509Type.Bytes()) {
			for s := header + hdrSize; s < listSize; s += sigSize {
				// The owner's GUID, then the certificate.
				if c, err := x509.ParseCertificate(l[s+16 : s+sigSize]); err == nil {
					out = append(out, c)
				}
			}
		}
		off += int(listSize)
	}
	return out, nil
}

// VerifyAny checks img's signature against certs, as the firmware checks
// a program against db: one match is enough.
func VerifyAny(img []byte, certs []*x509.Certificate) error {
	if len(certs) == 0 {
		return errors.New("verify EFI program: no certificate to verify against")
	}
	var last error
	for _, c := range certs {
		if last = Verify(img, c); last == nil {
			return nil
		}
	}
	return fmt.Errorf("no certificate of %d verifies it: %w", len(certs), last)
}

package secureboot

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/foxboron/go-uefi/efi/signature"

	"github.com/thinhost/thinhost/images/uki"
)

const stubPath = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"

// TestKeys: a generated set loads, is never overwritten, and a
// certificate that is not its key's is refused with the file named.
func TestKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	k, err := Generate(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "db.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("db.key: %v %v", fi.Mode(), err)
	}
	if !strings.Contains(k.DB.Cert.Subject.CommonName, "db thinhost (test)") {
		t.Errorf("db certificate: %s", k.DB.Cert.Subject)
	}
	if _, err := Generate(dir, "test"); err == nil || !strings.Contains(err.Error(), "never overwritten") {
		t.Errorf("generate over a set: %v", err)
	}
	os.Rename(filepath.Join(dir, "KEK.crt"), filepath.Join(dir, "x"))
	os.Link(filepath.Join(dir, "PK.crt"), filepath.Join(dir, "KEK.crt"))
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "KEK.crt is not the certificate of") {
		t.Errorf("a mismatched certificate: %v", err)
	}
	if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "PK.key") {
		t.Errorf("an empty directory: %v", err)
	}
}

// TestSign: a UKI signed with db's key verifies against db's certificate
// and not against another (Go, and Debian's sbverify when installed).
func TestSign(t *testing.T) {
	stub, err := os.ReadFile(stubPath)
	if err != nil {
		t.Skipf("no systemd stub: %v", err)
	}
	k, err := Generate(t.TempDir(), "test")
	if err != nil {
		t.Fatal(err)
	}
	img, err := uki.Assemble(stub, uki.Sections("ID=thinhost\n", "quiet", bytes.Repeat([]byte{1}, 10000), []byte("initrd")))
	if err != nil {
		t.Fatal(err)
	}
	signed, err := k.Sign(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(signed, k.DB.Cert); err != nil {
		t.Errorf("verify with db: %v", err)
	}
	if err := Verify(signed, k.KEK.Cert); err == nil {
		t.Error("verifies with KEK's certificate")
	}
	if err := Verify(img, k.DB.Cert); err == nil {
		t.Error("the unsigned image verifies")
	}
	if got, err := uki.SectionData(signed, ".cmdline"); err != nil || string(got) != "quiet" {
		t.Errorf("signed image's .cmdline: %q %v", got, err)
	}
	if sbverify, err := exec.LookPath("sbverify"); err == nil {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "uki.efi"), signed, 0o644)
		out, err := exec.Command(sbverify, "--cert", filepath.Join(k.Dir, "db.crt"), filepath.Join(dir, "uki.efi")).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Signature verification OK") {
			t.Errorf("sbverify: %v\n%s", err, out)
		}
	} else {
		t.Log("sbverify not installed (apt-get install sbsigntool): checked in Go only")
	}
}

// TestAuthFiles: each enrollment file is signed by the key above it and
// carries its own certificate.
func TestAuthFiles(t *testing.T) {
	k, err := Generate(t.TempDir(), "test")
	if err != nil {
		t.Fatal(err)
	}
	files, err := k.AuthFiles()
	if err != nil {
		t.Fatal(err)
	}
	for name, signer := range map[string]Pair{"PK": k.PK, "KEK": k.PK, "db": k.KEK} {
		b := bytes.NewBuffer(append([]byte(nil), files[name+".auth"]...))
		auth := signature.NewEFIVariableAuthentication2()
		if err := auth.Unmarshal(b); err != nil {
			t.Fatalf("%s.auth: %v", name, err)
		}
		if ok, err := auth.Verify(signer.Cert); !ok || err != nil {
			t.Errorf("%s.auth does not verify with %s: %v", name, signer.Cert.Subject.CommonName, err)
		}
		db, err := signature.ReadSignatureDatabase(b)
		if err != nil || len(db) != 1 || len(db[0].Signatures) != 1 {
			t.Fatalf("%s.auth's signature list: %v %v", name, db, err)
		}
		if want := k.pair(name).Cert.Raw; !bytes.Equal(db[0].Signatures[0].Data, want) || !bytes.Equal(files[name+".cer"], want) {
			t.Errorf("%s.auth does not carry %s's certificate", name, name)
		}
	}
}

// TestCertificates: db's certificates are read back from the signature
// list the enrollment carries, and a program verifies against the set it
// was signed for only.
func TestCertificates(t *testing.T) {
	k, err := Generate(t.TempDir(), "test")
	if err != nil {
		t.Fatal(err)
	}
	other, err := Generate(t.TempDir(), "other")
	if err != nil {
		t.Fatal(err)
	}
	files, err := k.AuthFiles()
	if err != nil {
		t.Fatal(err)
	}
	b := bytes.NewBuffer(append([]byte(nil), files["db.auth"]...))
	if err := signature.NewEFIVariableAuthentication2().Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	certs, err := Certificates(b.Bytes())
	if err != nil || len(certs) != 1 || !certs[0].Equal(k.DB.Cert) {
		t.Fatalf("Certificates = %v, %v", certs, err)
	}
	stub, err := os.ReadFile(stubPath)
	if err != nil {
		t.Skipf("no systemd stub: %v", err)
	}
	signed, err := other.Sign(stub)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyAny(signed, certs); err == nil {
		t.Error("a program signed with another set verifies")
	}
	if err := VerifyAny(signed, append(certs, other.DB.Cert)); err != nil {
		t.Errorf("with its own db certificate among them: %v", err)
	}
	if c, err := Certificates([]byte("junk that is no list")); err == nil {
		t.Errorf("junk read as certificates: %v", c)
	}
}

// FuzzCertificates: a damaged db variable is an error or no certificates,
// never a panic in hostd.
func FuzzCertificates(f *testing.F) {
	k, err := Generate(f.TempDir(), "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	sl := signature.NewSignatureDatabase()
	sl.Append(signature.CERT_X509_GUID, Owner, k.DB.Cert.Raw)
	f.Add(sl.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		Certificates(b)
	})
}

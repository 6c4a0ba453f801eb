package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"
)

// The API on the host's network is HTTPS with a certificate hostd makes
// itself: no authority vouches for it, so a client pins its fingerprint,
// which the host shows on its console and in its status.

// Fingerprint is the SHA-256 of a certificate (its DER bytes) as hex pairs
// joined by colons, the form browsers show in their certificate viewers.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// normalFingerprint is fp as 64 lower-case hex digits, whatever people
// write around them (colons, spaces, a "sha256:" prefix), or "" when it is
// not a SHA-256 in hex.
func normalFingerprint(fp string) string {
	fp = strings.ToLower(strings.TrimSpace(fp))
	fp = strings.TrimPrefix(strings.TrimPrefix(fp, "sha256"), ":")
	fp = strings.NewReplacer(":", "", " ", "", "-", "").Replace(fp)
	if len(fp) != 64 || strings.Trim(fp, "0123456789abcdef") != "" {
		return ""
	}
	return fp
}

// ErrFingerprint means a fingerprint given to a client is not a SHA-256.
var ErrFingerprint = errors.New("a certificate fingerprint is a SHA-256: 64 hex digits, colons allowed (as the host's console shows it)")

// PinnedTLS is a client configuration that accepts the one certificate
// whose fingerprint is fp, and no other: not a certificate some authority
// signed, not one for the right name.
func PinnedTLS(fp string) (*tls.Config, error) {
	want := normalFingerprint(fp)
	if want == "" {
		return nil, ErrFingerprint
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// Verified below, against the pin alone.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the host sent no certificate")
			}
			if got := Fingerprint(cs.PeerCertificates[0].Raw); normalFingerprint(got) != want {
				return &FingerprintError{Got: got}
			}
			return nil
		},
	}, nil
}

// FingerprintError is a host whose certificate is not the pinned one.
type FingerprintError struct{ Got string }

func (e *FingerprintError) Error() string {
	return fmt.Sprintf("the host's certificate is %s, not the fingerprint given: if the host made a new one (a new data partition), compare it with the host's console; otherwise something else answers at this address", e.Got)
}

// HTTPSRequiredError is a host that speaks HTTPS where the client spoke
// plain HTTP: the API on the host's network.
type HTTPSRequiredError struct {
	Addr string
	// Fingerprint is the certificate the host presented (unverified), or
	// "" when it could not be read.
	Fingerprint string
}

func (e *HTTPSRequiredError) Error() string {
	fp := "the fingerprint on the host's console"
	if e.Fingerprint != "" {
		fp = e.Fingerprint + " (the certificate " + e.Addr + " presented: compare it with the host's console first)"
	}
	return fmt.Sprintf("%s serves the API over HTTPS with a certificate of its own: pass --fingerprint %s, or set THINHOST_FINGERPRINT", e.Addr, fp)
}

// presentedFingerprint reads the certificate addr presents, unverified:
// for telling a person what to compare.
func presentedFingerprint(addr string) string {
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12})
	if err != nil {
		return ""
	}
	defer c.Close()
	if certs := c.ConnectionState().PeerCertificates; len(certs) > 0 {
		return Fingerprint(certs[0].Raw)
	}
	return ""
}

// splitTLS hands over connections to a loopback address, and those plain
// says are the guests' (their host-only link), as they come and wraps
// every other one in TLS with cfg.
type splitTLS struct {
	net.Listener
	cfg   *tls.Config
	plain func(local, remote net.Addr) bool
}

func (s *splitTLS) Accept() (net.Conn, error) {
	c, err := s.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok && a.IP.IsLoopback() {
		return c, nil
	}
	if s.plain != nil && s.plain(c.LocalAddr(), c.RemoteAddr()) {
		return c, nil
	}
	// net/http runs the handshake under the server's timeouts.
	return tls.Server(c, s.cfg), nil
}

// ServerTLS is the server's configuration for its certificate.
func ServerTLS(cert tls.Certificate) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"}}
}

// CertFingerprint is the fingerprint of cert's leaf.
func CertFingerprint(cert tls.Certificate) (string, error) {
	if len(cert.Certificate) == 0 {
		return "", errors.New("no certificate")
	}
	if _, err := x509.ParseCertificate(cert.Certificate[0]); err != nil {
		return "", err
	}
	return Fingerprint(cert.Certificate[0]), nil
}

// NewCertificate makes a self-signed certificate for hostname, the
// API's on the host's network, and its key, both PEM. No authority
// vouches for it: clients pin its fingerprint. Its dates span decades on
// purpose: a laptop's clock may be wrong, and a pin does not expire.
func NewCertificate(hostname string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: hostname, Organization: []string{"thinhost"}},
		DNSNames:     []string{hostname},
		NotBefore:    time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2099, 12, 31, 0, 0, 0, 0, time.UTC),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

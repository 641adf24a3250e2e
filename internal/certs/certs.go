// Package certs gives a host its TLS certificate: the operator's, or a
// self-signed one it makes on first use and keeps in its data directory.
// Clients pin a self-signed certificate by its SHA-256 fingerprint, which
// the host prints with its connection info.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Dir is the folder of the self-signed certificate in a data directory.
const Dir = "tls"

// Paths returns where a data directory keeps its self-signed certificate
// and key.
func Paths(dataDir string) (cert, key string) {
	d := filepath.Join(dataDir, Dir)
	return filepath.Join(d, "cert.pem"), filepath.Join(d, "key.pem")
}

// LoadOrCreate loads the data directory's self-signed certificate, making
// it first if there is none: ECDSA P-256, valid ten years, for localhost,
// the loopback addresses, this machine's name and hosts.
func LoadOrCreate(dataDir string, hosts []string) (tls.Certificate, error) {
	certPath, keyPath := Paths(dataDir)
	if c, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil {
		return c, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return tls.Certificate{}, fmt.Errorf("tls certificate in %s: %w (remove it to make a new one)", filepath.Dir(certPath), err)
	}
	if err := os.MkdirAll(filepath.Dir(certPath), 0o700); err != nil {
		return tls.Certificate{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	name, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "shmgr host " + name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if name != "" {
		tmpl.DNSNames = append(tmpl.DNSNames, name)
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return tls.Certificate{}, err
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return tls.LoadX509KeyPair(certPath, keyPath)
}

// Fingerprint returns the SHA-256 of a certificate's DER bytes as
// colon-separated upper-case hex, as browsers and openssl show it.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// FileFingerprint returns the fingerprint of the first certificate in a
// PEM file.
func FileFingerprint(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return "", fmt.Errorf("%s: no PEM certificate", path)
	}
	return Fingerprint(blk.Bytes), nil
}

// NormalizeFingerprint turns a fingerprint given in any common spelling
// (colons or not, any case) into 64 lower-case hex digits.
func NormalizeFingerprint(fp string) (string, error) {
	s := strings.ToLower(strings.NewReplacer(":", "", " ", "", "-", "").Replace(fp))
	if b, err := hex.DecodeString(s); err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("fingerprint %q: want the 64 hex digits of a SHA-256 (colons allowed)", fp)
	}
	return s, nil
}

// PinnedConfig returns a client TLS config that accepts exactly the
// certificate with this SHA-256 fingerprint, self-signed or not.
func PinnedConfig(fingerprint string) (*tls.Config, error) {
	want, err := NormalizeFingerprint(fingerprint)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by the pin check below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return &PinError{}
			}
			sum := sha256.Sum256(raw[0])
			if got := hex.EncodeToString(sum[:]); got != want {
				return &PinError{Got: Fingerprint(raw[0])}
			}
			return nil
		},
	}, nil
}

// PinError is the handshake error of a PinnedConfig whose host sent no
// certificate, or another one than the pinned: crypto/tls returns it as
// is, so errors.As tells a pin that failed from other connection errors
// without reading the message.
type PinError struct {
	// Got is the fingerprint of the certificate the host sent, as
	// Fingerprint writes it; "" if it sent none.
	Got string
}

func (e *PinError) Error() string {
	if e.Got == "" {
		return "tls: the host sent no certificate"
	}
	return "tls: the host's certificate has fingerprint " + e.Got + ", not the pinned one: wrong host, or its certificate changed"
}

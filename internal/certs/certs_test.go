package certs

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// fingerprintRE is the form Fingerprint prints: 32 colon-separated pairs
// of upper-case hex digits.
var fingerprintRE = regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`)

func TestLoadOrCreate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c, err := LoadOrCreate(dir, []string{"192.0.2.7", "shm.example", ""})
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := Paths(dir)
	if want := filepath.Join(dir, Dir, "cert.pem"); certPath != want {
		t.Errorf("Paths cert = %q, want %q", certPath, want)
	}
	for path, want := range map[string]os.FileMode{filepath.Join(dir, Dir): 0o700, keyPath: 0o600, certPath: 0o644} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatalf("%s not created: %v", path, err)
		}
		if got := st.Mode().Perm(); got != want {
			t.Errorf("%s mode = %v, want %v", path, got, want)
		}
	}
	if len(c.Certificate) != 1 {
		t.Fatalf("certificate chain has %d certificates, want 1", len(c.Certificate))
	}
	x, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := x.CheckSignature(x.SignatureAlgorithm, x.RawTBSCertificate, x.Signature); err != nil {
		t.Errorf("the certificate is not self-signed: %v", err)
	}
	if !slices.Contains(x.DNSNames, "localhost") || !slices.Contains(x.DNSNames, "shm.example") || slices.Contains(x.DNSNames, "") {
		t.Errorf("DNS names = %q, want localhost and shm.example (and no empty name)", x.DNSNames)
	}
	var ips []string
	for _, ip := range x.IPAddresses {
		ips = append(ips, ip.String())
	}
	for _, want := range []string{"127.0.0.1", "::1", "192.0.2.7"} {
		if !slices.Contains(ips, want) {
			t.Errorf("IP addresses = %v, want %s among them", ips, want)
		}
	}
	if !slices.Contains(x.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		t.Errorf("ExtKeyUsage = %v, want server auth", x.ExtKeyUsage)
	}
	if now := time.Now(); x.NotBefore.After(now) || x.NotAfter.Before(now.AddDate(9, 0, 0)) {
		t.Errorf("valid %v to %v, want from now for about ten years", x.NotBefore, x.NotAfter)
	}
	// The certificate verifies for 127.0.0.1 against itself.
	pool := x509.NewCertPool()
	pool.AddCert(x)
	if _, err := x.Verify(x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1"}); err != nil {
		t.Errorf("verify for 127.0.0.1: %v", err)
	}

	// The second call loads the same certificate instead of making one.
	c2, err := LoadOrCreate(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c2.Certificate[0], c.Certificate[0]) {
		t.Errorf("second LoadOrCreate made a new certificate; want the stored one (clients pin it)")
	}
	fp, err := FileFingerprint(certPath)
	if err != nil || fp != Fingerprint(c.Certificate[0]) {
		t.Errorf("FileFingerprint = %q, %v; want %q", fp, err, Fingerprint(c.Certificate[0]))
	}
}

func TestLoadOrCreateCorrupt(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := LoadOrCreate(dir, nil); err != nil {
		t.Fatal(err)
	}
	certPath, _ := Paths(dir)
	if err := os.WriteFile(certPath, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadOrCreate(dir, nil)
	if err == nil || !strings.Contains(err.Error(), "remove it") || !strings.Contains(err.Error(), filepath.Join(dir, Dir)) {
		t.Errorf("LoadOrCreate with a corrupt certificate = %v, want an error naming the folder and saying to remove it", err)
	}
	// It did not replace the file: a pinned certificate is never changed
	// behind the operator's back.
	if b, _ := os.ReadFile(certPath); string(b) != "not a certificate" {
		t.Errorf("LoadOrCreate overwrote a corrupt certificate")
	}
}

func TestFingerprint(t *testing.T) {
	t.Parallel()
	// SHA-256("abc"), the FIPS 180-2 test vector.
	const want = "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
	if got := Fingerprint([]byte("abc")); got != want {
		t.Errorf("Fingerprint(abc) = %s, want %s", got, want)
	}
	for _, b := range [][]byte{nil, {0}, bytes.Repeat([]byte{0xff}, 1000)} {
		fp := Fingerprint(b)
		if !fingerprintRE.MatchString(fp) {
			t.Errorf("Fingerprint(%d bytes) = %q, want 32 colon-separated upper-case hex pairs", len(b), fp)
		}
		n, err := NormalizeFingerprint(fp)
		sum := sha256.Sum256(b)
		if err != nil || n != hex.EncodeToString(sum[:]) {
			t.Errorf("NormalizeFingerprint(Fingerprint(x)) = %q, %v; want the hex SHA-256", n, err)
		}
	}
}

func TestFileFingerprint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := FileFingerprint(filepath.Join(dir, "missing.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("FileFingerprint of a missing file = %v, want os.ErrNotExist", err)
	}
	for name, content := range map[string]string{
		"empty.pem": "",
		"text.pem":  "hello",
		"key.pem":   "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := FileFingerprint(p); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
			t.Errorf("FileFingerprint(%s) = %v, want \"no PEM certificate\"", name, err)
		}
	}
}

func TestNormalizeFingerprint(t *testing.T) {
	t.Parallel()
	const hexfp = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	colons := Fingerprint([]byte("abc"))
	good := []string{
		hexfp,
		strings.ToUpper(hexfp),
		colons,
		strings.ToLower(colons),
		strings.ReplaceAll(colons, ":", " "),
		strings.ReplaceAll(colons, ":", "-"),
		" " + colons + " ",
		hexfp[:10] + strings.ToUpper(hexfp[10:]),
	}
	for _, in := range good {
		got, err := NormalizeFingerprint(in)
		if err != nil || got != hexfp {
			t.Errorf("NormalizeFingerprint(%q) = %q, %v; want %q", in, got, err, hexfp)
		}
	}
	bad := []string{
		"",
		":",
		hexfp[:62],
		hexfp + "00",
		hexfp[:63] + "g",
		"SHA256:" + hexfp,
		"sha256 Fingerprint=" + colons,
		strings.ReplaceAll(colons, ":", "."),
		hexfp[:63],
		"0x" + hexfp[2:],
		strings.Repeat("z", 64),
		"ba\x0078" + hexfp[4:],
		// MD5 and SHA-1 fingerprints are not accepted for a SHA-256 pin.
		"d4:1d:8c:d9:8f:00:b2:04:e9:80:09:98:ec:f8:42:7e",
		"da:39:a3:ee:5e:6b:4b:0d:32:55:bf:ef:95:60:18:90:af:d8:07:09",
	}
	for _, in := range bad {
		got, err := NormalizeFingerprint(in)
		if err == nil {
			t.Errorf("NormalizeFingerprint(%q) = %q, want an error", in, got)
			continue
		}
		if !strings.Contains(err.Error(), "64 hex digits") {
			t.Errorf("NormalizeFingerprint(%q) error %q does not say what is wanted", in, err)
		}
	}
}

// tlsServer serves TLS with cert on loopback: each connection completes
// the handshake and gets "hello\n". It returns the address.
func tlsServer(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			c.(*tls.Conn).Handshake()
			c.Write([]byte("hello\n"))
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// handshake dials addr with cfg and reads the greeting.
func handshake(addr string, cfg *tls.Config) error {
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if string(b) != "hello\n" {
		return errors.New("unexpected greeting " + string(b))
	}
	return nil
}

func TestPinnedConfig(t *testing.T) {
	t.Parallel()
	certA, err := LoadOrCreate(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	certB, err := LoadOrCreate(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	fpA, fpB := Fingerprint(certA.Certificate[0]), Fingerprint(certB.Certificate[0])
	if fpA == fpB {
		t.Fatal("two data directories got the same certificate")
	}
	addr := tlsServer(t, certA)

	t.Run("right", func(t *testing.T) {
		for _, pin := range []string{fpA, strings.ToLower(strings.ReplaceAll(fpA, ":", ""))} {
			cfg, err := PinnedConfig(pin)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.MinVersion < tls.VersionTLS12 {
				t.Errorf("MinVersion = %x, want TLS 1.2 or later", cfg.MinVersion)
			}
			if err := handshake(addr, cfg); err != nil {
				t.Errorf("pinned to the server's certificate (%s): %v", pin, err)
			}
		}
	})
	t.Run("other", func(t *testing.T) {
		cfg, err := PinnedConfig(fpB)
		if err != nil {
			t.Fatal(err)
		}
		err = handshake(addr, cfg)
		if err == nil {
			t.Fatal("pinned to another certificate: the handshake succeeded")
		}
		if !strings.Contains(err.Error(), fpA) {
			t.Errorf("error %q does not show the fingerprint the server presented (%s)", err, fpA)
		}
		if strings.Contains(err.Error(), fpB) {
			t.Errorf("error %q shows the pinned fingerprint as if it were the server's", err)
		}
	})
	t.Run("junk", func(t *testing.T) {
		if cfg, err := PinnedConfig("not-a-fingerprint"); err == nil || cfg != nil {
			t.Errorf("PinnedConfig(junk) = %v, %v; want an error", cfg, err)
		}
	})
	t.Run("no-certificate", func(t *testing.T) {
		cfg, _ := PinnedConfig(fpA)
		if err := cfg.VerifyPeerCertificate(nil, nil); err == nil {
			t.Errorf("VerifyPeerCertificate with no certificate: no error")
		}
	})
}

// FuzzNormalizeFingerprint: whatever it accepts becomes 64 lower-case hex
// digits, normalizing is idempotent, and the colon form Fingerprint
// prints normalizes back.
func FuzzNormalizeFingerprint(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		n, err := NormalizeFingerprint(s)
		if err != nil {
			if n != "" {
				t.Fatalf("NormalizeFingerprint(%q) = %q with error %v", s, n, err)
			}
			return
		}
		if len(n) != 64 || strings.Trim(n, "0123456789abcdef") != "" {
			t.Fatalf("NormalizeFingerprint(%q) = %q, want 64 lower-case hex digits", s, n)
		}
		if n2, err := NormalizeFingerprint(n); err != nil || n2 != n {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", s, n, n2, err)
		}
		b, _ := hex.DecodeString(n)
		var col strings.Builder
		for i, x := range b {
			if i > 0 {
				col.WriteByte(':')
			}
			col.WriteString(strings.ToUpper(hex.EncodeToString([]byte{x})))
		}
		if n3, err := NormalizeFingerprint(col.String()); err != nil || n3 != n {
			t.Fatalf("colon form %q -> %q, %v; want %q", col.String(), n3, err, n)
		}
		if _, err := PinnedConfig(s); err != nil {
			t.Fatalf("PinnedConfig refuses %q, which NormalizeFingerprint accepts: %v", s, err)
		}
	})
}

package cluster

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/shmgr/shmgr/internal/certs"
)

// TLS secures a node's Raft port (Raft's traffic and forwarded requests
// alike) with mutual authentication by pinned certificates: each node
// presents its certificate (a host's own, from internal/certs) and accepts
// a peer only if the peer's certificate is one of Members. A program that
// is not a member cannot complete the handshake, so it can neither vote,
// nor append entries, nor have a write forwarded.
type TLS struct {
	// Certificate is this node's certificate and key.
	Certificate tls.Certificate
	// Members are the SHA-256 fingerprints (any spelling NormalizeFingerprint
	// takes) of every member's certificate, this node's included.
	Members []string
}

// configs returns the server and client TLS configs of t.
func (t *TLS) configs() (server, client *tls.Config, err error) {
	if len(t.Certificate.Certificate) == 0 {
		return nil, nil, errors.New("cluster: TLS without a certificate")
	}
	pins := map[string]bool{}
	for _, fp := range t.Members {
		n, err := certs.NormalizeFingerprint(fp)
		if err != nil {
			return nil, nil, fmt.Errorf("cluster: member certificate: %w", err)
		}
		pins[n] = true
	}
	if len(pins) == 0 {
		return nil, nil, errors.New("cluster: TLS with no member fingerprints")
	}
	verify := func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("cluster: the peer sent no certificate")
		}
		sum := sha256.Sum256(raw[0])
		if !pins[hex.EncodeToString(sum[:])] {
			return fmt.Errorf("cluster: the peer's certificate %s is not a member's", certs.Fingerprint(raw[0]))
		}
		return nil
	}
	server = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{t.Certificate},
		ClientAuth: tls.RequireAnyClientCert, VerifyPeerCertificate: verify}
	client = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{t.Certificate},
		InsecureSkipVerify:    true, // replaced by the pin check
		VerifyPeerCertificate: verify}
	return server, client, nil
}

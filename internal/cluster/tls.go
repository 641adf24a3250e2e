package cluster

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"

	"github.com/shmgr/shmgr/internal/certs"
)

// TLS secures a node's Raft port (Raft's traffic and forwarded requests
// alike) with mutual authentication by pinned certificates: each node
// presents its certificate (a host's own, from internal/certs) and accepts
// a peer only if the peer's certificate is a member's. A program that is
// not a member cannot complete the handshake, so it can neither vote, nor
// append entries, nor have a write forwarded.
//
// Which certificates are a member's: once the cluster's configuration
// (replicated in the log and in snapshots) carries fingerprints, those,
// and only those; before (a node waiting to be added, or a cluster whose
// configuration has none), Members and Fingerprints. A node added with its
// fingerprint (Node.AddMember) is therefore accepted by every node as soon
// as the configuration entry reaches it, and a removed node is refused as
// soon as its removal does: no node restarts. See members.go.
type TLS struct {
	// Certificate is this node's certificate and key.
	Certificate tls.Certificate
	// Members are SHA-256 fingerprints (any spelling NormalizeFingerprint
	// takes) of members' certificates, accepted while the configuration
	// carries none.
	Members []string
	// Fingerprints maps node names to their certificates' fingerprints.
	// They are accepted like Members, and a node that bootstraps the
	// cluster writes each peer's into the first configuration, so that
	// from then on the log carries them. Every bootstrapping node must be
	// given the same map (as the same Peers): Raft requires the first
	// configuration to be identical on each.
	Fingerprints map[string]string
}

// staticPins returns the fingerprints of t (Members and Fingerprints),
// normalized.
func (t *TLS) staticPins() (map[string]bool, error) {
	pins := map[string]bool{}
	for _, fp := range t.Members {
		n, err := certs.NormalizeFingerprint(fp)
		if err != nil {
			return nil, fmt.Errorf("cluster: member certificate: %w", err)
		}
		pins[n] = true
	}
	names := make([]string, 0, len(t.Fingerprints))
	for name := range t.Fingerprints {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		n, err := certs.NormalizeFingerprint(t.Fingerprints[name])
		if err != nil {
			return nil, fmt.Errorf("cluster: node %q's certificate: %w", name, err)
		}
		pins[n] = true
	}
	return pins, nil
}

// fingerprint returns the normalized SHA-256 fingerprint of raw's leaf.
func fingerprint(raw [][]byte) (string, error) {
	if len(raw) == 0 {
		return "", errors.New("cluster: the peer sent no certificate")
	}
	sum := sha256.Sum256(raw[0])
	return hex.EncodeToString(sum[:]), nil
}

// configs returns the server TLS config of t, and a function making the
// client config for a dial: want is the fingerprint the configuration
// pins for the address dialled ("" when none does: the peer must then be
// a member, as accept says). accept reports whether a normalized
// fingerprint is a member's now; it is called on every handshake.
func (t *TLS) configs(accept func(fp string) bool) (server *tls.Config, client func(want string) *tls.Config, err error) {
	if len(t.Certificate.Certificate) == 0 {
		return nil, nil, errors.New("cluster: TLS without a certificate")
	}
	verify := func(want string) func([][]byte, [][]*x509.Certificate) error {
		return func(raw [][]byte, _ [][]*x509.Certificate) error {
			fp, err := fingerprint(raw)
			if err != nil {
				return err
			}
			if want != "" && fp != want {
				return fmt.Errorf("cluster: the peer's certificate %s is not the one the cluster's configuration pins for it", certs.Fingerprint(raw[0]))
			}
			if want == "" && !accept(fp) {
				return fmt.Errorf("cluster: the peer's certificate %s is not a member's", certs.Fingerprint(raw[0]))
			}
			return nil
		}
	}
	server = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{t.Certificate},
		ClientAuth: tls.RequireAnyClientCert, VerifyPeerCertificate: verify("")}
	client = func(want string) *tls.Config {
		return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{t.Certificate},
			InsecureSkipVerify:    true, // replaced by the pin check
			VerifyPeerCertificate: verify(want)}
	}
	return server, client, nil
}

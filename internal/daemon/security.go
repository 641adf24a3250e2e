package daemon

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"

	"github.com/shmgr/shmgr/internal/auth"
	"github.com/shmgr/shmgr/internal/certs"
	"github.com/shmgr/shmgr/internal/server"
)

// security is what the host checks connections with.
type security struct {
	store       *auth.Store // nil: open
	token       string      // the admin token, printed with the banner
	insecure    bool
	tls         *tls.Config
	fingerprint string
}

// loopbackOnly reports whether addr accepts connections from this machine
// only.
func loopbackOnly(addr *net.TCPAddr) bool { return addr.IP.IsLoopback() }

// setUpSecurity decides whether clients need a token, and sets up TLS.
// IMPORTANT: it may write tokens.json and the TLS files, so the caller
// holds the data directory's lock (host.LockDir).
// A host bound to loopback only may run open; any other address needs
// tokens unless the operator asks for Insecure.
func setUpSecurity(cfg *Config, addr *net.TCPAddr, logger *slog.Logger) (security, error) {
	var sec security
	token := cfg.Token
	needAuth := token != "" || cfg.RotateToken || !loopbackOnly(addr) && !cfg.Insecure
	if needAuth {
		store, err := auth.Open(cfg.DataDir)
		if err != nil {
			return sec, fmt.Errorf("tokens: %w", err)
		}
		if token != "" || cfg.RotateToken {
			if _, err := store.Add(auth.Token{Name: auth.AdminName, Secret: token, Access: auth.ReadWrite}); err != nil {
				return sec, fmt.Errorf("--token: %w", err)
			}
			if cfg.RotateToken {
				logger.Warn("admin token rotated: clients need the new one")
			}
		} else if made, err := store.EnsureAdmin(); err != nil {
			return sec, fmt.Errorf("tokens: %w", err)
		} else if made {
			logger.Warn(fmt.Sprintf("%s held no admin token: made a new one (printed below); its other tokens are kept", store.Path()))
		}
		sec.store, sec.token = store, store.Admin()
	} else if !loopbackOnly(addr) {
		sec.insecure = true
		logger.Warn("serving without tokens on a non-loopback address (--insecure): anyone who can reach " + addr.String() + " can read and write every region")
	}
	if cfg.TLS || cfg.TLSCert != "" {
		var cert tls.Certificate
		var err error
		if cfg.TLSCert != "" {
			cert, err = tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		} else {
			cert, err = certs.LoadOrCreate(cfg.DataDir, server.Addresses(addr.IP))
		}
		if err != nil {
			return sec, fmt.Errorf("tls: %w", err)
		}
		sec.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		sec.fingerprint = certs.Fingerprint(cert.Certificate[0])
	}
	return sec, nil
}

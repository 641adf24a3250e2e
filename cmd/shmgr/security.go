package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"strconv"
	"time"

	"github.com/shmgr/shmgr/internal/auth"
	"github.com/shmgr/shmgr/internal/certs"
	"github.com/shmgr/shmgr/internal/metrics"
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

func checkHostFlags(f *hostFlags) error {
	switch {
	case f.lockTimeout <= 0:
		return usageError{fmt.Errorf("--lock-timeout %v: must be positive", f.lockTimeout)}
	case f.maxConns < 1:
		return usageError{fmt.Errorf("--max-connections %d: must be at least 1", f.maxConns)}
	case f.maxRequest < 1:
		return usageError{fmt.Errorf("--max-request %d: must be at least 1 byte", f.maxRequest)}
	case f.maxRegions < 1:
		return usageError{fmt.Errorf("--max-regions %d: must be at least 1 (the default region)", f.maxRegions)}
	case f.maxRegion < 1:
		return usageError{fmt.Errorf("--max-region-size %d: must be at least 1 byte", f.maxRegion)}
	case f.maxWatches < 1:
		return usageError{fmt.Errorf("--max-watches %d: must be at least 1", f.maxWatches)}
	case f.readTimeout <= 0 || f.writeTimeout <= 0:
		return usageError{errors.New("--read-timeout and --write-timeout must be positive")}
	case f.busyPoll < 0 || f.busyPoll > maxBusyPoll:
		return usageError{fmt.Errorf("--busy-poll %v: must be between 0 (off) and %v", f.busyPoll, maxBusyPoll)}
	case f.tlsKey != "" && f.tlsCert == "":
		return usageError{errors.New("--tls-key needs --tls-cert")}
	case f.tlsCert != "" && f.tlsKey == "":
		return usageError{errors.New("--tls-cert needs --tls-key")}
	}
	return nil
}

// loopbackOnly reports whether addr accepts connections from this machine
// only.
func loopbackOnly(addr *net.TCPAddr) bool { return addr.IP.IsLoopback() }

// setUpSecurity decides whether clients need a token, and sets up TLS.
// IMPORTANT: it may write tokens.json and the TLS files, so the caller
// holds the data directory's lock (host.LockDir).
// A host bound to loopback only may run open; any other address needs
// tokens unless the operator passes --insecure.
func setUpSecurity(f *hostFlags, dir string, addr *net.TCPAddr, logger *slog.Logger) (security, error) {
	var sec security
	token := f.token
	if token == "" {
		token = os.Getenv(tokenEnv)
	}
	needAuth := token != "" || f.rotateToken || !loopbackOnly(addr) && !f.insecure
	if needAuth {
		store, err := auth.Open(dir)
		if err != nil {
			return sec, fmt.Errorf("tokens: %w", err)
		}
		if token != "" || f.rotateToken {
			if _, err := store.Add(auth.Token{Name: auth.AdminName, Secret: token, Access: auth.ReadWrite}); err != nil {
				return sec, fmt.Errorf("--token: %w", err)
			}
			if f.rotateToken {
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
	if f.tls || f.tlsCert != "" {
		var cert tls.Certificate
		var err error
		if f.tlsCert != "" {
			cert, err = tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
		} else {
			cert, err = certs.LoadOrCreate(dir, server.Addresses(addr.IP))
		}
		if err != nil {
			return sec, fmt.Errorf("tls: %w", err)
		}
		sec.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		sec.fingerprint = certs.Fingerprint(cert.Certificate[0])
	}
	return sec, nil
}

// lookupGroup returns the id of a group given by name or number.
func lookupGroup(name string) (int, error) {
	if g, err := user.LookupGroup(name); err == nil {
		return strconv.Atoi(g.Gid)
	}
	if g, err := user.LookupGroupId(name); err == nil {
		return strconv.Atoi(g.Gid)
	}
	return 0, errors.New("no such group")
}

// serveMetrics serves the Prometheus text format at addr/metrics. A bare
// port (":9411" or "9411") binds loopback.
func serveMetrics(addr string, m *metrics.Host, logger *slog.Logger) (*http.Server, error) {
	if _, err := strconv.Atoi(addr); err == nil {
		addr = "127.0.0.1:" + addr
	} else if h, p, err := net.SplitHostPort(addr); err == nil && h == "" {
		addr = net.JoinHostPort("127.0.0.1", p)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		m.WriteText(w)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	logger.Info("metrics at http://" + ln.Addr().String() + "/metrics")
	return srv, nil
}

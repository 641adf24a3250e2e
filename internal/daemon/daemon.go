// Package daemon runs a host: it is the one place that wires a data
// directory's host (internal/host) with its lock, tokens and TLS, the
// server (internal/server) on its listeners, metrics, the open-file
// limit and the session a previous run left. "shmgr host" and the GUI's
// Host mode both run one, so they offer the same host.
//
// A Daemon owns every goroutine it starts (the Serve loops, the metrics
// server, its teardown) and awaits them in Shutdown or Close.
package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/shmgr/shmgr/internal/cluster"
	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/metrics"
	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/rawsock"
	"github.com/shmgr/shmgr/internal/server"
)

// Daemon is a running host. Its methods are safe for concurrent use.
type Daemon struct {
	cfg      Config
	log      *slog.Logger
	h        *host.Host
	srv      *server.Server
	addr     *net.TCPAddr // the shmgr protocol's bound address
	respAddr *net.TCPAddr // the Redis protocol's, nil if off
	sec      security
	def      host.Info // the default region at start
	metrics  *metrics.Host
	node     *cluster.Node // nil without Config.Cluster
	msrv     *http.Server  // nil without Config.Metrics
	maddr    string

	failed chan error     // the first Serve loop that ended unasked (buffered 1)
	wg     sync.WaitGroup // the Serve loops and the metrics server

	stopOnce sync.Once
	torn     chan struct{} // closed when the teardown has ended
	tornErr  error         // the teardown's error, set before torn closes
}

// Start runs a host as cfg says. It takes, in order: the listeners, the
// data directory's lock (before anything there changes, so that a host
// refused because another runs there has touched nothing), the tokens
// and TLS files, the host's registry and regions, the metrics listener,
// and the session the last run left; then it serves. If a step fails,
// Start releases what the steps before took and returns the error.
// ctx abandons a start still under way; the running Daemon stops with
// Shutdown or Close, not with ctx.
func Start(ctx context.Context, cfg Config) (_ *Daemon, err error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var undo cleanup
	defer func() {
		if err != nil {
			undo.run()
		}
	}()
	d := &Daemon{cfg: cfg, log: log, failed: make(chan error, 1), torn: make(chan struct{}), metrics: &metrics.Host{}}
	maxConns := connLimit(cfg.MaxConns, log)

	ln, err := server.Listen(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w (is another host running? pick another port with --listen)", cfg.Listen, err)
	}
	undo.push(func() { ln.Close() })
	d.addr = ln.Addr().(*net.TCPAddr)
	// The RESP listener takes the same tokens and TLS: if it is the one
	// that leaves loopback, it decides that tokens are required.
	var respLn net.Listener
	secAddr := d.addr
	if cfg.RESPListen != "" {
		if respLn, err = server.Listen(cfg.RESPListen); err != nil {
			return nil, fmt.Errorf("listen on %s: %w (is a Redis server running there? pick another address with --resp-listen)", cfg.RESPListen, err)
		}
		undo.push(func() { respLn.Close() })
		d.respAddr = respLn.Addr().(*net.TCPAddr)
		if !loopbackOnly(d.respAddr) {
			secAddr = d.respAddr
		}
	}

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	lock, err := host.LockDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	unlock := undo.push(func() { lock.Close() })
	if d.sec, err = setUpSecurity(&cfg, secAddr, log); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	hc := host.DefaultConfig(cfg.DataDir)
	hc.DefaultSize = cfg.DefaultSize
	hc.MaxRegions, hc.MaxRegionSize = cfg.MaxRegions, cfg.MaxRegionSize
	hc.Logf = func(format string, args ...any) { log.Info(fmt.Sprintf(format, args...)) }
	if cfg.ShareGroup {
		hc.ShareGroup, hc.GID, hc.Perm = true, cfg.GID, 0o660
	}
	hc.Lock = lock
	undo.drop(unlock) // host.Open owns the lock now, and releases it if it fails
	h, report, err := host.Open(hc)
	if err != nil {
		return nil, err
	}
	undo.push(func() { h.Close() })
	d.h = h
	for _, line := range report {
		log.Warn(line)
	}
	def, err := h.Default()
	if err != nil {
		return nil, err
	}
	d.def = def.Info()
	if cfg.Cluster != nil {
		if d.node, err = startNode(cfg, h, log, d.sec); err != nil {
			return nil, err
		}
		undo.push(func() { d.node.Close() })
	}

	if d.sec.tls != nil {
		ln = tls.NewListener(rawsock.WrapListener(ln), d.sec.tls)
		if respLn != nil {
			respLn = tls.NewListener(rawsock.WrapListener(respLn), d.sec.tls)
		}
	}
	var repl server.Cluster
	if d.node != nil {
		repl = d.node
	}
	d.srv = server.New(h, server.Config{
		Cluster:      repl,
		ServerName:   cfg.ServerName,
		Limits:       proto.Limits{MaxLine: proto.DefaultMaxLine, MaxPayload: cfg.MaxRequest},
		LockTimeout:  cfg.LockTimeout,
		IdleTimeout:  cfg.IdleTimeout,
		ReadTimeout:  cfg.ReadTimeout,
		WriteTimeout: cfg.WriteTimeout,
		BusyPoll:     cfg.BusyPoll,
		MaxConns:     maxConns,
		MaxWatches:   cfg.MaxWatches,
		Auth:         d.sec.store,
		Insecure:     d.sec.insecure,
		Metrics:      d.metrics,
		Logf:         func(format string, args ...any) { log.Info(fmt.Sprintf(format, args...)) },
		Debugf: func(format string, args ...any) {
			if log.Enabled(context.Background(), slog.LevelDebug) {
				log.Debug(fmt.Sprintf(format, args...))
			}
		},
		RESP: server.RESPConfig{NoCreate: !cfg.RESPCreate},
	})
	var mln net.Listener
	if cfg.Metrics != "" {
		d.maddr = metricsAddr(cfg.Metrics)
		if mln, err = net.Listen("tcp", d.maddr); err != nil {
			return nil, fmt.Errorf("--metrics %s: %w", d.maddr, err)
		}
		undo.push(func() { mln.Close() })
		d.maddr = mln.Addr().String()
	}
	// Resuming removes the session file (see server.ResumeFrom): a start
	// that fails after it leaves the session again for the next one.
	d.resumeState()
	undo.push(d.saveState)
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// Nothing fails from here on: the goroutines start.
	d.serve(func() error { return d.srv.Serve(ln) })
	if respLn != nil {
		d.serve(func() error { return d.srv.ServeRESP(respLn) })
	}
	if mln != nil {
		d.msrv = metricsServer(d.metrics)
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.msrv.Serve(mln) // ErrServerClosed once Shutdown closes it
		}()
		log.Info("metrics at http://" + d.maddr + "/metrics")
	}
	return d, nil
}

// serve runs a Serve loop the daemon waits for; a loop that ends before
// Shutdown is reported on Failed.
func (d *Daemon) serve(fn func() error) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := fn(); err != nil && !errors.Is(err, server.ErrServerClosed) {
			select {
			case d.failed <- err:
			default:
			}
		}
	}()
}

// Failed receives the error of a Serve loop that ended by itself (its
// listener failed): the host then serves no longer and its owner should
// shut it down.
func (d *Daemon) Failed() <-chan error { return d.failed }

// Shutdown stops accepting, lets connections finish the requests they
// have sent, then saves the session for the next start and closes the
// host (its regions stay in place). It returns the error of saving the
// registry, or ctx.Err() if ctx ends first: the remaining connections
// are then closed at once, and what is left of the teardown (waiting for
// a connection stuck in a call, saving, closing) goes on without the
// caller; Close waits for it. Only the first call's ctx bounds the
// connections' grace.
func (d *Daemon) Shutdown(ctx context.Context) error {
	d.stopOnce.Do(func() {
		if err := d.srv.Shutdown(ctx); err != nil {
			d.log.Warn("shutdown", "err", err)
		}
		if d.msrv != nil {
			d.msrv.Close()
		}
		go d.teardown()
	})
	select {
	case <-d.torn:
		return d.tornErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// teardown waits for every goroutine of the daemon and its server, then
// saves the session and closes the host. It waits for the server's
// connections even when Shutdown cut them short: the session saved must
// hold their last requests' outcomes, and the host must not close under
// a request.
func (d *Daemon) teardown() {
	defer close(d.torn)
	d.wg.Wait()
	d.srv.Wait()
	if d.node != nil {
		// After the connections (no Apply is under way), before the
		// host: the FSM applies into it until the node stops.
		if err := d.node.Close(); err != nil {
			d.log.Warn("closing the cluster node", "err", err)
		}
	}
	d.saveState()
	if err := d.h.Close(); err != nil {
		d.tornErr = fmt.Errorf("saving the registry: %w", err)
	}
}

// Close shuts the daemon down without a grace period (connections are
// closed at once), waits for the teardown to end, and returns its error.
// After Shutdown it only waits. It is safe to call more than once.
func (d *Daemon) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d.Shutdown(ctx)
	<-d.torn
	return d.tornErr
}

// Addr is the shmgr protocol listener's address.
func (d *Daemon) Addr() *net.TCPAddr { return d.addr }

// RESPAddr is the Redis protocol listener's address, nil if off.
func (d *Daemon) RESPAddr() *net.TCPAddr { return d.respAddr }

// MetricsAddr is the metrics listener's address, "" if off.
func (d *Daemon) MetricsAddr() string { return d.maddr }

// DataDir is the host's data directory.
func (d *Daemon) DataDir() string { return d.cfg.DataDir }

// Token is the admin token clients need, "" when the host runs open.
func (d *Daemon) Token() string { return d.sec.token }

// RequiresToken reports whether clients must present a token.
func (d *Daemon) RequiresToken() bool { return d.sec.store != nil }

// Insecure reports whether the host serves a non-loopback address
// without tokens because its operator asked for it.
func (d *Daemon) Insecure() bool { return d.sec.insecure }

// Fingerprint is the SHA-256 fingerprint of the TLS certificate clients
// pin (--tls-fingerprint), "" without TLS.
func (d *Daemon) Fingerprint() string { return d.sec.fingerprint }

// DefaultInfo describes the default region as it was at start.
func (d *Daemon) DefaultInfo() host.Info { return d.def }

// cleanup is a stack of releases, run last first when a start fails.
type cleanup []func()

// push adds f and returns its place, for drop.
func (c *cleanup) push(f func()) int {
	*c = append(*c, f)
	return len(*c) - 1
}

// drop forgets the release at i: what it released has a new owner.
func (c *cleanup) drop(i int) { (*c)[i] = func() {} }

func (c cleanup) run() {
	for i := len(c) - 1; i >= 0; i-- {
		c[i]()
	}
}

// metricsServer serves the Prometheus text format at /metrics.
func metricsServer(m *metrics.Host) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		m.WriteText(w)
	})
	return &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
}

// Package server puts a host on TCP: it accepts connections, sends each
// the metadata line, parses requests with internal/proto and answers them
// from the host's regions, in order, batching the replies to pipelined
// requests into one write.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shmgr/shmgr/internal/auth"
	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/metrics"
	"github.com/shmgr/shmgr/internal/proto"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("server closed")

// Config configures a Server.
type Config struct {
	// ServerName is sent in the metadata line, such as "shmgr 0.1.0".
	ServerName string
	// Limits bound requests (default proto.DefaultLimits()).
	Limits proto.Limits
	// LockTimeout bounds how long a write waits for a region's lock
	// (default 5s).
	LockTimeout time.Duration
	// IdleTimeout closes a connection that sends nothing for this long
	// (0: never).
	IdleTimeout time.Duration
	// WriteTimeout closes a connection that does not take its replies or
	// events for this long (default 30s).
	WriteTimeout time.Duration
	// MaxWatches bounds the watches of one connection (default 1024).
	MaxWatches int
	// MaxConns bounds the open connections (default 4096); a connection
	// over it gets "ERROR limit ..." and is closed.
	MaxConns int
	// ReadTimeout bounds how long a request may take to arrive once its
	// first byte has (default 30s): a client that sends half a command and
	// stalls (slowloris) is disconnected.
	ReadTimeout time.Duration
	// BusyPoll is how long a connection's goroutine keeps checking its
	// socket for the next request before it sleeps (0: it sleeps at once).
	// It spins only while its connection is the host's only one and its
	// client sends requests back to back, and it sleeps at least once a
	// millisecond: see spinPolicy.
	BusyPoll time.Duration
	// Auth, if set, requires every connection to send AUTH with one of its
	// tokens before anything but PING and QUIT.
	Auth *auth.Store
	// Insecure marks a host an operator chose to expose without tokens;
	// INFO says so.
	Insecure bool
	// Metrics, if set, counts requests, connections and refusals.
	Metrics *metrics.Host
	// Logf logs connection events worth an operator's attention: refusals,
	// limits, failed authentication (default: discard). It is never called
	// with a lock held.
	Logf func(format string, args ...any)
	// Debugf logs the routine events of ordinary clients: a connection
	// opening, authenticating and closing, three lines per CLI call
	// (default: discard). It is never called with a lock held.
	Debugf func(format string, args ...any)
	// RESP configures the Redis protocol listener (ServeRESP).
	RESP RESPConfig
	// Cluster, if set, is the cluster node this host belongs to: WRITE,
	// SET, CREATE and DELETE then go through its log and are answered
	// once committed, as do LOCK, RENEW, UNLOCK and fenced writes
	// (cluster_lock.go). Reads stay local.
	Cluster Cluster
}

// DefaultBusyPoll is the BusyPoll of "shmgr host" and of the GUI's host
// mode: long enough to cover the wake-up a sleeping reader would add to
// a lone client's next request (docs/PERFORMANCE.md has the figures),
// short enough that an idle connection stops spinning within a
// millisecond.
const DefaultBusyPoll = 50 * time.Microsecond

// Server serves one host over TCP. It is safe for concurrent use.
type Server struct {
	h   *host.Host
	cfg Config

	// mu protects listeners, conns and closing.
	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closing   bool
	quit      chan struct{}  // closed by Shutdown: ends watchTokens
	watching  bool           // watchTokens started (under mu)
	wg        sync.WaitGroup // every connection goroutine
	started   time.Time
	accepted  atomic.Uint64
	dedup     dedup // and the session id: random, changes when the host restarts
}

// New returns a server for h.
func New(h *host.Host, cfg Config) *Server {
	if cfg.ServerName == "" {
		cfg.ServerName = "shmgr"
	}
	if cfg.Limits.MaxLine == 0 && cfg.Limits.MaxPayload == 0 {
		cfg.Limits = proto.DefaultLimits()
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.Debugf == nil {
		cfg.Debugf = func(string, ...any) {}
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	if cfg.MaxWatches == 0 {
		cfg.MaxWatches = 1024
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = 4096
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 30 * time.Second
	}
	if cfg.Metrics == nil {
		cfg.Metrics = &metrics.Host{}
	}
	cfg.Metrics.CommandNames = append(commandNames(), respFamilyNames[:]...)
	cfg.Metrics.OutcomeNames = outcomeNames()
	s := &Server{h: h, cfg: cfg, listeners: map[net.Listener]struct{}{}, conns: map[*conn]struct{}{}, quit: make(chan struct{}), started: time.Now()}
	s.dedup.newSession()
	s.dedup.logf = cfg.Logf
	return s
}

// Serve accepts connections on ln until Shutdown. It always returns a
// non-nil error: ErrServerClosed after Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.serve(ln, false) }

// serve is Serve, for the shmgr protocol or (resp) the Redis protocol.
func (s *Server) serve(ln net.Listener, resp bool) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	if s.cfg.Auth != nil && !s.watching {
		s.watching = true
		s.goroutine(func() { s.watchTokens(s.quit) })
	}
	s.mu.Unlock()
	// spare is a file kept open to be closed when the process runs out of
	// files: one connection can then be accepted and told so, instead of
	// every client waiting in the backlog for a host that says nothing.
	spare, _ := os.Open(os.DevNull)
	defer func() { spare.Close() }()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return ErrServerClosed
			}
			if spare != nil && (errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)) {
				spare.Close()
				refused := s.refuseNoFiles(ln, resp)
				spare, _ = os.Open(os.DevNull)
				if refused {
					// One waiting client has its answer; the next gets
					// its own without a back-off delay.
					delay = 0
					continue
				}
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.cfg.Logf("accept: %v; retrying in %v", err, delay)
				// Shutdown ends the back-off: Serve returns at once.
				select {
				case <-time.After(delay):
				case <-s.quit:
				}
				continue
			}
			return err
		}
		delay = 0
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetKeepAliveConfig(keepAlive)
			tc.SetNoDelay(true)
		}
		if !s.track(nc, resp) {
			nc.Close()
			return ErrServerClosed
		}
	}
}

// refuseNoFiles accepts one connection with the file a spare one freed,
// answers it "ERROR limit" (RESP: "-ERR max number of clients reached")
// and closes it. It reports whether there was
// one to accept.
func (s *Server) refuseNoFiles(ln net.Listener, resp bool) bool {
	nc, err := ln.Accept()
	if err != nil {
		return false
	}
	s.cfg.Metrics.LimitRefusals.Get("connections").Inc()
	s.cfg.Logf("refused connection from %s: the host is out of open files (raise ulimit -n)", nc.RemoteAddr())
	nc.SetDeadline(time.Now().Add(100 * time.Millisecond))
	msg := "the host has run out of open files and cannot serve another connection: try again later"
	if resp {
		nc.Write(respRefusal(msg))
	} else {
		nc.Write(proto.AppendError(nil, proto.CodeLimit, msg))
	}
	nc.Close()
	return true
}

// keepAlive makes the kernel probe an idle connection after 5 s, every
// 5 s, and drop it after 3 unanswered probes: a vanished client is noticed
// within about 20 s even if it never sends again.
var keepAlive = net.KeepAliveConfig{Enable: true, Idle: 5 * time.Second, Interval: 5 * time.Second, Count: 3}

// isTemporary reports whether an accept error is worth retrying (too
// many open files and the like). net.Error's Temporary is deprecated for
// being ill-defined, but accept errors are the one place the net package
// still sets it deliberately, which is what Serve needs.
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// track registers a connection and starts its goroutine, unless the
// server is shutting down.
func (s *Server) track(nc net.Conn, resp bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.accepted.Add(1)
	s.cfg.Metrics.ConnectionsTotal.Inc()
	if n := len(s.conns); n >= s.cfg.MaxConns {
		s.cfg.Metrics.LimitRefusals.Get("connections").Inc()
		s.cfg.Logf("refused connection from %s: %d connections open, the most allowed", nc.RemoteAddr(), n)
		// Refused off the accept loop and without s.mu: on TLS the write
		// runs a handshake, which a silent client could stall.
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			nc.SetDeadline(time.Now().Add(time.Second))
			msg := fmt.Sprintf("the host has %d connections open, the most it allows: try again later", n)
			if resp {
				nc.Write(respRefusal(msg))
			} else {
				nc.Write(proto.AppendError(nil, proto.CodeLimit, msg))
			}
			nc.Close()
		}()
		return true
	}
	c := newConn(s, nc)
	if resp {
		c.resp = newRESPConn(c)
	}
	s.conns[c] = struct{}{}
	s.cfg.Metrics.Connections.Add(1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c.serve()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.cfg.Metrics.Connections.Add(-1)
	}()
	return true
}

// goroutine starts fn as a goroutine the server waits for in Shutdown.
func (s *Server) goroutine(fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

// authMode is "token" if connections must authenticate, else "none".
func (s *Server) authMode() string {
	if s.cfg.Auth != nil {
		return "token"
	}
	return "none"
}

// Metrics returns the server's metrics.
func (s *Server) Metrics() *metrics.Host { return s.cfg.Metrics }

// ClientInfo describes one client connection, for INFO.
type ClientInfo = proto.ClientInfo

// Clients lists the open connections.
func (s *Server) Clients() []ClientInfo {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	out := make([]ClientInfo, 0, len(conns))
	for _, c := range conns {
		out = append(out, c.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Since.Before(out[j].Since) })
	return out
}

// Connections returns the number of open connections.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Shutdown stops accepting, lets every connection finish the requests it
// has received, and waits for them to close. If ctx ends first it closes
// the remaining connections and returns ctx.Err() at once, as net/http's
// Server.Shutdown does: a connection's goroutine that is inside a call
// closing its socket cannot interrupt (a log function blocked on a full
// pipe) ends when that call returns. Wait waits for it.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		close(s.quit)
	}
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.stop()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		return ctx.Err()
	}
}

// Wait blocks until every goroutine the server started has ended. After
// Shutdown they end by themselves once their current call returns; an
// owner that must not release the host under them (internal/daemon)
// waits here before closing it.
func (s *Server) Wait() { s.wg.Wait() }

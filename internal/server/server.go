// Package server puts a host on TCP: it accepts connections, sends each
// the metadata line, parses requests with internal/proto and answers them
// from the host's regions, in order, batching the replies to pipelined
// requests into one write.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shmgr/shmgr/internal/host"
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
	// Logf logs connection events (default: discard). It is never called
	// with a lock held.
	Logf func(format string, args ...any)
}

// Server serves one host over TCP. It is safe for concurrent use.
type Server struct {
	h   *host.Host
	cfg Config

	// mu protects listeners, conns and closing.
	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closing   bool
	wg        sync.WaitGroup // every connection goroutine
	started   time.Time
	accepted  atomic.Uint64
	dedup     dedup
	session   string // random, per server: changes when the host restarts
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
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	if cfg.MaxWatches == 0 {
		cfg.MaxWatches = 1024
	}
	var b [8]byte
	rand.Read(b[:])
	return &Server{h: h, cfg: cfg, listeners: map[net.Listener]struct{}{}, conns: map[*conn]struct{}{}, started: time.Now(), session: hex.EncodeToString(b[:])}
}

// Serve accepts connections on ln until Shutdown. It always returns a
// non-nil error: ErrServerClosed after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
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
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTemporary(err)) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.cfg.Logf("accept: %v; retrying in %v", err, delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetKeepAliveConfig(keepAlive)
			tc.SetNoDelay(true)
		}
		if !s.track(nc) {
			nc.Close()
			return ErrServerClosed
		}
	}
}

// keepAlive makes the kernel probe an idle connection after 5 s, every
// 5 s, and drop it after 3 unanswered probes: a vanished client is noticed
// within about 20 s even if it never sends again.
var keepAlive = net.KeepAliveConfig{Enable: true, Idle: 5 * time.Second, Interval: 5 * time.Second, Count: 3}

// errTemporary returns err when the accept error is worth retrying (too
// many open files and the like), else a sentinel that matches nothing.
func errTemporary(err error) error {
	type temporary interface{ Temporary() bool }
	if t, ok := err.(temporary); ok && t.Temporary() {
		return err
	}
	return errNever
}

var errNever = errors.New("never")

// track registers a connection and starts its goroutine, unless the
// server is shutting down.
func (s *Server) track(nc net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	c := newConn(s, nc)
	s.conns[c] = struct{}{}
	s.accepted.Add(1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c.serve()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
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

// Connections returns the number of open connections.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Shutdown stops accepting, lets every connection finish the requests it
// has received, and waits for them to close. If ctx ends first it closes
// the remaining connections and returns ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
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
		<-done
		return ctx.Err()
	}
}

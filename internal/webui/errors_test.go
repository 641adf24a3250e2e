package webui

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/certs"
	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/region"
)

// TestClassify checks the reply for each kind of error, whichever layer
// made it: the region, the host, the client (mapped or from a host's
// ERROR reply), wrapped with context as the GUI's handlers see them.
func TestClassify(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"region too large", region.ErrTooLarge, http.StatusRequestEntityTooLarge, "too_large"},
		{"client too large", fmt.Errorf("write: %w", client.ErrTooLarge), http.StatusRequestEntityTooLarge, "too_large"},
		{"invalid utf8", fmt.Errorf("write: %w", region.ErrInvalidUTF8), http.StatusUnprocessableEntity, "invalid_utf8"},
		{"lock timeout", fmt.Errorf("write: %w", client.ErrLockTimeout), http.StatusLocked, "lock_timeout"},
		{"lock timeout with owner", &region.LockTimeoutError{}, http.StatusLocked, "lock_timeout"},
		{"host not found", fmt.Errorf("open: %w", host.ErrNotFound), http.StatusNotFound, "no_region"},
		{"client not found", fmt.Errorf("open: %w", client.ErrNotFound), http.StatusNotFound, "no_region"},
		{"host exists", host.ErrExists, http.StatusConflict, "exists"},
		{"client exists", client.ErrExists, http.StatusConflict, "exists"},
		{"bad id", fmt.Errorf("create: %w", proto.ErrBadID), http.StatusBadRequest, "bad_id"},
		{"client bad id", client.ErrBadID, http.StatusBadRequest, "bad_id"},
		{"bad size", fmt.Errorf("create: %w", region.ErrBadSize), http.StatusBadRequest, "bad_size"},
		{"host forbidden", host.ErrForbidden, http.StatusForbidden, "forbidden"},
		{"client forbidden", client.ErrForbidden, http.StatusForbidden, "forbidden"},
		{"host limit", host.ErrLimit, http.StatusInsufficientStorage, "limit"},
		{"host no space", fmt.Errorf("create: %w", host.ErrNoSpace), http.StatusInsufficientStorage, "limit"},
		{"client limit", client.ErrLimit, http.StatusInsufficientStorage, "limit"},
		{"host closed", host.ErrClosed, http.StatusConflict, "closed"},
		{"client closed", fmt.Errorf("read: %w", client.ErrClosed), http.StatusConflict, "closed"},
		// Every kind of "cannot serve now" is closed, not only the host's.
		{"host vanished", fmt.Errorf("read: %w", host.ErrVanished), http.StatusConflict, "closed"},
		{"lock wait stopped", fmt.Errorf("write: %w", region.ErrStopped), http.StatusConflict, "closed"},
		{"client unavailable", fmt.Errorf("write: %w", client.ErrUnavailable), http.StatusConflict, "closed"},
		{"unknown outcome", fmt.Errorf("write: %w", client.ErrUnknownOutcome), http.StatusBadGateway, "unknown_outcome"},
		{"refused", fmt.Errorf("connect: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), http.StatusBadGateway, "refused"},
		{"deadline", fmt.Errorf("read: %w", context.DeadlineExceeded), http.StatusGatewayTimeout, "timeout"},
		{"other", errors.New("something else"), http.StatusInternalServerError, "internal"},
		{"conflict", fmt.Errorf("write: %w", &client.ConflictError{Expected: 3, Current: 5}), http.StatusConflict, "conflict"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ae := classify(tt.err)
			if ae.Status != tt.status || ae.Code != tt.code {
				t.Errorf("classify(%v) = %d %q (%s), want %d %q", tt.err, ae.Status, ae.Code, ae.Message, tt.status, tt.code)
			}
			if tt.code == "conflict" && (ae.Extra["current"] != uint64(5) || ae.Extra["expected"] != uint64(3)) {
				t.Errorf("classify(%v).Extra = %v, want current 5 and expected 3", tt.err, ae.Extra)
			}
		})
	}
}

// TestDialErrorCodes makes each way Client mode can fail to connect
// happen on a real loopback socket and checks the code word the page
// translates.
func TestDialErrorCodes(t *testing.T) {
	cert, err := certs.LoadOrCreate(t.TempDir(), []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	pinned, err := client.PinnedTLS(strings.Repeat("ab", 32))
	if err != nil {
		t.Fatal(err)
	}
	// serve listens on loopback and runs fn for each connection.
	serve := func(t *testing.T, fn func(net.Conn)) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		t.Cleanup(func() { ln.Close(); <-done })
		go func() {
			defer close(done)
			for {
				nc, err := ln.Accept()
				if err != nil {
					return
				}
				fn(nc)
				nc.Close()
			}
		}()
		return ln.Addr().String()
	}
	says := func(line string) func(net.Conn) {
		return func(nc net.Conn) {
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			nc.Write([]byte(line))
			nc.Read(make([]byte, 512)) // until the client gives up
		}
	}
	tlsHost := func(nc net.Conn) {
		tc := tls.Server(nc, &tls.Config{Certificates: []tls.Certificate{cert}})
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		tc.Handshake() // fails: the client refuses the certificate
	}
	silent := func(nc net.Conn) {
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		nc.Read(make([]byte, 512))
	}
	tests := []struct {
		name string
		addr func(t *testing.T) string
		opts func(o *client.Options)
		code string
	}{
		{name: "nothing listening", addr: func(t *testing.T) string { return fmt.Sprintf("127.0.0.1:%d", closedPort(t)) }, code: "refused"},
		{name: "TLS to a plain peer", addr: func(t *testing.T) string { return serve(t, says("not TLS at all\n")) },
			opts: func(o *client.Options) { o.TLS = pinned }, code: "tls"},
		{name: "TLS with another fingerprint", addr: func(t *testing.T) string { return serve(t, tlsHost) },
			opts: func(o *client.Options) { o.TLS = pinned }, code: "tls"},
		{name: "TLS to a self-signed host unpinned", addr: func(t *testing.T) string { return serve(t, tlsHost) },
			opts: func(o *client.Options) { o.TLS = &tls.Config{MinVersion: tls.VersionTLS12} }, code: "tls"},
		{name: "not a shmgr host", addr: func(t *testing.T) string { return serve(t, says("hello, I am not shmgr\n")) }, code: "protocol"},
		{name: "silent peer", addr: func(t *testing.T) string { return serve(t, silent) },
			opts: func(o *client.Options) { o.DialTimeout = 200 * time.Millisecond }, code: "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := tt.addr(t)
			o := client.DefaultOptions()
			o.Mode = client.ModeTCP
			if tt.opts != nil {
				tt.opts(&o)
			}
			c, err := client.Connect(t.Context(), addr, o)
			if err == nil {
				c.Close()
				t.Fatalf("Connect(%s) worked, want an error", addr)
			}
			ae := dialError(err, addr, "default")
			if ae.Code != tt.code || ae.Status != http.StatusBadGateway && ae.Status != http.StatusGatewayTimeout {
				t.Errorf("dialError(%v) = %d %q (%s), want code %q", err, ae.Status, ae.Code, ae.Message, tt.code)
			}
		})
	}
}

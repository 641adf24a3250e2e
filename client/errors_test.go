package client_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// TestErrors checks that every failure matches its sentinel with
// errors.Is, whether the region is mapped or reached over TCP.
func TestErrors(t *testing.T) {
	h := shmtest.StartHost(t)
	for _, mode := range modes {
		t.Run("mode="+mode.String(), func(t *testing.T) {
			c := connect(t, h.Addr, mode)
			rawID := "raw-" + mode.String()
			create(t, c, rawID, client.CreateOptions{Size: 16, Layout: "raw"})
			def := dial(t, h.Addr, "", mode)
			raw := dial(t, h.Addr, rawID, mode)
			if _, err := def.Write(t.Context(), []byte("before")); err != nil {
				t.Fatal(err)
			}

			var cur uint64 // the default region's version after setup
			tests := []struct {
				name string
				// setup, if set, runs before the unchanged snapshot.
				setup func(ctx context.Context) error
				op    func(ctx context.Context) error
				want  error
				// unchanged, if set, must hold the same content and version
				// after op.
				unchanged *client.Region
				// clientSide: the error must not come from the host.
				clientSide bool
				check      func(t *testing.T, err error)
			}{
				{
					name: "dial missing id",
					op: func(ctx context.Context) error {
						r, err := client.Dial(ctx, h.Addr, "no-such-region", options(mode))
						if err == nil {
							r.Close()
						}
						return err
					},
					want: client.ErrNotFound,
				},
				{
					name: "open missing id",
					op: func(ctx context.Context) error {
						_, err := c.Open(ctx, "no-such-region")
						return err
					},
					want: client.ErrNotFound,
				},
				{
					name: "delete missing id",
					op:   func(ctx context.Context) error { return c.Delete(ctx, "no-such-region") },
					want: client.ErrNotFound,
				},
				{
					name: "too large for default region",
					op: func(ctx context.Context) error {
						_, err := def.Write(ctx, bytes.Repeat([]byte("x"), 4092))
						return err
					},
					want:      client.ErrTooLarge,
					unchanged: def,
				},
				{
					name: "write at past the maximum",
					op: func(ctx context.Context) error {
						_, err := def.WriteAt(ctx, 4000, bytes.Repeat([]byte("x"), 100))
						return err
					},
					want:      client.ErrTooLarge,
					unchanged: def,
				},
				{
					name: "invalid utf8",
					op: func(ctx context.Context) error {
						_, err := def.Write(ctx, []byte("ok\xff\xfe"))
						return err
					},
					want:      client.ErrInvalidUTF8,
					unchanged: def,
				},
				{
					name: "conflict",
					setup: func(ctx context.Context) (err error) {
						cur, err = def.Write(ctx, []byte("current"))
						return err
					},
					op: func(ctx context.Context) error {
						_, err := def.WriteIf(ctx, []byte("stale"), cur-1)
						return err
					},
					want:      client.ErrConflict,
					unchanged: def,
					check: func(t *testing.T, err error) {
						var ce *client.ConflictError
						if !errors.As(err, &ce) {
							t.Fatalf("WriteIf(version %d) = %v, want a *client.ConflictError", cur-1, err)
						}
						if ce.Current != cur || ce.Expected != cur-1 {
							t.Errorf("WriteIf(version %d): ConflictError{Expected: %d, Current: %d}, want {Expected: %d, Current: %d}", cur-1, ce.Expected, ce.Current, cur-1, cur)
						}
					},
				},
				{
					name: "update fn error",
					op: func(ctx context.Context) error {
						_, err := def.Update(ctx, func(cur []byte) ([]byte, error) { return nil, client.ErrForbidden })
						return err
					},
					want:      client.ErrForbidden, // fn's own error, passed through
					unchanged: def,
				},
				{
					name: "read range past the end of a raw region",
					op: func(ctx context.Context) error {
						_, _, err := raw.ReadAt(ctx, 10, 10)
						return err
					},
					want: client.ErrOutOfRange,
				},
				{
					name: "write range past the end of a raw region",
					op: func(ctx context.Context) error {
						_, err := raw.WriteAt(ctx, 12, []byte("12345678"))
						return err
					},
					want:      client.ErrOutOfRange,
					unchanged: raw,
				},
				{
					name: "raw write larger than the region",
					op: func(ctx context.Context) error {
						_, err := raw.Write(ctx, make([]byte, 17))
						return err
					},
					want:      client.ErrTooLarge,
					unchanged: raw,
				},
				{
					name: "create existing id",
					op: func(ctx context.Context) error {
						_, err := c.Create(ctx, rawID, client.CreateOptions{})
						return err
					},
					want: client.ErrExists,
				},
				{
					name: "create bad id",
					op: func(ctx context.Context) error {
						_, err := c.Create(ctx, "-starts-with-dash", client.CreateOptions{})
						return err
					},
					want:       client.ErrBadID,
					clientSide: true,
				},
				{
					name: "dial bad id",
					op: func(ctx context.Context) error {
						r, err := client.Dial(ctx, h.Addr, "has space", options(mode))
						if err == nil {
							r.Close()
						}
						return err
					},
					want:       client.ErrBadID,
					clientSide: true,
				},
				{
					name: "delete id too long",
					op:   func(ctx context.Context) error { return c.Delete(ctx, strings.Repeat("a", 65)) },
					want: client.ErrBadID, clientSide: true,
				},
				{
					name: "delete default region",
					op:   func(ctx context.Context) error { return c.Delete(ctx, "default") },
					want: client.ErrForbidden,
					check: func(t *testing.T, err error) {
						var he *client.Error
						if !errors.As(err, &he) || he.Code != "forbidden" {
							t.Errorf("Delete(default) = %#v, want a *client.Error with Code \"forbidden\"", err)
						}
					},
				},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					if tt.setup != nil {
						if err := tt.setup(t.Context()); err != nil {
							t.Fatalf("setup: %v", err)
						}
					}
					var before []byte
					var beforeV uint64
					if tt.unchanged != nil {
						before, beforeV = readVersion(t, tt.unchanged)
					}
					err := tt.op(t.Context())
					if !errors.Is(err, tt.want) {
						t.Fatalf("error = %v, want errors.Is(err, %v)", err, tt.want)
					}
					var he *client.Error
					if tt.clientSide && errors.As(err, &he) {
						t.Errorf("error = %v came from the host, want it caught by the client", err)
					}
					if tt.check != nil {
						tt.check(t, err)
					}
					if tt.unchanged != nil {
						after, afterV := readVersion(t, tt.unchanged)
						if !bytes.Equal(after, before) || afterV != beforeV {
							t.Errorf("after the failed op: content %q version %d, want %q version %d", after, afterV, before, beforeV)
						}
					}
				})
			}
		})
	}
}

// TestDialClosedPort checks that nothing listening gives a prompt error
// that names the address and the cause.
func TestDialClosedPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	for _, mode := range []client.Mode{client.ModeAuto, client.ModeLocal, client.ModeTCP} {
		t.Run("mode="+mode.String(), func(t *testing.T) {
			r, err := client.Dial(t.Context(), addr, "", options(mode))
			if err == nil {
				r.Close()
				t.Fatalf("Dial(%s) with nothing listening: no error", addr)
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("Dial(%s) = %v, want errors.Is(err, ECONNREFUSED)", addr, err)
			}
			if !strings.Contains(err.Error(), addr) {
				t.Errorf("Dial(%s) = %q, want the message to name the address", addr, err)
			}
		})
	}
}

package client_test

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/shm"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// TestLockedWaitEndsWithContext: a local write waiting for a lock that
// another holds, with a context that has no deadline, ends as soon as the
// context is cancelled (it used to wait out the whole lock timeout).
func TestLockedWaitEndsWithContext(t *testing.T) {
	h := startLeaseHost(t)
	holder := dial(t, h.Addr, "", client.ModeLocal)
	mustLock(t, holder, client.LockOptions{Lease: 30 * time.Second})
	o := options(client.ModeLocal)
	o.LockTimeout = time.Minute
	w := dialWith(t, h.Addr, "", o)
	for _, op := range []struct {
		name string
		do   func(ctx context.Context) error
	}{
		{"Write", func(ctx context.Context) error { _, err := w.Write(ctx, []byte("x")); return err }},
		{"Lock", func(ctx context.Context) error {
			l, err := w.Lock(ctx, client.LockOptions{Wait: time.Minute})
			if err == nil {
				l.Unlock(context.Background())
			}
			return err
		}},
	} {
		t.Run("op="+op.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- op.do(ctx) }()
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("%s after cancel = %v, want context.Canceled", op.name, err)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("%s still waiting 20s after its context was cancelled (lock timeout 1m)", op.name)
			}
		})
	}
}

// TestLeaseCapBothModes: a lease over the host's 60 s maximum is refused
// with ErrLimit in local mode as over TCP.
func TestLeaseCapBothModes(t *testing.T) {
	h := startLeaseHost(t)
	for _, mode := range []client.Mode{client.ModeLocal, client.ModeTCP} {
		t.Run("mode="+mode.String(), func(t *testing.T) {
			r := dial(t, h.Addr, "", mode)
			l, err := r.Lock(t.Context(), client.LockOptions{Lease: 61 * time.Second})
			if err == nil {
				l.Unlock(context.Background())
			}
			if !errors.Is(err, client.ErrLimit) {
				t.Fatalf("Lock with a 61 s lease = %v, want ErrLimit", err)
			}
		})
	}
}

// TestCorruptLengthReachesClient: a length field past the region's end
// (a program outside shmgr wrote it) is ErrOutOfRange in both modes: the
// one sentinel region.ErrCorrupt also matches, and what crosses the wire.
func TestCorruptLengthReachesClient(t *testing.T) {
	h := shmtest.StartHost(t)
	c := connect(t, h.Addr, client.ModeTCP)
	in := create(t, c, "corrupt", client.CreateOptions{})
	data, err := shm.Open(in.OSName, in.Size)
	if err != nil {
		t.Fatal(err)
	}
	defer data.Close()
	binary.LittleEndian.PutUint32(data.Bytes()[1:], 1<<31)
	for _, mode := range []client.Mode{client.ModeLocal, client.ModeTCP} {
		t.Run("mode="+mode.String(), func(t *testing.T) {
			r := dial(t, h.Addr, "corrupt", mode)
			if _, err := r.Read(t.Context()); !errors.Is(err, client.ErrOutOfRange) {
				t.Fatalf("Read of a corrupt length field = %v, want ErrOutOfRange", err)
			}
		})
	}
}

package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// TestRegionClose checks that a closed Region refuses further use with
// ErrClosed, however it was opened, and that closing a Region opened from
// a Conn leaves the Conn usable.
func TestRegionClose(t *testing.T) {
	h := shmtest.StartHost(t)
	ops := []struct {
		name string
		op   func(ctx context.Context, r *client.Region) error
	}{
		{"Read", func(ctx context.Context, r *client.Region) error { _, err := r.Read(ctx); return err }},
		{"Write", func(ctx context.Context, r *client.Region) error {
			_, err := r.Write(ctx, []byte("after close"))
			return err
		}},
		{"Version", func(ctx context.Context, r *client.Region) error { _, err := r.Version(ctx); return err }},
	}
	for _, mode := range modes {
		for _, how := range []string{"Dial", "Conn.Open"} {
			t.Run("mode="+mode.String()+"/open="+how, func(t *testing.T) {
				c := connect(t, h.Addr, mode)
				open := func() *client.Region {
					var r *client.Region
					var err error
					if how == "Dial" {
						r, err = client.Dial(t.Context(), h.Addr, "", options(mode))
					} else {
						r, err = c.Open(t.Context(), "")
					}
					if err != nil {
						t.Fatalf("%s: %v", how, err)
					}
					return r
				}
				for _, op := range ops {
					r := open()
					if err := r.Close(); err != nil {
						t.Fatalf("Close: %v", err)
					}
					if err := r.Close(); err != nil {
						t.Errorf("second Close = %v, want nil", err)
					}
					if err := op.op(t.Context(), r); !errors.Is(err, client.ErrClosed) {
						t.Errorf("%s after Close = %v, want ErrClosed", op.name, err)
					}
				}
				if how == "Conn.Open" {
					if err := c.Ping(t.Context()); err != nil {
						t.Errorf("Conn.Ping after closing a Region opened from it = %v, want nil", err)
					}
				}
			})
		}
	}
}

// TestLocalAppendReadNoAlloc checks the documented promise: in local mode,
// AppendRead into a buffer with room does not allocate.
func TestLocalAppendReadNoAlloc(t *testing.T) {
	h := shmtest.StartHost(t)
	r := dial(t, h.Addr, "", client.ModeLocal)
	if _, err := r.Write(t.Context(), []byte("no allocation")); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	buf := make([]byte, 0, r.MaxContent())
	var err error
	allocs := testing.AllocsPerRun(100, func() {
		buf, _, err = r.AppendRead(ctx, buf[:0])
	})
	if err != nil || string(buf) != "no allocation" {
		t.Fatalf("AppendRead = %q, %v, want %q", buf, err, "no allocation")
	}
	if allocs != 0 {
		t.Errorf("AppendRead in local mode: %v allocations per call, want 0", allocs)
	}
}

// TestRegionCloseWhileReading closes a Region while another goroutine
// reads it: the reader must get ErrClosed, never touch the unmapped
// memory. It runs in a helper process, where a fault or a race report
// fails that process rather than this test binary.
func TestRegionCloseWhileReading(t *testing.T) {
	h := shmtest.StartHost(t)
	p := startChild(t, "close-while-reading", h.Addr, "", client.ModeLocal, 200)
	run(t, p)
}

// TestDeletedRegion checks that a Region whose region was deleted on the
// host fails with ErrNotFound instead of writing where nobody will read.
func TestDeletedRegion(t *testing.T) {
	h := shmtest.StartHost(t)
	c := connect(t, h.Addr, client.ModeAuto)
	for _, mode := range modes {
		t.Run("mode="+mode.String(), func(t *testing.T) {
			id := "deleted-" + mode.String()
			create(t, c, id, client.CreateOptions{})
			r := dial(t, h.Addr, id, mode)
			if _, err := r.Write(t.Context(), []byte("before")); err != nil {
				t.Fatal(err)
			}
			if err := c.Delete(t.Context(), id); err != nil {
				t.Fatalf("Delete(%q): %v", id, err)
			}
			if v, err := r.Write(t.Context(), []byte("after the delete")); !errors.Is(err, client.ErrNotFound) {
				t.Errorf("Write after Delete = version %d, %v, want ErrNotFound", v, err)
			}
			if b, v, err := r.ReadVersion(t.Context()); !errors.Is(err, client.ErrNotFound) {
				t.Errorf("ReadVersion after Delete = %q, version %d, %v, want ErrNotFound", b, v, err)
			}

			// A new region under the same id is another region: the old
			// Region must not write into the old object as if it were it.
			create(t, c, id, client.CreateOptions{})
			_, err := r.Write(t.Context(), []byte("stale writer"))
			fresh := dial(t, h.Addr, id, client.ModeTCP)
			got, _ := readVersion(t, fresh)
			if err == nil && !bytes.Equal(got, []byte("stale writer")) {
				t.Errorf("Write through the old Region succeeded, but the new region %q holds %q: the write was lost", id, got)
			}
		})
	}
}

// TestConcurrentWritesOneConn has many goroutines write through one
// Region at once: every write must be applied exactly once, whatever
// order the requests take on the connection.
func TestConcurrentWritesOneConn(t *testing.T) {
	const writers, each = 128, 4
	h := shmtest.StartHost(t)
	for _, mode := range modes {
		t.Run("mode="+mode.String(), func(t *testing.T) {
			r := dial(t, h.Addr, "", mode)
			_, v0 := readVersion(t, r)
			var wg sync.WaitGroup
			errs := make(chan error, writers*each)
			for w := range writers {
				wg.Go(func() {
					for i := range each {
						if _, err := r.Write(t.Context(), []byte(fmt.Sprintf("writer %d write %d", w, i))); err != nil {
							errs <- err
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			n := 0
			for err := range errs {
				if n++; n <= 3 {
					t.Errorf("Write: %v", err)
				}
			}
			if n > 0 {
				t.Errorf("%d of %d concurrent writes failed", n, writers*each)
			}
			if _, v := readVersion(t, r); v != v0+writers*each {
				t.Errorf("version after %d writes = %d, want %d", writers*each, v, v0+writers*each)
			}
		})
	}
}

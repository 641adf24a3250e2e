//go:build linux

package host_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// TestDeleteWaitsForDo: a write inside Region.Do that waits for the
// region's lock (another mapping holds a lease) keeps Delete waiting
// until it returns, as Do's documentation says; then Delete goes
// through and later calls fail with ErrNotFound.
func TestDeleteWaitsForDo(t *testing.T) {
	h := openHost(t, t.TempDir())
	r, err := h.Create("busy", host.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := mapRegion(t, r)
	token, err := other.Acquire(time.Second, 30*time.Second, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var waiting *region.Region
	r.Do(func(rr *region.Region) error { waiting = rr; return nil })
	var wrote atomic.Bool
	writeDone := make(chan error, 1)
	go func() {
		writeDone <- r.Do(func(rr *region.Region) error {
			_, err := rr.Write([]byte("x"), region.WriteOptions{Timeout: time.Minute})
			wrote.Store(true)
			return err
		})
	}()
	shmtest.CheckFor(t, 20*time.Second, "the write inside Do never waited for the lock", func() bool { return waiting.LockWaiters() == 1 })
	type result struct {
		err        error
		afterWrite bool // the write inside Do had returned when Delete did
	}
	deleteDone := make(chan result, 1)
	go func() {
		err := h.Delete("busy")
		deleteDone <- result{err, wrote.Load()}
	}()
	// Delete holds the host's lock while it waits, so a Get blocks behind
	// it: that shows Delete has begun before the lease ends. The probes
	// return once Delete is through.
	var probes sync.WaitGroup
	defer probes.Wait()
	shmtest.CheckFor(t, 20*time.Second, "Delete never took the host's lock", func() bool {
		got := make(chan struct{})
		probes.Go(func() { h.Get("busy"); close(got) })
		select {
		case <-got:
			return false
		case <-time.After(50 * time.Millisecond):
			return true
		}
	})
	select {
	case res := <-deleteDone:
		t.Fatalf("Delete returned (%v) while a write inside Do still waited for the region's lock", res.err)
	default:
	}
	if err := other.Release(token); err != nil {
		t.Fatal(err)
	}
	if err := <-writeDone; err != nil {
		t.Fatalf("the write inside Do, after the lease ended: %v", err)
	}
	if res := <-deleteDone; res.err != nil || !res.afterWrite {
		t.Fatalf("Delete = %v, returned after the write inside Do: %v; want nil, true", res.err, res.afterWrite)
	}
	if err := r.Do(func(*region.Region) error { return nil }); !errors.Is(err, host.ErrNotFound) {
		t.Errorf("Do after Delete = %v, want ErrNotFound", err)
	}
}

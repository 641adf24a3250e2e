//go:build linux

package host_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// TestDeleteWaitsForDo: a write inside Region.Do that waits for the
// region's lock (another mapping holds a lease) keeps Delete waiting
// until it returns, as Do's documentation says, but not the rest of the
// host; then Delete goes through and later calls fail with ErrNotFound.
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
	// While Delete waits for the write, the host goes on serving: the
	// region is already forgotten (a Get says not found at once) and other
	// regions are there. Delete used to wait holding the host's lock, so
	// every Get, Create and List (every new connection) waited with it, for
	// as long as the lock wait lasts (up to the lease here, 30 s).
	gets := make(chan error, 1)
	go func() {
		for {
			_, err := h.Get("busy")
			if err != nil {
				gets <- err
				return
			}
			if wrote.Load() {
				gets <- errors.New("the write returned before the region was forgotten")
				return
			}
			time.Sleep(time.Millisecond) // pacing the probe, not a wait for a state
		}
	}()
	select {
	case err := <-gets:
		if !errors.Is(err, host.ErrNotFound) {
			t.Fatalf("Get of the region being deleted: %v, want ErrNotFound", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("BUG: no Get of the region being deleted returned in 20 s: Delete holds the host's lock while it waits for the write inside Do, so the whole host waits with it")
	}
	if _, err := h.Get("default"); err != nil {
		t.Fatalf("Get of another region while a Delete waits: %v", err)
	}
	// Its OS names are the id's until Delete has removed the objects: a
	// Create now would make objects that Delete then removes.
	if _, err := h.Create("busy", host.CreateOptions{}); !errors.Is(err, host.ErrExists) {
		t.Fatalf("Create of the id being deleted = %v, want ErrExists (still being deleted)", err)
	}
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
	again, err := h.Create("busy", host.CreateOptions{})
	if err != nil {
		t.Fatalf("Create after the Delete returned: %v", err)
	}
	write(t, again, "made again")
	if got := read(t, again); got != "made again" {
		t.Errorf("the region made again reads %q, want %q", got, "made again")
	}
}

//go:build linux

package host_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// subscribe subscribes to r with a channel of its own and waits for the
// first signal (the current state). The subscription is left to the
// host's Close (openHost's cleanup), which stops and wakes every hub: a
// hub whose subscriptions were closed first would keep Close waiting for
// up to its 5 s poll (see TestHubStopsOnUnsubscribe).
func subscribe(t *testing.T, r *host.Region) (*host.Sub, chan struct{}) {
	t.Helper()
	ch := make(chan struct{}, 1)
	s, err := r.Subscribe(ch)
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", r.ID(), err)
	}
	waitSignal(t, ch, 5*time.Second, fmt.Sprintf("Subscribe(%q): no first signal", r.ID()))
	if s.Latest() == nil {
		t.Fatalf("Subscribe(%q): signalled without a snapshot", r.ID())
	}
	return s, ch
}

// waitSignal waits for a signal on ch, failing the test after timeout.
func waitSignal(t *testing.T, ch <-chan struct{}, timeout time.Duration, msg string) {
	t.Helper()
	tm := time.NewTimer(timeout)
	defer tm.Stop()
	select {
	case <-ch:
	case <-tm.C:
		t.Fatalf("after %v: %s", timeout, msg)
	}
}

// mapRegion maps a host region's objects a second time, as another
// process (a local client) would, and unmaps them when the test ends.
func mapRegion(t *testing.T, r *host.Region) (*region.Region, []byte) {
	t.Helper()
	return shmtest.MapRegion(t, r)
}

// TestIdleWatchCost subscribes to 100 regions and measures the process's
// CPU time while nothing happens: the hubs sleep in the kernel on their
// futexes, so it should be close to nothing. The number is reported, not
// asserted (machines are noisy), except that 20% of a core would mean
// busy polling.
func TestIdleWatchCost(t *testing.T) {
	const regions = 100
	h := openHost(t, t.TempDir())
	// The hubs of the tests before may still be ending: count from a
	// steady number, or one that ends during the loop hides a hub.
	before := runtime.NumGoroutine()
	shmtest.Poll(5*time.Second, func() bool {
		time.Sleep(50 * time.Millisecond)
		n := runtime.NumGoroutine()
		steady := n == before
		before = n
		return steady
	})
	for i := range regions {
		r, err := h.Create(fmt.Sprintf("idle-%d", i), host.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		write(t, r, fmt.Sprintf("value %d", i))
		subscribe(t, r)
	}
	if g := runtime.NumGoroutine() - before; g < regions {
		t.Fatalf("%d goroutines more after %d subscriptions, want a hub for each region", g, regions)
	}

	const window = 2 * time.Second
	cpu0, wall0 := shmtest.CPUTime(t), time.Now()
	<-time.After(window) // the measurement: nothing to wait for
	cpu, wall := shmtest.CPUTime(t)-cpu0, time.Since(wall0)
	share := float64(cpu) / float64(wall)
	t.Logf("%d idle subscribed regions: %v of CPU in %v (%.2f%% of one core), %d goroutines",
		regions, cpu.Round(time.Microsecond), wall.Round(time.Millisecond), 100*share, runtime.NumGoroutine())
	if share > 0.20 {
		t.Errorf("idle hubs used %.1f%% of a core (%v in %v): busy polling?", 100*share, cpu, wall)
	}
}

// TestHubWakesOnWrite writes through a second mapping of the region (as a
// local client in another process would) and through the host's own: each
// commit must reach the subscriber at once (the hub's own poll is 5 s),
// with the new version and content.
func TestHubWakesOnWrite(t *testing.T) {
	h := openHost(t, t.TempDir())
	r, err := h.Create("watched", host.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, ch := subscribe(t, r)
	other, _ := mapRegion(t, r)
	for i := range 20 {
		want := []byte(fmt.Sprintf("write %d", i))
		var v uint64
		if i%2 == 0 {
			v, err = other.Write(want, region.WriteOptions{})
		} else {
			err = r.Do(func(rr *region.Region) (err error) {
				v, err = rr.Write(want, region.WriteOptions{})
				return err
			})
		}
		if err != nil {
			t.Fatal(err)
		}
		waitSignal(t, ch, 2*time.Second, fmt.Sprintf("write %d (version %d) did not wake the subscriber", i, v))
		snap := s.Latest()
		if snap.Version != v || !bytes.Equal(snap.Content, want) {
			t.Fatalf("write %d: Latest() = version %d %q, want version %d %q", i, snap.Version, snap.Content, v, want)
		}
	}
}

// TestHubStopsOnDelete deletes a watched region: Delete must not wait for
// the hub, the hub's goroutine must end, and the region refuses new
// subscriptions.
func TestHubStopsOnDelete(t *testing.T) {
	h := openHost(t, t.TempDir())
	r, err := h.Create("doomed", host.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	s, _ := subscribe(t, r)
	if g := runtime.NumGoroutine(); g <= before {
		t.Fatalf("%d goroutines with a subscription, %d before: no hub running?", g, before)
	}
	start := time.Now()
	if err := h.Delete("doomed"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Delete of a watched region took %v", d)
	}
	if !shmtest.Poll(2*time.Second, func() bool { return runtime.NumGoroutine() <= before }) {
		t.Errorf("hub still running 2s after Delete: %d goroutines, %d before the subscription", runtime.NumGoroutine(), before)
	}
	s.Close() // after Delete: must be harmless
	if _, err := r.Subscribe(make(chan struct{}, 1)); !errors.Is(err, host.ErrNotFound) {
		t.Errorf("Subscribe after Delete: err = %v, want ErrNotFound", err)
	}
}

// TestHubStopsOnUnsubscribe closes a region's last subscription and then
// deletes it. The hub should stop promptly, and Delete must not wait for
// it: Delete holds the host's lock, so every request to the host waits
// with it.
func TestHubStopsOnUnsubscribe(t *testing.T) {
	h := openHost(t, t.TempDir())
	r, err := h.Create("unwatched", host.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	ch := make(chan struct{}, 1)
	s, err := r.Subscribe(ch)
	if err != nil {
		t.Fatal(err)
	}
	waitSignal(t, ch, 5*time.Second, "no first signal")
	s.Close()
	if !shmtest.Poll(time.Second, func() bool { return runtime.NumGoroutine() <= before }) {
		t.Errorf("BUG: the hub goroutine still runs 1s after its last subscription closed (%d goroutines, %d before): "+
			"hub.remove closes stop but does not wake the hub, which sleeps in WaitChange for up to hubPoll (5s) holding the region's RLock",
			runtime.NumGoroutine(), before)
	}
	start := time.Now()
	if err := h.Delete("unwatched"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("BUG: Delete took %v after the last subscription closed: it waits, holding Host.mu, for the sleeping hub to release Region.mu (hub.shutdown only wakes a hub that is still marked running)", d.Round(time.Millisecond))
	}
}

// TestHubSurvivesReadError makes the hub's snapshot fail once (the length
// field of a utf8 region corrupted, as a program outside shmgr might
// leave it), then repairs the region with a write: the subscriber must
// hear of the write.
func TestHubSurvivesReadError(t *testing.T) {
	h := openHost(t, t.TempDir())
	r, err := h.Create("corrupt", host.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other, data := mapRegion(t, r)
	binary.LittleEndian.PutUint32(data[region.LenOffset:], 1<<31) // past the region's end
	if _, _, err := other.AppendContent(nil); !errors.Is(err, region.ErrCorrupt) {
		t.Fatalf("read of a corrupt length field: err = %v, want ErrCorrupt", err)
	}
	before := runtime.NumGoroutine()
	ch := make(chan struct{}, 1)
	s, err := r.Subscribe(ch)
	if err != nil {
		t.Fatal(err)
	}
	// Let the hub try its first snapshot before the repair. (It exits
	// when the snapshot fails; a hub that keeps going is fine too.)
	shmtest.Poll(time.Second, func() bool { return runtime.NumGoroutine() <= before })
	v, err := other.Write([]byte("repaired"), region.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tm := time.NewTimer(2 * time.Second)
	defer tm.Stop()
	select {
	case <-ch:
		if snap := s.Latest(); snap == nil || snap.Version != v || string(snap.Content) != "repaired" {
			t.Errorf("after the repair: Latest() = %+v, want version %d %q", snap, v, "repaired")
		}
	case <-tm.C:
		// A new subscription does not restart the hub either.
		ch2 := make(chan struct{}, 1)
		if _, err := r.Subscribe(ch2); err != nil {
			t.Fatal(err)
		}
		restarted := false
		select {
		case <-ch2:
			restarted = true
		case <-time.After(500 * time.Millisecond):
		}
		t.Errorf("BUG: the subscriber got no signal within 2s of a write (version %d) that followed a failed snapshot; a new subscription got one: %v. "+
			"hub.run returns on any AppendContent error but leaves hub.running set, so the region's watchers are dead until every subscription closes "+
			"(a utf8 lease held longer than 5s makes AppendContent fail with ErrLockTimeout the same way)", v, restarted)
	}
}

// TestHubRestartForgetsOldSnapshot lets a region's hub stop (its last
// subscription closed), writes while nobody watches, and subscribes again:
// the new subscription must never see the snapshot the stopped hub took,
// which is older than the region. A server's pusher reads Latest as soon
// as a WATCH is answered; a stale one there was a watch's first event at
// a version the region had long left (seen as TestWatchResumesAfterReset
// getting version 1 of 5 under arm64 emulation).
func TestHubRestartForgetsOldSnapshot(t *testing.T) {
	h := openHost(t, t.TempDir())
	r, err := h.Create("restarted", host.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 20 {
		old := write(t, r, fmt.Sprintf("seen by subscription %d", round))
		s, ch := subscribe(t, r)
		if v := s.Latest().Version; v != old {
			t.Fatalf("round %d: first snapshot at version %d, want %d", round, v, old)
		}
		s.Close()
		now := write(t, r, fmt.Sprintf("written while nobody watched (%d)", round))
		s2, err := r.Subscribe(ch)
		if err != nil {
			t.Fatal(err)
		}
		if snap := s2.Latest(); snap != nil && snap.Version != now {
			t.Fatalf("round %d: a new subscription sees version %d, %q; the region is at version %d (the stopped hub's snapshot was kept)", round, snap.Version, snap.Content, now)
		}
		s2.Close()
	}
}

package host

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shmgr/shmgr/internal/region"
)

// Snapshot is one committed state of a region. Subscribers share it; it
// must not be modified.
type Snapshot struct {
	// Version is the region's version.
	Version uint64
	// Content is the region's content at that version.
	Content []byte
	// changes are how the last snapshots (up to maxChanges, this one's
	// last) differed from the ones before them.
	changes []change
}

// change is how a snapshot differs from the one before it: only in
// [off, end) of its content, and, unless resized, in length neither.
type change struct {
	version, prev uint64
	off, end      int
	resized       bool
}

// nextSnapshot returns the snapshot of content b at version v that
// follows prev (nil for a hub's first). Unless diff is set (no subscriber
// wants deltas), it records the whole content as changed instead of
// comparing it with prev's: DeltaSince then spans all of it, and the
// watcher gets the content in full.
func nextSnapshot(prev *Snapshot, v uint64, b []byte, diff bool) *Snapshot {
	snap := &Snapshot{Version: v, Content: b}
	if prev != nil {
		off, n, resized := 0, len(b), true
		if diff {
			off, n = changed(prev.Content, b)
			resized = len(b) != len(prev.Content)
		}
		c := change{version: v, prev: prev.Version, off: off, end: off + n, resized: resized}
		keep := prev.changes[max(len(prev.changes)-(maxChanges-1), 0):]
		snap.changes = append(append(make([]change, 0, len(keep)+1), keep...), c)
	}
	return snap
}

// maxChanges is how many snapshots back DeltaSince can reach.
const maxChanges = 64

// DeltaSince returns the range of the content that differs from the
// content at version v, in the sense of proto.ApplyDelta: a client holding
// version v rebuilds this snapshot from Content[off:off+n]. ok is false
// when v is not one of the last snapshots (then send it all).
func (s *Snapshot) DeltaSince(v uint64) (off, n int, ok bool) {
	lo, hi, resized := len(s.Content), 0, false
	for i := len(s.changes) - 1; i >= 0; i-- {
		c := s.changes[i]
		lo, hi = min(lo, c.off), max(hi, c.end)
		resized = resized || c.resized
		if c.prev == v {
			if resized {
				hi = len(s.Content)
			}
			lo = min(lo, len(s.Content))
			hi = max(min(hi, len(s.Content)), lo)
			return lo, hi - lo, true
		}
	}
	return 0, 0, false
}

// changed returns the range of next that differs from prev, such that
// proto.ApplyDelta(prev, len(next), off, next[off:off+n]) is next: the
// first differing byte through the last (through the end if the lengths
// differ).
func changed(prev, next []byte) (off, n int) {
	m := min(len(prev), len(next))
	i := firstDiff(prev[:m], next[:m])
	if len(prev) != len(next) || i == m {
		return i, len(next) - i
	}
	j := m - firstDiffBack(prev[:m], next[:m])
	return i, j - i
}

// diffChunk is how many bytes firstDiff compares at a time with
// bytes.Equal (vectorised) before it looks for the byte.
const diffChunk = 256

// firstDiff returns the index of the first byte where a and b (of equal
// length) differ, or their length.
func firstDiff(a, b []byte) int {
	i := 0
	for i+diffChunk <= len(a) && bytes.Equal(a[i:i+diffChunk], b[i:i+diffChunk]) {
		i += diffChunk
	}
	for i < len(a) && a[i] == b[i] {
		i++
	}
	return i
}

// firstDiffBack returns how many bytes at the end of a and b (of equal
// length) are equal.
func firstDiffBack(a, b []byte) int {
	k := 0
	for k+diffChunk <= len(a) && bytes.Equal(a[len(a)-k-diffChunk:len(a)-k], b[len(b)-k-diffChunk:len(b)-k]) {
		k += diffChunk
	}
	for k < len(a) && a[len(a)-1-k] == b[len(b)-1-k] {
		k++
	}
	return k
}

// Sub is a subscription to a region's changes. A slow subscriber never
// blocks writers or the host: it sees the latest state when it looks
// (coalesced), and the versions in between are skipped.
type Sub struct {
	h      *hub
	notify chan<- struct{}
	closed atomic.Bool
	delta  bool // counted in h.deltas (under h.mu)
}

// WantDeltas says whether this subscriber sends deltas (see
// Snapshot.DeltaSince): the hub compares each snapshot with the one before
// only while some subscriber does.
func (s *Sub) WantDeltas(on bool) {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	if on == s.delta || s.closed.Load() {
		return
	}
	s.delta = on
	if on {
		s.h.deltas.Add(1)
	} else {
		s.h.deltas.Add(-1)
	}
}

// Latest returns the newest snapshot (nil before the first one).
func (s *Sub) Latest() *Snapshot { return s.h.latest.Load() }

// Gone reports whether the region was deleted: no more changes will come.
func (s *Sub) Gone() bool { return s.h.gone.Load() }

// Close ends the subscription.
func (s *Sub) Close() {
	if s.closed.Swap(true) {
		return
	}
	s.h.remove(s)
}

// hub watches one region for its subscribers: one goroutine sleeps on the
// region's watch word (a futex on Linux), and on every change takes one
// snapshot and signals every subscriber.
type hub struct {
	r      *Region
	latest atomic.Pointer[Snapshot]
	gone   atomic.Bool  // the region was deleted
	deltas atomic.Int32 // subscribers that want deltas
	// mu protects subs and running.
	mu      sync.Mutex
	subs    map[*Sub]struct{}
	running bool
	stop    chan struct{}
}

// hubPoll bounds how long the hub sleeps between checks that it should
// stop; changes wake it at once.
const hubPoll = 5 * time.Second

// Subscribe returns a subscription to the region's changes: notify gets a
// signal (sent without blocking; give it room for one) whenever a newer
// snapshot is available, the first at once with the current state. One
// channel may serve many subscriptions.
func (r *Region) Subscribe(notify chan<- struct{}) (*Sub, error) {
	r.mu.RLock()
	gone := r.gone
	r.mu.RUnlock()
	if gone {
		return nil, ErrNotFound
	}
	h := r.hub
	s := &Sub{h: h, notify: notify}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	if !h.running {
		// A stopped hub's snapshot is as old as its last commit seen;
		// the region may have moved on since. Until the new run's first
		// snapshot there is none (see run: a stopped run stores nothing).
		h.latest.Store(nil)
		h.running = true
		h.stop = make(chan struct{})
		r.owner.wg.Add(1)
		go h.run(h.stop)
	} else if h.latest.Load() != nil {
		signal(notify)
	}
	h.mu.Unlock()
	return s, nil
}

// Watchers returns the number of subscriptions to the region.
func (r *Region) Watchers() int {
	r.hub.mu.Lock()
	defer r.hub.mu.Unlock()
	return len(r.hub.subs)
}

func (h *hub) remove(s *Sub) {
	h.mu.Lock()
	delete(h.subs, s)
	if s.delta {
		s.delta = false
		h.deltas.Add(-1)
	}
	stopping := len(h.subs) == 0 && h.running
	if stopping {
		close(h.stop)
		h.running = false
	}
	h.mu.Unlock()
	if stopping {
		h.wake()
	}
}

// shutdown stops the hub (the host is closing, or the region is being
// deleted) and wakes it. On deletion every subscriber is told, so that no
// watch waits forever for a region that is gone. The caller must not hold
// h.r.mu.
func (h *hub) shutdown(deleted bool) {
	h.mu.Lock()
	if h.running {
		close(h.stop)
		h.running = false
	}
	if deleted {
		h.gone.Store(true)
		for s := range h.subs {
			signal(s.notify)
		}
	}
	h.mu.Unlock()
	h.wake()
}

// wake makes a hub sleeping on the region's watch word look at its stop
// channel now.
func (h *hub) wake() { h.r.Do(func(rr *region.Region) error { rr.Kick(); return nil }) }

// errStopped ends a hub's region access when it has been told to stop.
var errStopped = errors.New("hub stopped")

func (h *hub) run(stop chan struct{}) {
	defer h.r.owner.wg.Done()
	stopped := func() bool {
		select {
		case <-stop:
			return true
		case <-h.r.owner.stop:
			return true
		default:
			return false
		}
	}
	var last uint64
	var lastErr string
	first := true
	for {
		var seq uint32
		var snap *Snapshot
		var readErr error
		err := h.r.Do(func(rr *region.Region) error {
			// The word is read before the stop check, so a stop (which kicks
			// the word) after the check still ends the wait below at once.
			seq = rr.WatchSeq()
			if stopped() {
				return errStopped
			}
			if !first && rr.Version() == last {
				return nil
			}
			b, v, err := rr.AppendContent(nil)
			if err != nil {
				readErr = err
				return nil
			}
			snap = nextSnapshot(h.latest.Load(), v, b, h.deltas.Load() > 0)
			return nil
		})
		if err != nil {
			return // stopped, or the region was deleted
		}
		if readErr != nil {
			// Keep watching: the next commit may well read fine.
			if msg := readErr.Error(); msg != lastErr {
				h.r.owner.cfg.Logf("watch %q: reading the region failed: %v", h.r.entry.ID, readErr)
				lastErr = msg
			}
		}
		if snap != nil {
			first, last, lastErr = false, snap.Version, ""
			h.mu.Lock()
			if stopped() {
				// A run that was stopped while it read must not publish:
				// a new run may have started and stored a newer snapshot.
				h.mu.Unlock()
				return
			}
			h.latest.Store(snap)
			for s := range h.subs {
				signal(s.notify)
			}
			h.mu.Unlock()
		}
		if err := h.r.Do(func(rr *region.Region) error {
			if stopped() {
				return errStopped
			}
			rr.WaitChange(seq, hubPoll)
			return nil
		}); err != nil {
			return
		}
	}
}

func signal(c chan<- struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

package cluster

import (
	"hash/crc32"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/region"
)

// The watchdog's pace: every watchEvery it compares each region's version
// with the one the log left it at (a map walk and one load per region);
// every sumEvery ticks it also checksums up to sumBudget bytes of content,
// taking the regions in turn, to catch bytes changed without the version.
const (
	watchEvery = 100 * time.Millisecond
	sumEvery   = 10
	sumBudget  = 64 << 20
)

// watchdog finds regions whose shared memory changed with no entry
// applied: a program writing the documented layout (or the region's own
// write path) straight into this node's mapping. The log cannot replicate
// such a write, so this replica now differs from the others; the FSM would
// notice only at the region's next entry, and not at all if the version
// did not move. The watchdog says so within a second, once per change.
//
// Versions are compared under fsm.kmu, which an entry holds from before
// it writes until the FSM has recorded the version it left: a region is
// never seen between the two. Checksums are taken without it (a copy of a
// large region would stall the log) and kept only when the version the
// log knows did not move across the copy.
type watchdog struct {
	f      *fsm
	h      *host.Host
	logf   func(string, ...any)
	found  atomic.Uint64 // Status.OutsideWrites
	rounds atomic.Uint64 // checksum rounds done (for tests)

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup

	// The rest belongs to the watchdog's goroutine.
	epoch  uint64
	seen   map[string]*watched
	next   int // where the next checksum round starts, in the region list
	buf    []byte
	ticks  int
	ticker *time.Ticker
}

// watched is what the watchdog knows of one region.
type watched struct {
	nonce   uint64
	version uint64 // the version the sum is of
	sum     uint32
	hasSum  bool
	// reported is the version last reported as moved outside the log, so
	// that a change is reported once, not at every tick.
	reported uint64
}

// startWatchdog starts watching f's regions on h.
func startWatchdog(f *fsm, h *host.Host, logf func(string, ...any)) *watchdog {
	w := &watchdog{f: f, h: h, logf: logf, stop: make(chan struct{}), seen: map[string]*watched{}, ticker: time.NewTicker(watchEvery)}
	w.wg.Add(1)
	go w.run()
	return w
}

// count returns how many changes outside the log the watchdog found. A
// nil watchdog found none.
func (w *watchdog) count() uint64 {
	if w == nil {
		return 0
	}
	return w.found.Load()
}

// close stops the watchdog and waits for it. A nil watchdog, or one
// closed already, is fine (Node.Close may be called twice).
func (w *watchdog) close() {
	if w == nil {
		return
	}
	w.stopOnce.Do(func() { close(w.stop) })
	w.wg.Wait()
}

func (w *watchdog) run() {
	defer w.wg.Done()
	defer w.ticker.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-w.ticker.C:
		}
		ids := w.checkVersions()
		if w.ticks++; w.ticks%sumEvery == 0 {
			w.checkSums(ids)
			w.rounds.Add(1)
		}
	}
}

// known is a region the log knows, with the version it left it at.
type known struct {
	id string
	v  uint64
}

// checkVersions compares every region the log knows with the version the
// log left it at, and returns those regions.
func (w *watchdog) checkVersions() []known {
	w.f.kmu.Lock()
	defer w.f.kmu.Unlock()
	if w.f.epoch != w.epoch {
		// A snapshot was restored or the host reset: every region may
		// have been installed anew.
		w.epoch, w.seen = w.f.epoch, map[string]*watched{}
	}
	ids := make([]known, 0, len(w.f.known))
	for id, want := range w.f.known {
		r, err := w.h.Get(id)
		if err != nil {
			continue
		}
		var v, nonce uint64
		if r.Do(func(rr *region.Region) error { v, nonce = rr.Version(), rr.Nonce(); return nil }) != nil {
			continue
		}
		ids = append(ids, known{id, want})
		s := w.record(id, nonce)
		if v != want && v != s.reported {
			s.reported = v
			w.found.Add(1)
			w.logf("cluster: REGION WRITTEN OUTSIDE THE LOG: region %q is at version %d in this node's shared memory, the log left it at %d: a program wrote the mapping directly, and the cluster cannot replicate that write, so this replica now differs from the others. Stop that program and write through shmgr (the client library or shmgr write send writes to the host); then rebuild this node from the others (stop it, empty its data directories, add it back)", id, v, want)
		}
	}
	return ids
}

// record returns the watchdog's record of region id, a new one if the
// region was replaced (another nonce).
func (w *watchdog) record(id string, nonce uint64) *watched {
	s := w.seen[id]
	if s == nil || s.nonce != nonce {
		s = &watched{nonce: nonce}
		w.seen[id] = s
	}
	return s
}

// checkSums checksums the content of regions of ids, in turn from where
// the last round stopped, up to sumBudget bytes (at least one region), and
// reports content that changed while its version stayed where the log
// left it.
func (w *watchdog) checkSums(ids []known) {
	if len(ids) == 0 {
		return
	}
	budget := int64(sumBudget)
	for i := 0; i < len(ids) && budget > 0; i++ {
		k := ids[(w.next+i)%len(ids)]
		w.next = (w.next + i + 1) % len(ids)
		r, err := w.h.Get(k.id)
		if err != nil {
			continue
		}
		var v, nonce uint64
		err = r.Do(func(rr *region.Region) (err error) {
			nonce = rr.Nonce()
			w.buf, v, err = rr.AppendContent(w.buf[:0])
			return err
		})
		if err != nil {
			continue
		}
		budget -= int64(len(w.buf))
		w.f.kmu.Lock()
		want, ok := w.f.known[k.id]
		logSum, hasLogSum := w.f.sums[k.id]
		stale := w.f.epoch != w.epoch
		w.f.kmu.Unlock()
		s := w.seen[k.id]
		if stale || !ok || want != k.v || v != want || s == nil || s.nonce != nonce {
			// An entry applied during the copy, or the version is off
			// (checkVersions reports that): no sum to compare.
			if s != nil {
				s.hasSum = false
			}
			continue
		}
		sum := crc32.Checksum(w.buf, castagnoli)
		if (!s.hasSum || s.version != v) && hasLogSum {
			// The entry wrote the region whole: its sum is the content
			// the log left, so a change made before this first look at
			// the version is found too.
			s.version, s.sum, s.hasSum = v, logSum, true
		}
		if s.hasSum && s.version == v && s.sum != sum {
			w.found.Add(1)
			w.logf("cluster: REGION WRITTEN OUTSIDE THE LOG: region %q changed in this node's shared memory at version %d with no entry applied: a program wrote the documented layout directly, and the cluster cannot replicate that write, so this replica now differs from the others. Stop that program and write through shmgr (the client library or shmgr write send writes to the host); a whole write through shmgr then makes every replica equal again", k.id, v)
		}
		s.version, s.sum, s.hasSum = v, sum, true
	}
	if cap(w.buf) > sumBudget {
		w.buf = nil // do not keep a large region's copy between rounds
	}
}

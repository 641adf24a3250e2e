package server

import (
	"container/list"
	"sync"

	"github.com/shmgr/shmgr/internal/proto"
)

// Dedup bounds: how many recent writes are remembered per client id, and
// how many client ids are remembered (least recently used go first).
const (
	dedupWindow  = 64
	dedupClients = 4096
)

// dedup remembers the outcome of recent writes by (client id, seq), so
// that a write retried after a lost reply is applied once and its first
// answer is replayed.
type dedup struct {
	// mu protects clients and lru; each client's own mutex serialises its
	// writes (a client's writes are sequential anyway).
	mu      sync.Mutex
	clients map[string]*list.Element // of *window
	lru     list.List
}

// window is one client's recent results, indexed by seq % dedupWindow.
type window struct {
	id      string
	mu      sync.Mutex
	maxSeq  uint64
	results [dedupWindow]outcome
}

// outcome is a write's answer: a version, or an error.
type outcome struct {
	seq     uint64
	set     bool
	version uint64
	code    proto.Code
	msg     string
}

// client returns the window of a client id, creating it (and evicting the
// least recently used one past the bound).
func (d *dedup) client(id []byte) *window {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.clients == nil {
		d.clients = map[string]*list.Element{}
	}
	if e, ok := d.clients[string(id)]; ok {
		d.lru.MoveToFront(e)
		return e.Value.(*window)
	}
	w := &window{id: string(id)}
	d.insert(w)
	return w
}

// insert makes w the most recently used window, replacing one with its id
// and evicting the least recently used past the bound. d.mu is held.
func (d *dedup) insert(w *window) {
	if d.clients == nil {
		d.clients = map[string]*list.Element{}
	}
	if old, ok := d.clients[w.id]; ok {
		d.lru.Remove(old)
	}
	d.clients[w.id] = d.lru.PushFront(w)
	if d.lru.Len() > dedupClients {
		old := d.lru.Back()
		d.lru.Remove(old)
		delete(d.clients, old.Value.(*window).id)
	}
}

// lookup returns the recorded outcome of seq, whether it is known, and
// whether seq is too old to tell. w.mu is held.
func (w *window) lookup(seq uint64) (o outcome, known, tooOld bool) {
	if w.maxSeq >= dedupWindow && seq <= w.maxSeq-dedupWindow {
		return outcome{}, false, true
	}
	o = w.results[seq%dedupWindow]
	if o.set && o.seq == seq {
		return o, true, false
	}
	return outcome{}, false, false
}

// record stores the outcome of seq. w.mu is held.
func (w *window) record(o outcome) {
	o.set = true
	w.results[o.seq%dedupWindow] = o
	w.maxSeq = max(w.maxSeq, o.seq)
}

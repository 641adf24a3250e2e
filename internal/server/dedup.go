package server

import (
	"container/list"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/shmgr/shmgr/internal/proto"
)

// Dedup bounds: how many recent writes are remembered per client id, how
// many client ids keep their window (least recently used go first), and
// how many evicted client ids the compact record holds before the session
// ends (see dedup).
const (
	dedupWindow    = 64
	dedupClients   = 4096
	dedupForgotten = 1 << 20
)

// dedup remembers the outcome of recent writes by (client id, seq), so
// that a write retried after a lost reply is applied once and its first
// answer is replayed.
//
// Within one session no keyed write is ever applied twice, however many
// clients come and go: the 4096 most recently active client ids keep the
// answers to their last 64 writes; a client id evicted from that window
// leaves a compact record (a keyed 64-bit hash of the id and its highest
// seq, about 40 bytes), and a later write from it at or below that seq is
// answered unknown_outcome, never applied. When the record reaches
// dedupForgotten ids the session ends: the server takes a new session id
// and forgets everything, and a client that reconnects sees the new id
// and reports ErrUnknownOutcome for a write whose reply it lost, without
// sending it again. (A hash collision can only make a fresh write answer
// unknown_outcome, never apply one twice.)
//
// # Blocking
//
// A keyed write holds its client's window lock (window.mu, through
// acquire) from the lookup until its outcome is recorded, and so across
// the write itself, which includes the wait for the region's lock (up to
// Config.LockTimeout; Shutdown ends the wait early, with "host is shutting
// down"). That is what makes the write at most once: a retry of the same
// client id, sent on another connection while the first attempt still
// waits (its client gave up on the reply and reconnected), waits behind
// it for the window lock, then finds the first attempt's outcome and
// replays it. So a client's retries, and its other keyed writes, are
// serialised behind one region lock wait; other clients' writes are not.
//
// Two waits go wider than one client, both rare. Evicting a window (the
// least recently used of dedupClients, see insert) takes its lock with
// d.mu held, so that a write in flight on it is in the compact record:
// if that window's write is waiting for a region lock, every keyed write
// and every new connection (sessionID) waits with it, up to LockTimeout.
// It takes dedupClients other clients writing during one lock wait.
// State takes each window's lock too: call it after Shutdown, when no
// write is in flight.
type dedup struct {
	// mu protects everything below; each window's own mutex serialises
	// that client's writes (a client's writes are sequential anyway).
	mu      sync.Mutex
	clients map[string]*list.Element // of *window
	lru     list.List
	// forgotten maps hash(id) of each client evicted in this session to
	// the highest seq it had used.
	forgotten map[uint64]uint64
	// key makes the hashes unguessable, so that no client can pick an id
	// whose record shadows another's.
	key     [16]byte
	session string // 16 hex digits, changes when the session ends
	// maxForgotten is dedupForgotten (tests lower it).
	maxForgotten int
	// logf reports a session's end (never called with mu held).
	logf func(format string, args ...any)
}

// window is one client's recent results, indexed by seq % dedupWindow.
type window struct {
	id string
	// mu protects the fields below, and is held by a keyed write from its
	// lookup to its record, region lock wait included (see dedup).
	mu      sync.Mutex
	maxSeq  uint64
	floor   uint64 // seqs up to it were used before the id was evicted
	evicted bool   // moved to the compact record: use the id's new window
	results [dedupWindow]outcome
}

// outcome is a write's answer: a version, or an error (code is not
// CodeUnknown) and the reply's text after its code word (failure.text:
// for a conflict, its fields and then its message), so that a replay,
// here or in the process State hands it to, is the first answer byte for
// byte.
type outcome struct {
	seq     uint64
	set     bool
	version uint64
	code    proto.Code
	msg     string
}

// newSession starts a fresh session: a new id and key, nothing
// remembered. d.mu is held (or d is new).
func (d *dedup) newSession() {
	var b [8]byte
	rand.Read(b[:])
	rand.Read(d.key[:])
	d.session = hex.EncodeToString(b[:])
	d.clients = map[string]*list.Element{}
	d.lru.Init()
	d.forgotten = map[uint64]uint64{}
}

// limit is how many evicted ids the compact record holds.
func (d *dedup) limit() int {
	if d.maxForgotten > 0 {
		return d.maxForgotten
	}
	return dedupForgotten
}

// sessionID returns the current session id.
func (d *dedup) sessionID() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.session
}

// hash is the record key of a client id.
func (d *dedup) hash(id string) uint64 {
	h := sha256.New()
	h.Write(d.key[:])
	h.Write([]byte(id))
	var sum [sha256.Size]byte
	return binary.LittleEndian.Uint64(h.Sum(sum[:0]))
}

// client returns the window of a client id, creating it (with the floor
// its compact record holds, if it was evicted before) and evicting the
// least recently used one past the bound, and the session it belongs to.
// A connection opened in an earlier session must not use it: its client
// may be retrying a write the new session knows nothing of.
func (d *dedup) client(id []byte) (*window, string) {
	d.mu.Lock()
	if e, ok := d.clients[string(id)]; ok {
		d.lru.MoveToFront(e)
		session := d.session
		d.mu.Unlock()
		return e.Value.(*window), session
	}
	w := &window{id: string(id)}
	if len(d.forgotten) > 0 {
		h := d.hash(w.id)
		if seq, ok := d.forgotten[h]; ok {
			w.floor, w.maxSeq = seq, seq
			delete(d.forgotten, h)
		}
	}
	d.insert(w)
	ended := ""
	if limit := d.limit(); len(d.forgotten) > limit {
		ended = d.session
		d.newSession()
		d.insert(w) // the caller's window, floor kept, now in the new session
	}
	session := d.session
	d.mu.Unlock()
	if ended != "" && d.logf != nil {
		d.logf("session %s ended: more than %d evicted client ids; the outcomes of its writes are forgotten (a client retrying one gets unknown_outcome); session %s begins", ended, d.limit(), session)
	}
	return w, session
}

// acquire returns the window of a client id locked, and its session: a
// window evicted between client and its lock is left for the id's new one.
func (d *dedup) acquire(id []byte) (*window, string) {
	for {
		w, session := d.client(id)
		w.mu.Lock()
		if !w.evicted {
			return w, session
		}
		w.mu.Unlock()
	}
}

// insert makes w the most recently used window, replacing one with its id
// and evicting the least recently used past the bound into the compact
// record. d.mu is held.
func (d *dedup) insert(w *window) {
	if old, ok := d.clients[w.id]; ok {
		d.lru.Remove(old)
	}
	d.clients[w.id] = d.lru.PushFront(w)
	if d.lru.Len() > dedupClients {
		old := d.lru.Back()
		d.lru.Remove(old)
		ow := old.Value.(*window)
		delete(d.clients, ow.id)
		// The window's lock waits for a write in flight, so that its seq
		// is in the record. That is rare: a write moves its window to the
		// front, and 4096 other clients must write before it reaches the
		// back.
		ow.mu.Lock()
		ow.evicted = true
		last := max(ow.maxSeq, ow.floor)
		ow.mu.Unlock()
		if last > 0 {
			h := d.hash(ow.id)
			d.forgotten[h] = max(d.forgotten[h], last)
		}
	}
}

// lookup returns the recorded outcome of seq and whether it is known; if
// the host cannot tell whether seq was applied, unknown says why (the
// write must then be answered unknown_outcome, not applied). w.mu is
// held.
func (w *window) lookup(seq uint64) (o outcome, known bool, unknown string) {
	if seq <= w.floor {
		return outcome{}, false, fmt.Sprintf("seq %d of client %s: the host has had more than %d other clients since this client's writes up to seq %d, and kept only their highest seq: it cannot tell whether this one was applied", seq, w.id, dedupClients, w.floor)
	}
	if w.maxSeq >= dedupWindow && seq <= w.maxSeq-dedupWindow {
		return outcome{}, false, fmt.Sprintf("seq %d of client %s is older than its last %d writes: the host cannot tell whether it was applied", seq, w.id, dedupWindow)
	}
	o = w.results[seq%dedupWindow]
	if o.set && o.seq == seq {
		return o, true, ""
	}
	return outcome{}, false, ""
}

// record stores the outcome of seq. w.mu is held.
func (w *window) record(o outcome) {
	o.set = true
	w.results[o.seq%dedupWindow] = o
	w.maxSeq = max(w.maxSeq, o.seq)
}

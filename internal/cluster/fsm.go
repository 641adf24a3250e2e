package cluster

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shmerr"
)

// castagnoli is the CRC-32C table of upload checksums.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// applyLockWait is how long an entry waits for a region's lock. In a
// cluster nothing but the log writes a region, so the lock is free unless
// a program writes the mapping behind the log's back; the wait is long so
// that such a program delays the replica rather than make it skip an
// entry the others applied.
const applyLockWait = time.Minute

// Result is what applying one entry gave: the region's version after it,
// or the error every replica met (a conflict, a region not found ...).
type Result struct {
	// Version is the region's version after the entry (0 for a delete).
	Version uint64
	// Err is the entry's error, of a kind of package shmerr.
	Err error
}

// fsm applies committed entries to the host's regions. Raft calls Apply,
// Snapshot and Restore from one goroutine, so the staged uploads need no
// lock for them; mu is for readers outside it (Staged).
type fsm struct {
	h    *host.Host
	logf func(string, ...any)
	// alarmf reports a diverged replica (Config.Alarmf); nil: logf.
	alarmf func(string, ...any)
	// staleAfter: an upload with no piece for this many entries is
	// dropped (its leader died before the commit).
	staleAfter uint64

	// mu protects uploads, requests and order, leases, now and tokens
	// (written on the FSM goroutine, read by Node's methods too).
	mu      sync.Mutex
	uploads map[uint64]*upload
	// leases are the regions' leases; now is log time, the largest
	// Command.Stamp applied (Unix nanoseconds); tokens the access tokens
	// file of the last OpTokens.
	leases  map[string]lease
	now     int64
	tokens  tokens
	applied atomic.Uint64
	// wmu protects wake, closed and replaced after every entry to wake
	// waitApplied.
	wmu  sync.Mutex
	wake chan struct{}
	// requests are the results of the last maxRequests requests (by
	// Command.Request), oldest first in order; under mu.
	requests map[uint64]Result
	order    []uint64
	// known is the version the log left each region at: a region found
	// at another version was written behind the log's back. diverged
	// counts such findings. kmu protects known and epoch for the watchdog;
	// an entry holds it while it applies, so that known and the regions
	// always agree under it. epoch counts restores and resets.
	kmu   sync.Mutex
	known map[string]uint64
	epoch uint64
	// sums holds the CRC-32C of a region's content at its known version
	// when the entry that left it there wrote it whole (the watchdog's
	// reference for bytes changed in place); under kmu.
	sums     map[string]uint32
	diverged atomic.Uint64
	// restores counts snapshots restored (on start, or sent by a leader
	// to a node that fell behind the compacted log).
	restores atomic.Uint64
}

// upload is a large write being staged, off the region.
type upload struct {
	parts [][]byte
	size  int64
	last  uint64 // index of the entry that added the last piece
}

func newFSM(h *host.Host, logf func(string, ...any), staleAfter uint64) *fsm {
	return &fsm{h: h, logf: logf, staleAfter: staleAfter, uploads: map[uint64]*upload{}, wake: make(chan struct{}), requests: map[uint64]Result{},
		known: map[string]uint64{}, leases: map[string]lease{}, sums: map[string]uint32{}}
}

// maxRequests is how many requests the FSM remembers for exactly-once
// retries. A constant, not a setting: every replica must forget the same
// ones at the same entry.
const maxRequests = 1 << 16

// seen returns the result of an applied request.
func (f *fsm) seen(id uint64) (Result, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.requests[id]
	return r, ok
}

// remember records a request's result, forgetting the oldest beyond
// maxRequests.
func (f *fsm) remember(id uint64, r Result) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests[id] = r
	f.order = append(f.order, id)
	if len(f.order) > maxRequests {
		delete(f.requests, f.order[0])
		f.order = f.order[1:]
	}
}

// alarm logs what an operator must act on.
func (f *fsm) alarm(format string, args ...any) {
	if f.alarmf != nil {
		f.alarmf(format, args...)
		return
	}
	f.logf(format, args...)
}

// Apply implements raft.FSM. It returns a *Result.
func (f *fsm) Apply(l *raft.Log) any {
	defer f.woke(l.Index)
	if l.Type != raft.LogCommand {
		return nil
	}
	c, err := Decode(l.Data)
	if err != nil {
		f.logf("cluster: entry %d: %v (skipped on every node alike)", l.Index, err)
		return &Result{Err: err}
	}
	f.tick(&c)
	if c.Request != 0 && c.Op != OpChunk {
		if res, ok := f.seen(c.Request); ok {
			if c.Op == OpCommit {
				f.take(&c) // the retry's pieces: not applied again
			}
			return &res
		}
	}
	f.kmu.Lock()
	res := f.apply(l.Index, &c)
	f.kmu.Unlock()
	if c.Request != 0 && c.Op != OpChunk && remembered(res) {
		f.remember(c.Request, res)
	}
	return &res
}

// woke records index as applied and wakes waitApplied.
func (f *fsm) woke(index uint64) {
	f.applied.Store(index)
	f.wmu.Lock()
	close(f.wake)
	f.wake = make(chan struct{})
	f.wmu.Unlock()
}

// wakeCh returns the channel the next applied entry closes. Node's
// waitApplied waits on it for the FSM's own applied index: not Raft's,
// which Raft moves on when it hands entries to the FSM goroutine, before
// they are applied, so a read after it could miss them (TestLinearizable
// caught that).
func (f *fsm) wakeCh() chan struct{} {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	return f.wake
}

// apply runs one command; everything it does depends only on the command
// and the state the earlier entries left, so every replica gets the same
// bytes, the same version and the same error.
func (f *fsm) apply(index uint64, c *Command) Result {
	switch c.Op {
	case OpCreate:
		_, err := f.h.Create(c.ID, host.CreateOptions{Size: c.Size, Layout: c.Layout, Durable: c.Durable, MaxWrite: c.MaxWrite})
		if err == nil {
			f.known[c.ID] = 0
			f.dropLease(c.ID)
			delete(f.sums, c.ID)
		}
		return Result{Err: err}
	case OpDelete:
		err := f.h.Delete(c.ID)
		if err == nil {
			delete(f.known, c.ID)
			f.dropLease(c.ID)
			delete(f.sums, c.ID)
		}
		return Result{Err: err}
	case OpWrite, OpWriteAt:
		if res := f.gate(c); res.Err != nil {
			return res
		}
		return f.write(c.ID, c.Op == OpWriteAt, c.Off, c.Data, c.Conditional, c.IfVersion)
	case OpChunk:
		return Result{Err: f.stage(index, c)}
	case OpCommit:
		data, err := f.take(c)
		if err != nil {
			return Result{Err: err}
		}
		if res := f.gate(c); res.Err != nil {
			return res
		}
		return f.write(c.ID, c.WriteAt, c.Off, data, c.Conditional, c.IfVersion)
	case OpLock:
		return f.lockRegion(index, c)
	case OpRenew:
		return f.renew(c)
	case OpUnlock:
		return f.unlock(c)
	case OpTokens:
		f.setTokens(c.Data)
		return Result{}
	}
	return Result{Err: fmt.Errorf("%w: unknown op %d", ErrBadCommand, c.Op)}
}

func (f *fsm) write(id string, at bool, off int64, data []byte, cond bool, ifv uint64) Result {
	r, err := f.h.Get(id)
	if err != nil {
		return Result{Err: err}
	}
	o := region.WriteOptions{Timeout: applyLockWait, Conditional: cond, IfVersion: ifv}
	var v uint64
	whole := false
	err = r.DoWrite(func(rr *region.Region) (err error) {
		whole = !at && (rr.Layout() == region.UTF8 || int64(len(data)) == rr.Size())
		if want, ok := f.known[id]; ok && rr.Version() != want {
			f.diverged.Add(1)
			f.alarm("cluster: REPLICA DIVERGED: region %q is at version %d, the log left it at %d: something wrote it behind the cluster's log (a client writing its mapping, or a program writing the documented layout)", id, rr.Version(), want)
		}
		if at {
			v, err = rr.WriteAt(off, data, o)
		} else {
			v, err = rr.Write(data, o)
		}
		return err
	})
	if errors.Is(err, region.ErrLockTimeout) {
		// Only a writer behind the log's back holds the lock this long:
		// this replica now differs from the others. Say so loudly.
		f.alarm("cluster: REPLICA DIVERGED: region %q: %v; something writes its mapping outside the cluster's log", id, err)
	}
	if err == nil {
		f.known[id] = v
		if whole {
			f.sums[id] = crc32.Checksum(data, castagnoli)
		} else {
			delete(f.sums, id)
		}
	}
	return Result{Version: v, Err: err}
}

// stage keeps one piece of an upload, and drops uploads whose leader gave
// up on them (by log position, so every replica drops the same ones).
func (f *fsm) stage(index uint64, c *Command) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, u := range f.uploads {
		if u.last+f.staleAfter < index {
			delete(f.uploads, id)
		}
	}
	u := f.uploads[c.Upload]
	if u == nil {
		if c.Seq != 0 {
			return fmt.Errorf("%w: piece %d of upload %x, whose first pieces are gone", shmerr.ErrUnknownOutcome, c.Seq, c.Upload)
		}
		u = &upload{}
		f.uploads[c.Upload] = u
	}
	if int(c.Seq) != len(u.parts) {
		delete(f.uploads, c.Upload)
		return fmt.Errorf("%w: piece %d of upload %x after %d pieces", ErrBadCommand, c.Seq, c.Upload, len(u.parts))
	}
	u.parts = append(u.parts, append([]byte(nil), c.Data...))
	u.size += int64(len(c.Data))
	u.last = index
	return nil
}

// take removes an upload and returns its bytes, checked against the
// commit's count, size and checksum.
func (f *fsm) take(c *Command) ([]byte, error) {
	f.mu.Lock()
	u := f.uploads[c.Upload]
	delete(f.uploads, c.Upload)
	f.mu.Unlock()
	if u == nil {
		return nil, fmt.Errorf("%w: upload %x is not staged (its pieces were dropped)", shmerr.ErrUnknownOutcome, c.Upload)
	}
	if len(u.parts) != int(c.Chunks) || u.size != c.Total {
		return nil, fmt.Errorf("%w: upload %x has %d pieces, %d bytes; its commit says %d, %d", ErrBadCommand, c.Upload, len(u.parts), u.size, c.Chunks, c.Total)
	}
	data := make([]byte, 0, u.size)
	for _, p := range u.parts {
		data = append(data, p...)
	}
	if s := crc32.Checksum(data, castagnoli); s != c.Sum {
		return nil, fmt.Errorf("%w: upload %x fails its checksum", ErrBadCommand, c.Upload)
	}
	return data, nil
}

// Staged returns how many uploads are staged and their bytes.
func (f *fsm) staged() (n int, bytes int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range f.uploads {
		n++
		bytes += u.size
	}
	return n, bytes
}

// Snapshot implements raft.FSM: it copies every region (content and
// version, one seqlock read each) and the staged uploads now, on the FSM
// goroutine, so that the copy is the state at the snapshot's index; the
// copy is written out later, while entries go on applying.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	s := &snapshot{index: f.applied.Load()}
	for _, in := range f.h.List() {
		r, err := f.h.Get(in.ShmID)
		if err != nil {
			return nil, fmt.Errorf("cluster: snapshot: %w", err)
		}
		rs := snapRegion{ID: in.ShmID, Size: in.Size, Durable: in.Durable, Nonce: in.Nonce}
		if in.MaxWrite != in.Size {
			rs.MaxWrite = in.MaxWrite
		}
		if err := r.Do(func(rr *region.Region) (err error) {
			rs.Layout = rr.Layout()
			rs.Content, rs.Version, err = rr.AppendContent(nil)
			return err
		}); err != nil {
			return nil, fmt.Errorf("cluster: snapshot of region %q: %w", in.ShmID, err)
		}
		s.regions = append(s.regions, rs)
	}
	f.mu.Lock()
	for id, u := range f.uploads {
		s.uploads = append(s.uploads, snapUpload{ID: id, Last: u.last, Parts: u.parts}) // parts are never changed: shared
	}
	for _, id := range f.order {
		s.requests = append(s.requests, snapRequest{ID: id, Result: f.requests[id]})
	}
	s.now, s.tokens = f.now, f.tokens // tokens.data is never changed: shared
	for id, l := range f.leases {
		s.leases = append(s.leases, snapLease{ID: id, lease: l})
	}
	f.mu.Unlock()
	return s, nil
}

// Restore implements raft.FSM: it makes the host hold exactly the
// snapshot's regions. A region that is already at the snapshot's version
// in the same incarnation (the node restarting from its own snapshot) is
// left as it is, so its mapped readers see nothing happen; any other is
// installed at the snapshot's content and version.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	f.restores.Add(1)
	s, err := readSnapshot(rc)
	if err != nil {
		return err
	}
	f.kmu.Lock()
	defer f.kmu.Unlock()
	f.epoch++
	keep := map[string]bool{}
	f.known, f.sums = map[string]uint64{}, map[string]uint32{}
	for _, rs := range s.regions {
		keep[rs.ID] = true
		f.known[rs.ID] = rs.Version
		if r, err := f.h.Get(rs.ID); err == nil {
			in := r.Info()
			if in.Nonce == rs.Nonce && in.Version == rs.Version && in.Size == rs.Size && in.Layout == rs.Layout.String() {
				continue
			}
		}
		o := host.CreateOptions{Size: rs.Size, Layout: rs.Layout, Durable: rs.Durable, MaxWrite: rs.MaxWrite}
		if _, err := f.h.Install(rs.ID, o, rs.Content, rs.Version); err != nil {
			return fmt.Errorf("cluster: restore: %w", err)
		}
	}
	for _, in := range f.h.List() {
		if !keep[in.ShmID] {
			if err := f.h.Delete(in.ShmID); err != nil {
				return fmt.Errorf("cluster: restore: region %q is not in the snapshot: %w", in.ShmID, err)
			}
		}
	}
	f.mu.Lock()
	f.uploads = map[uint64]*upload{}
	for _, u := range s.uploads {
		nu := &upload{parts: u.Parts, last: u.Last}
		for _, p := range u.Parts {
			nu.size += int64(len(p))
		}
		f.uploads[u.ID] = nu
	}
	f.requests, f.order = map[uint64]Result{}, nil
	for _, r := range s.requests {
		f.requests[r.ID] = r.Result
		f.order = append(f.order, r.ID)
	}
	f.now, f.leases = s.now, map[string]lease{}
	for _, l := range s.leases {
		f.leases[l.ID] = l.lease
	}
	f.mu.Unlock()
	if s.tokens.set {
		f.setTokens(s.tokens.data)
	} else {
		f.mu.Lock()
		f.tokens = tokens{}
		f.mu.Unlock()
	}
	f.woke(s.index)
	return nil
}

// reset makes the host what it is before the first entry: the default
// region alone, empty, at version 0. A node whose log starts at index 1
// (no snapshot yet) replays it from there on start, onto this.
func (f *fsm) reset() error {
	def := f.h.DefaultID()
	f.kmu.Lock()
	defer f.kmu.Unlock()
	f.epoch++
	f.known, f.sums = map[string]uint64{def: 0}, map[string]uint32{}
	for _, in := range f.h.List() {
		if in.ShmID == def {
			if in.Version != 0 {
				l, _ := region.ParseLayout(in.Layout)
				o := host.CreateOptions{Size: in.Size, Layout: l, Durable: in.Durable}
				if _, err := f.h.Install(def, o, nil, 0); err != nil {
					return fmt.Errorf("cluster: reset the default region: %w", err)
				}
			}
			continue
		}
		if err := f.h.Delete(in.ShmID); err != nil {
			return fmt.Errorf("cluster: reset: %w", err)
		}
	}
	f.mu.Lock()
	f.uploads = map[uint64]*upload{}
	f.requests, f.order = map[uint64]Result{}, nil
	f.leases, f.now, f.tokens = map[string]lease{}, 0, tokens{}
	f.mu.Unlock()
	return nil
}

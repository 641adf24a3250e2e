package client

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shm"
)

// Region is one region on a host, reached by direct mapping (ModeLocal)
// or over TCP (ModeTCP). It is safe for concurrent use.
type Region struct {
	conn  *Conn
	owned bool // Close closes conn
	id    string
	info  Info
	mode  Mode
	why   string // why local mode was not used, if it was not

	lockTO time.Duration
	closed atomic.Bool

	// cur is the current local mapping (nil in TCP mode).
	cur atomic.Pointer[localMap]
	// mu protects old and leases, and serialises re-mapping.
	mu     sync.Mutex
	old    []*localMap // replaced mappings, unmapped at Close
	leases map[*Lease]struct{}
}

// localMap is one mapping of a region.
type localMap struct {
	r         *region.Region
	data, ctl *shm.Mapping
	refs      atomic.Int64 // calls using the mapping now
	// readOnly: the data object is mapped read-only (a cluster node's
	// region, see attach); writes go over TCP.
	readOnly bool
	// gen is the Conn's hostGen when the objects were mapped: another
	// host since (failover to the next of Options.Hosts) has its own.
	gen uint64
}

// close unmaps m once no call is using it any more (calls are short: a
// copy, or a watcher's bounded sleep).
func (m *localMap) close() {
	for i := 0; m.refs.Load() != 0; i++ {
		if i < 100 {
			runtime.Gosched()
		} else {
			time.Sleep(time.Millisecond)
		}
	}
	m.r.Close() // its owner slot, before the mapping goes
	m.data.Close()
	m.ctl.Close()
}

// release ends a call's use of m.
func (m *localMap) release() { m.refs.Add(-1) }

// Dial connects to the host at addr and opens the region shmID (empty:
// the host's default region), mapping it directly when it can (see
// Options.Mode).
func Dial(ctx context.Context, addr, shmID string, o Options) (*Region, error) {
	c, err := Connect(ctx, addr, o)
	if err != nil {
		return nil, err
	}
	r, err := c.Open(ctx, shmID)
	if err != nil {
		c.Close()
		return nil, err
	}
	r.owned = true
	return r, nil
}

// Open opens a region of this host (empty id: the default region). The
// Region shares the Conn; closing the Region does not close the Conn.
func (c *Conn) Open(ctx context.Context, id string) (*Region, error) {
	info := c.meta
	if id != "" && id != info.ShmID {
		if err := checkID(id); err != nil {
			return nil, err
		}
		var err error
		if info, err = c.Info(ctx, id); err != nil {
			return nil, fmt.Errorf("open region %q: %w", id, err)
		}
	}
	if err := c.allows(info.ShmID, false); err != nil {
		return nil, fmt.Errorf("open region %q: %w", info.ShmID, err)
	}
	r := &Region{conn: c, id: info.ShmID, info: info, mode: ModeTCP, lockTO: c.opts.LockTimeout, leases: map[*Lease]struct{}{}}
	if c.opts.Mode == ModeTCP {
		r.why = "TCP mode was requested"
		return r, nil
	}
	gen := c.hostGen.Load()
	m, err := attach(info, c.replicated.Load())
	if err == nil {
		m.gen = gen
		r.cur.Store(m)
		r.mode = ModeLocal
		// Nothing goes to the host while the region is used through the
		// mapping: a background check keeps Conn.State true.
		c.holdMonitor()
		return r, nil
	}
	if c.opts.Mode == ModeLocal {
		return nil, fmt.Errorf("open region %q: %w: %v", info.ShmID, ErrNotLocal, err)
	}
	r.why = err.Error()
	return r, nil
}

// attach maps the region's objects and checks they are the host's. With
// readOnly (the host is a cluster node: its regions change only through
// the replicated log) the data object is mapped read-only, so that a
// stray store into it faults this process instead of silently making this
// replica differ from the others. The control block stays writable: a
// reader claims an owner slot (its epoch and pid are words there) and a
// watcher counts itself in the waiters word; a read-only Region takes no
// lock, so nothing else of this process writes it.
func attach(in Info, readOnly bool) (*localMap, error) {
	if in.HostID != shm.HostID() {
		return nil, errors.New("the host runs on another machine")
	}
	open := shm.Open
	if in.OSKind == string(shm.KindFile) && in.Durable {
		open = shm.OpenFile
	}
	data, err := open(in.OSName, in.Size)
	if err != nil {
		return nil, err
	}
	// MaxWrite sizes the control block's undo area; hosts older than the
	// field send none (0), and their regions' undo areas are whole-size.
	ctl, err := open(in.CtlName, region.CtlSize(in.Size, in.MaxWrite))
	if err != nil {
		data.Close()
		return nil, err
	}
	attachRegion := region.Attach
	if readOnly {
		attachRegion = region.AttachReadOnly
		if err := data.SetReadOnly(); err != nil {
			data.Close()
			ctl.Close()
			return nil, err
		}
	}
	lr, err := attachRegion(data.Bytes(), ctl.Bytes(), ctl.Path())
	if err == nil && fmt.Sprintf("%016x", lr.Nonce()) != in.Nonce {
		err = errors.New("the object found under its name belongs to another region (nonce mismatch)")
	}
	if err == nil && lr.Retired() {
		err = errors.New("the region is being deleted")
	}
	if err != nil {
		if lr != nil {
			lr.Close()
		}
		data.Close()
		ctl.Close()
		return nil, err
	}
	lr.SetLabel(fmt.Sprintf("shmgr client pid %d", os.Getpid()))
	return &localMap{r: lr, data: data, ctl: ctl, readOnly: readOnly}, nil
}

// acquire returns the region's current mapping, held against Close until
// release, or nil in TCP mode. If the host has deleted the mapped region,
// it asks the host for the region that now has this shm_id and maps that.
func (r *Region) acquire(ctx context.Context) (*localMap, error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	m := r.cur.Load()
	if m == nil {
		if r.mode == ModeLocal {
			return nil, ErrClosed
		}
		return nil, nil
	}
	m.refs.Add(1)
	// Close sets closed before it waits for refs: seeing it clear here
	// means Close will wait for our release.
	if r.closed.Load() {
		m.refs.Add(-1)
		return nil, ErrClosed
	}
	if !m.r.Retired() && m.gen == r.conn.hostGen.Load() {
		return m, nil
	}
	m.refs.Add(-1)
	return r.remap(ctx, m)
}

// acquireWrite is acquire for a write: a mapping the connection's token
// does not let it write is released and refused.
func (r *Region) acquireWrite(ctx context.Context) (*localMap, error) {
	if r.conn.replicated.Load() {
		// A cluster node's region: a write into the mapping would change
		// this replica behind the log's back. The caller goes over TCP.
		return nil, nil
	}
	m, err := r.acquire(ctx)
	if m != nil && m.readOnly {
		// Mapped while the connection was to a cluster node.
		m.release()
		return nil, nil
	}
	if m != nil {
		if err := r.writable(); err != nil {
			m.release()
			return nil, err
		}
	}
	return m, err
}

// remap replaces a retired mapping m with the region that now has the
// id, or a mapping of the host the Conn left (failover) with the new
// host's.
func (r *Region) remap(ctx context.Context, m *localMap) (*localMap, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m2 := r.cur.Load(); m2 != m {
		if m2 == nil {
			return nil, ErrClosed
		}
		m2.refs.Add(1)
		return m2, nil // another goroutine re-mapped it
	}
	gen := r.conn.hostGen.Load()
	why := "was replaced"
	if gen != m.gen {
		why = "is now reached through host " + r.conn.Addr()
	}
	in, err := r.conn.Info(ctx, r.id)
	if err != nil {
		return nil, fmt.Errorf("region %q %s and cannot be found there: %w", r.id, why, err)
	}
	nm, err := attach(in, r.conn.replicated.Load())
	if err != nil {
		return nil, fmt.Errorf("region %q %s and cannot be mapped from there (open it with Mode: ModeTCP to follow hosts on other machines): %w", r.id, why, err)
	}
	nm.gen = gen
	// Calls may still be using the old mapping: keep it until Close.
	r.old = append(r.old, m)
	r.info = in
	nm.refs.Add(1)
	r.cur.Store(nm)
	return nm, nil
}

// ID returns the region's shm_id.
func (r *Region) ID() string { return r.id }

// Mode returns ModeLocal if the region is mapped, ModeTCP otherwise.
func (r *Region) Mode() Mode { return r.mode }

// WhyNotLocal says why the region is not mapped directly ("" if it is).
func (r *Region) WhyNotLocal() string { return r.why }

// Info returns the region's description as of Dial (Version and the lock
// fields are not live; see Version and Conn.Info).
func (r *Region) Info() Info {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.info
}

// MaxContent returns the most bytes the region holds.
func (r *Region) MaxContent() int64 { return r.Info().MaxDataSize }

// Close unmaps the region and, if Dial made the connection, closes it.
func (r *Region) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	// Local leases still open end with the Region: they hold the mapping.
	r.mu.Lock()
	leases := make([]*Lease, 0, len(r.leases))
	for l := range r.leases {
		leases = append(leases, l)
	}
	r.leases = nil
	r.mu.Unlock()
	for _, l := range leases {
		l.end()
	}
	r.mu.Lock()
	if m := r.cur.Swap(nil); m != nil {
		m.close()
	}
	for _, m := range r.old {
		m.close()
	}
	r.old = nil
	r.mu.Unlock()
	if r.mode == ModeLocal {
		r.conn.releaseMonitor()
	}
	if r.owned {
		return r.conn.Close()
	}
	return nil
}

// writable refuses local writes that the connection's token does not
// allow: a mapped region obeys the same grant as the host would.
func (r *Region) writable() error { return r.conn.allows(r.id, true) }

// wo returns the options of a local write: the lock timeout, shortened to
// ctx's deadline, and ctx's cancellation as the wait's stop channel (nil
// for a context that cannot be cancelled: no cost then).
func (r *Region) wo(ctx context.Context) region.WriteOptions {
	to := r.lockTO
	if dl, ok := ctx.Deadline(); ok {
		to = max(min(to, time.Until(dl)), time.Microsecond)
	}
	return region.WriteOptions{Timeout: to, Stop: ctx.Done()}
}

// Read returns the region's content.
func (r *Region) Read(ctx context.Context) ([]byte, error) {
	b, _, err := r.AppendRead(ctx, nil)
	return b, err
}

// ReadVersion returns the region's content and its version.
func (r *Region) ReadVersion(ctx context.Context) ([]byte, uint64, error) {
	return r.AppendRead(ctx, nil)
}

// AppendRead appends the region's content to dst and returns it with its
// version. With a dst of enough capacity it does not allocate in local
// mode.
func (r *Region) AppendRead(ctx context.Context, dst []byte) ([]byte, uint64, error) {
	if m, err := r.acquire(ctx); m != nil || err != nil {
		if err != nil {
			return dst, 0, err
		}
		defer m.release()
		l := m.r
		return l.AppendContent(dst)
	}
	return r.conn.getWith(ctx, r.id, dst, proto.GetOptions{})
}

// ReadAt returns n bytes of content from offset off (clipped to the
// content's end for the utf8 layout).
func (r *Region) ReadAt(ctx context.Context, off, n int64) ([]byte, uint64, error) {
	if m, err := r.acquire(ctx); m != nil || err != nil {
		if err != nil {
			return nil, 0, err
		}
		defer m.release()
		l := m.r
		return l.AppendRange(nil, off, n)
	}
	return r.conn.getWith(ctx, r.id, nil, proto.GetOptions{HasRange: true, Offset: off, Length: n})
}

// Write replaces the content with p and returns the new version. Content
// that is too long (or not UTF-8 for the utf8 layout) is refused, and the
// region stays as it was.
func (r *Region) Write(ctx context.Context, p []byte) (uint64, error) {
	return r.put(ctx, p, proto.SetOptions{})
}

// WriteAt writes p at offset off of the content and returns the new
// version.
func (r *Region) WriteAt(ctx context.Context, off int64, p []byte) (uint64, error) {
	return r.put(ctx, p, proto.SetOptions{HasAt: true, At: off})
}

// WriteIf replaces the content with p only if the region is still at
// version; otherwise it fails with a *ConflictError carrying the current
// version.
func (r *Region) WriteIf(ctx context.Context, p []byte, version uint64) (uint64, error) {
	return r.put(ctx, p, proto.SetOptions{HasIfVer: true, IfVersion: version})
}

// WriteAtIf writes p at offset off only if the region is still at
// version; otherwise it fails with a *ConflictError carrying the current
// version.
func (r *Region) WriteAtIf(ctx context.Context, off int64, p []byte, version uint64) (uint64, error) {
	return r.put(ctx, p, proto.SetOptions{HasAt: true, At: off, HasIfVer: true, IfVersion: version})
}

// put makes the write o describes (at=, ifver=): through the mapping when
// the region is local, else as a SET over TCP.
func (r *Region) put(ctx context.Context, p []byte, o proto.SetOptions) (uint64, error) {
	if m, err := r.acquireWrite(ctx); m != nil || err != nil {
		if err != nil {
			return 0, err
		}
		defer m.release()
		wo := r.wo(ctx)
		wo.Conditional, wo.IfVersion = o.HasIfVer, o.IfVersion
		var v uint64
		var err error
		if o.HasAt {
			v, err = m.r.WriteAt(o.At, p, wo)
		} else {
			v, err = m.r.Write(p, wo)
		}
		return v, localLockErr(ctx, err)
	}
	return r.conn.set(ctx, r.id, p, o)
}

// Version returns the region's current version.
func (r *Region) Version(ctx context.Context) (uint64, error) {
	if m, err := r.acquire(ctx); m != nil || err != nil {
		if err != nil {
			return 0, err
		}
		defer m.release()
		l := m.r
		return l.Version(), nil
	}
	in, err := r.conn.Info(ctx, r.id)
	return in.Version, err
}

// Update applies fn to the current content and writes the result as one
// atomic step, and returns the new version. Locally fn runs under the
// region's lock (cur aliases the region and is valid only during fn).
// Over TCP it reads, applies fn and writes conditionally, retrying on
// conflict until ctx ends; fn may then run more than once.
func (r *Region) Update(ctx context.Context, fn func(cur []byte) ([]byte, error)) (uint64, error) {
	if m, err := r.acquireWrite(ctx); m != nil || err != nil {
		if err != nil {
			return 0, err
		}
		defer m.release()
		l := m.r
		v, err := l.Update(r.wo(ctx), fn)
		return v, localLockErr(ctx, err)
	}
	for {
		cur, v, err := r.ReadVersion(ctx)
		if err != nil {
			return 0, err
		}
		next, err := fn(cur)
		if err != nil {
			return 0, err
		}
		nv, err := r.WriteIf(ctx, next, v)
		if !errors.Is(err, ErrConflict) {
			return nv, err
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
	}
}

package host

import (
	"fmt"
	"sync"

	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/registry"
	"github.com/shmgr/shmgr/internal/shm"
)

// Region is the host's handle on one region. Its methods are safe for
// concurrent use; after the region is deleted they fail with ErrNotFound.
type Region struct {
	// mu: readers and writers hold RLock while they touch the mapping
	// (in Do, across fn's wait for the region's lock); Delete and Close
	// take Lock to unmap it.
	mu     sync.RWMutex
	gone   bool
	lost   error // set while a vanished object could not be restored
	entry  registry.Entry
	r      *region.Region
	data   *shm.Mapping
	ctl    *shm.Mapping
	kind   shm.Kind
	hostID string
	owner  *Host
	hub    *hub
}

// Info describes a region for clients: what the metadata line, INFO and
// LIST carry. It never contains an address.
type Info = proto.RegionInfo

// ID returns the region's shm_id.
func (r *Region) ID() string { return r.entry.ID }

// Region returns the mapped region. IMPORTANT: it is valid only while the
// caller holds RLock (see Do).
func (r *Region) Region() *region.Region { return r.r }

// Gone reports whether the region has been deleted (a region created
// since under the same shm_id is another Region).
func (r *Region) Gone() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.gone
}

// Do runs fn with the mapped region, holding it mapped for the duration.
// It fails with ErrNotFound if the region has been deleted.
//
// IMPORTANT: Do holds the Region's read lock for as long as fn runs,
// including any wait of fn's for the region's own lock (a write or a
// LOCK behind another holder's lease waits up to its timeout). Delete
// and Close take the write lock to unmap the region, so a Delete waits
// until every such fn has returned (the region is already forgotten by
// then, and the rest of the host serves on; only a Create of the same id
// is refused until Delete returns). fn must therefore bound its waits
// (region.WriteOptions Timeout and Stop: the server passes its lock
// timeout and the connection's end).
func (r *Region) Do(fn func(*region.Region) error) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.gone {
		return ErrNotFound
	}
	return fn(r.r)
}

// DoWrite is Do for a write (holding the read lock across fn's lock
// wait, as Do says): it also fails, with ErrVanished, while the
// region's object has been removed behind the host's back and not yet
// restored (see Host.checkObjects), so that no write is acknowledged that
// the next start would lose.
func (r *Region) DoWrite(fn func(*region.Region) error) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.gone {
		return ErrNotFound
	}
	if r.lost != nil {
		return fmt.Errorf("%w: region %q: %v; writes are refused until the host restores it (reads still work)", ErrVanished, r.entry.ID, r.lost)
	}
	return fn(r.r)
}

// Info returns the region's description.
func (r *Region) Info() Info {
	e := r.entry
	in := Info{
		ShmID:   e.ID,
		Size:    e.Size,
		Layout:  e.Layout,
		OSName:  e.OSName,
		CtlName: e.CtlName,
		OSKind:  string(r.kind),
		Nonce:   nonceHex(e.Nonce),
		Durable: e.Durable,
		Created: e.Created,
		HostID:  r.hostID,
		// The undo area makes a region cost up to twice its size: say so.
		Footprint: region.Footprint(e.Size, e.MaxWrite),
		MaxWrite:  region.UndoCap(e.Size, e.MaxWrite),
	}
	if e.Layout == region.UTF8.String() {
		in.LockOffset, in.LenOffset, in.DataOffset, in.MaxDataSize = region.LockOffset, region.LenOffset, region.DataOffset, e.Size-region.DataOffset
	} else {
		in.LockOffset, in.LenOffset, in.DataOffset, in.MaxDataSize = -1, -1, 0, e.Size
	}
	r.mu.RLock()
	if !r.gone {
		in.Version = r.r.Version()
		ls := r.r.LockState()
		in.Locked, in.LockPID, in.LockOwner = ls.Held, ls.PID, ls.Label
	}
	r.mu.RUnlock()
	return in
}

func nonceHex(n uint64) string {
	const digits = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = digits[n&0xf]
		n >>= 4
	}
	return string(b[:])
}

func (r *Region) unmap() {
	r.r.Close() // the host's owner slot, before the mapping goes
	r.data.Close()
	r.ctl.Close()
}

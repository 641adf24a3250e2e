package cluster

import (
	"errors"
	"fmt"
	"time"

	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shmerr"
)

// DefaultClockSkew is Config.ClockSkew's default: how long past its
// deadline a lease stays taken, so that a leader whose clock runs ahead
// of the one that granted it does not hand the lock to someone else while
// the holder still believes in its lease.
const DefaultClockSkew = 500 * time.Millisecond

// ErrLeaseHeld: a live lease holds the region: a LOCK, or a write
// without the lease's token, is refused for now (of kind
// shmerr.ErrLockTimeout, as a single host's lock wait that runs out). The
// refusal's Result.Version is how many milliseconds of log time the lease
// is still taken for, a hint for when to try again. Such refusals are not
// remembered for exactly-once retries: the command did nothing, and its
// retry may succeed.
var ErrLeaseHeld = shmerr.New(shmerr.ErrLockTimeout, "region locked by a lease")

// lease is a region's lease in the replicated state. Times are log time
// (Unix nanoseconds of the leaders' stamps).
type lease struct {
	// Token is the fencing token: the index of the entry that granted it.
	Token uint64
	// Deadline is when the holder's writes (and RENEW, UNLOCK) stop being
	// accepted.
	Deadline int64
	// Free is when another may take the lock: Deadline plus the granting
	// leader's clock-skew allowance.
	Free int64
}

// tick moves log time to the command's stamp if it is later: log time
// never goes backwards, whatever the clocks of successive leaders say.
func (f *fsm) tick(c *Command) {
	if c.Stamp > f.now {
		f.mu.Lock()
		f.now = c.Stamp
		f.mu.Unlock()
	}
}

// lockRegion serves OpLock: the lease goes to this entry, whose index is
// its token, unless a live lease holds the region.
func (f *fsm) lockRegion(index uint64, c *Command) Result {
	if _, err := f.h.Get(c.ID); err != nil {
		return Result{Err: err}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if l, ok := f.leases[c.ID]; ok && f.now <= l.Free {
		return f.held(c.ID, l)
	}
	l := lease{Token: index, Deadline: f.now + max(c.Lease, 1)*int64(time.Millisecond)}
	l.Free = l.Deadline + max(c.Skew, 0)*int64(time.Millisecond)
	f.leases[c.ID] = l
	return Result{Version: index}
}

// renew serves OpRenew: the live lease with Token now ends Lease after
// the entry's log time.
func (f *fsm) renew(c *Command) Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.live(c.ID, c.Token)
	if err != nil {
		return Result{Err: err}
	}
	l.Deadline = f.now + max(c.Lease, 1)*int64(time.Millisecond)
	l.Free = l.Deadline + max(c.Skew, 0)*int64(time.Millisecond)
	f.leases[c.ID] = l
	return Result{Version: c.Token}
}

// unlock serves OpUnlock: the live lease with Token ends, and the lock is
// free at once.
func (f *fsm) unlock(c *Command) Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.live(c.ID, c.Token); err != nil {
		return Result{Err: err}
	}
	delete(f.leases, c.ID)
	return Result{Version: c.Token}
}

// gate decides whether a write may apply now: a fenced write needs the
// live lease with its token; any other write waits while a lease holds
// the region (a single host's writers wait for the lease's lock the same
// way). A refusal is the write's Result; nil Err lets it apply.
func (f *fsm) gate(c *Command) Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c.Fenced {
		_, err := f.live(c.ID, c.Token)
		return Result{Err: err}
	}
	if l, ok := f.leases[c.ID]; ok && f.now <= l.Free {
		return f.held(c.ID, l)
	}
	return Result{}
}

// live returns region id's lease if it has token and has not passed its
// deadline; otherwise the single host's fenced error. Under mu.
func (f *fsm) live(id string, token uint64) (lease, error) {
	if _, err := f.h.Get(id); err != nil {
		return lease{}, err
	}
	l, ok := f.leases[id]
	if !ok || l.Token != token {
		return lease{}, fmt.Errorf("%w: no lease on %q with token %d (it was released, or expired and taken over)", region.ErrFenced, id, token)
	}
	if f.now > l.Deadline {
		return lease{}, fmt.Errorf("%w: lease %d on %q has expired", region.ErrFenced, token, id)
	}
	return l, nil
}

// held is the refusal of a request that a live lease stands in the way
// of. Under mu.
func (f *fsm) held(id string, l lease) Result {
	left := (l.Free - f.now + int64(time.Millisecond) - 1) / int64(time.Millisecond)
	return Result{Version: uint64(max(left, 1)), Err: fmt.Errorf("%w: %q is held by lease %d for up to %d ms more", ErrLeaseHeld, id, l.Token, left)}
}

// dropLease forgets region id's lease (the region was deleted or made
// anew).
func (f *fsm) dropLease(id string) {
	f.mu.Lock()
	delete(f.leases, id)
	f.mu.Unlock()
}

// remembered reports whether a result is kept for exactly-once retries:
// a refusal because a lease held the region is not (the command did
// nothing; tried again later it may succeed).
func remembered(r Result) bool { return !errors.Is(r.Err, ErrLeaseHeld) }

// LeaseInfo is a region's lease as this node has applied it.
type LeaseInfo struct {
	// Token is the lease's fencing token.
	Token uint64
	// Deadline is when the lease ends, on the log's clock (the leaders'
	// wall clocks).
	Deadline time.Time
}

// Lease returns region id's lease as this node has applied it, if one
// was granted and not released (it may have passed its deadline). A
// follower's view is a replication lag behind.
func (n *Node) Lease(id string) (LeaseInfo, bool) {
	n.fsm.mu.Lock()
	defer n.fsm.mu.Unlock()
	l, ok := n.fsm.leases[id]
	if !ok {
		return LeaseInfo{}, false
	}
	return LeaseInfo{Token: l.Token, Deadline: time.Unix(0, l.Deadline)}, true
}

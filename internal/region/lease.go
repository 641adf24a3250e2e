package region

import (
	"fmt"
	"time"
)

// MaxLease is the longest lease Acquire and Renew grant, as the host does
// for TCP clients.
const MaxLease = 60 * time.Second

// DefaultLease is the lease length Acquire uses when given none.
const DefaultLease = 10 * time.Second

// Acquire takes the lock as a lease: it stays held until Release, until
// lease passes (on the system's monotonic clock; a waiter may then break
// it), or until this Region's process dies or closes it. Writes under the
// lease pass WriteOptions{Fenced: true, Fence: token}. The token grows
// with every grant, so a stale holder's token never matches a newer
// lease. A lease longer than MaxLease is refused (ErrLeaseTooLong).
//
// stop, if not nil, abandons the wait when closed (ErrStopped).
func (r *Region) Acquire(wait, lease time.Duration, label []byte, stop <-chan struct{}) (token uint64, err error) {
	if r.readOnly {
		return 0, r.readOnlyError()
	}
	if lease <= 0 {
		lease = DefaultLease
	}
	if lease > MaxLease {
		return 0, leaseTooLong(lease)
	}
	// The gate orders this process's goroutines for the lock; the lease
	// itself holds only the lock.
	left, err := r.gateIn(wait, stop)
	if err != nil {
		return 0, err
	}
	err = r.lock(left, label, stop)
	r.gateOut()
	if err != nil {
		return 0, err
	}
	token = r.fence.Add(1)
	w := r.lockw.Load()
	nl := makeLease(w, nowMs()+max(lease.Milliseconds(), 1))
	// Only stale renewals (lease words of older generations) race this.
	for i := 0; ; i++ {
		l := r.lease.Load()
		if r.lease.CompareAndSwap(l, nl) {
			break
		}
		if i == 8 {
			r.unlock()
			return 0, ErrFenced
		}
	}
	return token, nil
}

func leaseTooLong(d time.Duration) error {
	return fmt.Errorf("%w: a lease of %v is longer than the maximum of %v: renew a shorter lease instead", ErrLeaseTooLong, d, MaxLease)
}

// held returns the lock word and lease word of this Region's unexpired
// lease with token, or ok false.
func (r *Region) held(token uint64) (w, l uint64, ok bool) {
	w = r.lockw.Load()
	if w&ownerMask != r.me || r.fence.Load() != token {
		return 0, 0, false
	}
	l = r.lease.Load()
	end := leaseEnd(w, l)
	return w, l, end != 0 && nowMs() <= end
}

// Holds reports whether this Region holds the lease with token, unexpired.
func (r *Region) Holds(token uint64) bool {
	_, _, ok := r.held(token)
	return ok
}

// Renew extends the lease with token by lease from now. It fails with
// ErrFenced if the lease has expired or been released, and with
// ErrLeaseTooLong past MaxLease.
func (r *Region) Renew(token uint64, lease time.Duration) error {
	if lease <= 0 {
		lease = DefaultLease
	}
	if lease > MaxLease {
		return leaseTooLong(lease)
	}
	w, l, ok := r.held(token)
	if !ok {
		return ErrFenced
	}
	if !r.lease.CompareAndSwap(l, makeLease(w, nowMs()+max(lease.Milliseconds(), 1))) {
		return ErrFenced
	}
	// Broken in between: the renewed word carries the old generation's tag
	// and is void for the new holder (who clears it).
	if r.lockw.Load()&^commitBit != w&^commitBit {
		return ErrFenced
	}
	return nil
}

// Release ends the lease with token. It fails with ErrFenced if the lease
// was already lost; then nothing is touched.
func (r *Region) Release(token uint64) error {
	w := r.lockw.Load()
	if w&ownerMask != r.me || r.fence.Load() != token || w&commitBit != 0 {
		return ErrFenced
	}
	l := r.lease.Load()
	if leaseEnd(w, l) == 0 {
		return ErrFenced
	}
	// Freeze the word validated: with the commit bit set nobody breaks it,
	// so what follows touches only this lease's state.
	if !r.lockw.CompareAndSwap(w, w|commitBit) {
		return ErrFenced
	}
	// A released lease's token must not match again.
	r.fence.Add(1)
	for !r.lease.CompareAndSwap(l, 0) {
		if l = r.lease.Load(); l == 0 {
			break
		}
	}
	r.releaseFlag()
	r.lockw.CompareAndSwap(w|commitBit, w&genMask)
	return nil
}

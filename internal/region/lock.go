package region

import (
	"runtime"
	"time"
)

// The lock word is 64 bits at offset 128 of the control block:
//
//	bits  0-31  pid of the owner (0: free)
//	bits 32-62  generation, bumped by every acquisition (no ABA on pids)
//	bit  63     committing: a lease holder is writing; the lease cannot be
//	            broken until the bit clears
//
// A short write takes the lock, commits and releases it. A lease (Acquire)
// holds it for longer; a lease that runs out can be broken by a waiter,
// but never in the middle of the holder's commit.
const (
	pidMask   = 1<<32 - 1
	genMask   = (1<<31 - 1) << 32
	commitBit = 1 << 63
)

func ownerOf(w uint64) uint32 { return uint32(w & pidMask) }

// owned returns the word of an acquisition by pid that follows w.
func owned(w uint64, pid uint32) uint64 { return (w+1<<32)&genMask | uint64(pid) }

// deadCheckEvery is how often a waiter checks whether the owner is alive
// or its lease has run out.
const deadCheckEvery = time.Millisecond

// lock takes the control-block lock (and, for utf8, the offset-0 flag),
// taking it back from a dead owner or an expired lease if need be.
func (r *Region) lock(timeout time.Duration, label []byte, stop <-chan struct{}) error {
	w := r.lockw.Load()
	inherited := false
	if ownerOf(w) != 0 || !r.lockw.CompareAndSwap(w, owned(w, r.pid)) {
		var err error
		if inherited, err = r.lockSlow(timeout, stop); err != nil {
			return err
		}
	}
	if label != nil {
		var l [labelLen]byte
		copy(l[:], label)
		copy(r.ctl[offLabel:offLabel+labelLen], l[:])
	} else {
		copy(r.ctl[offLabel:offLabel+labelLen], r.label[:])
	}
	if r.flag == nil || inherited {
		return nil
	}
	// The offset-0 flag, for programs that know only the documented layout.
	for i := 0; ; i++ {
		f := r.flag.Load()
		if f&0xff == 0 && r.flag.CompareAndSwap(f, f|1) {
			return nil
		}
		if i == 0 {
			continue
		}
		// A program outside shmgr holds the flag: wait for it like any owner.
		if err := r.waitFlag(timeout); err != nil {
			r.release()
			return err
		}
	}
}

// tryLock takes the lock (and the offset-0 flag) if both are free now,
// without waiting.
func (r *Region) tryLock() bool {
	w := r.lockw.Load()
	if ownerOf(w) != 0 || !r.lockw.CompareAndSwap(w, owned(w, r.pid)) {
		return false
	}
	copy(r.ctl[offLabel:offLabel+labelLen], r.label[:])
	if r.flag == nil {
		return true
	}
	f := r.flag.Load()
	if f&0xff == 0 && r.flag.CompareAndSwap(f, f|1) {
		return true
	}
	r.release()
	return false
}

// takeFromDead takes the lock from a dead owner, rolling back its
// interrupted write, and reports whether it did. The offset-0 flag is set
// as lock would set it.
func (r *Region) takeFromDead() bool {
	w := r.lockw.Load()
	owner := ownerOf(w)
	if owner == 0 || owner == r.pid || alive(owner) || !r.lockw.CompareAndSwap(w, owned(w, r.pid)) {
		return false
	}
	r.recoverLocked()
	copy(r.ctl[offLabel:offLabel+labelLen], r.label[:])
	if r.flag != nil {
		for {
			f := r.flag.Load()
			if r.flag.CompareAndSwap(f, f|1) {
				break
			}
		}
	}
	return true
}

func (r *Region) waitFlag(timeout time.Duration) error {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	start := time.Now()
	for i := 0; ; i++ {
		if r.flag.Load()&0xff == 0 {
			return nil
		}
		if time.Since(start) > timeout {
			return &LockTimeoutError{Waited: time.Since(start)}
		}
		backoff(i)
	}
}

// unlock releases the offset-0 flag, then the lock.
func (r *Region) unlock() {
	if r.flag != nil {
		for {
			f := r.flag.Load()
			if r.flag.CompareAndSwap(f, f&^0xff) {
				break
			}
		}
	}
	r.release()
}

// release frees the lock word, keeping its generation. The lease end is
// cleared first, so the next owner never inherits a stale one.
func (r *Region) release() {
	if r.lease.Load() != 0 {
		r.lease.Store(0)
	}
	r.lockw.Store(r.lockw.Load() & genMask)
}

// lockSlow waits for the lock. It reports whether it took over a live
// holder's expired lease, in which case the offset-0 flag is already set.
func (r *Region) lockSlow(timeout time.Duration, stop <-chan struct{}) (inherited bool, err error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	start := time.Now()
	lastCheck := start
	for i := 0; ; i++ {
		w := r.lockw.Load()
		owner := ownerOf(w)
		if owner == 0 {
			if r.lockw.CompareAndSwap(w, owned(w, r.pid)) {
				return false, nil
			}
			continue
		}
		if i > 16 {
			now := time.Now()
			if now.Sub(lastCheck) >= deadCheckEvery || i == 17 {
				lastCheck = now
				if owner != r.pid && !alive(owner) && r.lockw.CompareAndSwap(w, owned(w, r.pid)) {
					r.recoverLocked()
					return false, nil
				}
				if r.breakExpired(w) {
					return true, nil
				}
			}
			if now.Sub(start) > timeout {
				return false, &LockTimeoutError{Waited: now.Sub(start), PID: owner, Label: r.ownerLabel()}
			}
			if stop != nil {
				select {
				case <-stop:
					return false, ErrStopped
				default:
				}
			}
		}
		backoff(i)
	}
}

// breakExpired takes the lock from a live holder whose lease has run out,
// unless it is committing. The lease end read between two loads of the
// same lock word belongs to that acquisition.
func (r *Region) breakExpired(w uint64) bool {
	end := r.lease.Load()
	if end == 0 || w&commitBit != 0 || r.lockw.Load() != w || monotonic() <= end {
		return false
	}
	if !r.lockw.CompareAndSwap(w, owned(w, r.pid)) {
		return false
	}
	r.lease.Store(0)
	// The broken lease's token must not match again, even from this pid.
	r.fence.Add(1)
	return true
}

// backoff spins briefly, then yields, then sleeps with growing pauses.
func backoff(i int) {
	switch {
	case i < 8:
		// spin
	case i < 32:
		runtime.Gosched()
	default:
		time.Sleep(time.Microsecond << min(i-32, 10)) // up to ~1ms
	}
}

// gateIn lets one goroutine of this process at a time go for the
// shared-memory lock: the others wait here, parked by the Go scheduler,
// instead of spinning and sleeping on the lock word (on a busy core the
// holder would be descheduled while they spin). It returns the time left
// of timeout.
func (r *Region) gateIn(timeout time.Duration, stop <-chan struct{}) (time.Duration, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	select {
	case r.gate <- struct{}{}:
		return timeout, nil
	default:
	}
	start := time.Now()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r.gate <- struct{}{}:
		return max(timeout-time.Since(start), time.Nanosecond), nil
	case <-t.C:
		w := r.lockw.Load()
		return 0, &LockTimeoutError{Waited: time.Since(start), PID: ownerOf(w), Label: r.ownerLabel()}
	case <-stop:
		return 0, ErrStopped
	}
}

func (r *Region) gateOut() { <-r.gate }

// enter prepares a write: it takes the lock, or, for a fenced write,
// checks the caller's lease and marks it committing.
func (r *Region) enter(o WriteOptions) error {
	if !o.Fenced {
		left, err := r.gateIn(o.Timeout, o.Stop)
		if err != nil {
			return err
		}
		if err := r.lock(left, o.Label, o.Stop); err != nil {
			r.gateOut()
			return err
		}
		return nil
	}
	w := r.lockw.Load()
	if ownerOf(w) != r.pid || w&commitBit != 0 || r.fence.Load() != o.Fence {
		return ErrFenced
	}
	// A lease always has an end; none means the lock is held by a plain
	// writer (perhaps of this process) that took over.
	if end := r.lease.Load(); end == 0 || monotonic() > end {
		return ErrFenced
	}
	if !r.lockw.CompareAndSwap(w, w|commitBit) {
		return ErrFenced
	}
	return nil
}

// leave ends a write begun by enter.
func (r *Region) leave(o WriteOptions) {
	if !o.Fenced {
		r.unlock()
		r.gateOut()
		return
	}
	// Nobody else changes the word while the commit bit is set.
	r.lockw.Store(r.lockw.Load() &^ commitBit)
}

// Acquire takes the lock as a lease: it stays held until Release, until
// lease passes (on the system's monotonic clock; a waiter may then break
// it), or until this process dies. Writes under the lease pass
// WriteOptions{Fenced: true, Fence: token}. The token grows with every
// grant, so a stale holder's token never matches a newer lease.
//
// stop, if not nil, abandons the wait when closed (ErrStopped).
func (r *Region) Acquire(wait, lease time.Duration, label []byte, stop <-chan struct{}) (token uint64, err error) {
	if lease <= 0 {
		lease = DefaultLease
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
	r.lease.Store(monotonic() + int64(lease))
	return token, nil
}

// DefaultLease is the lease length Acquire uses when given none.
const DefaultLease = 10 * time.Second

// Holds reports whether this process holds the lease with token, unexpired.
func (r *Region) Holds(token uint64) bool {
	w := r.lockw.Load()
	if ownerOf(w) != r.pid || r.fence.Load() != token {
		return false
	}
	end := r.lease.Load()
	return end != 0 && monotonic() <= end
}

// Renew extends the lease with token by lease from now. It fails with
// ErrFenced if the lease has expired or been released.
func (r *Region) Renew(token uint64, lease time.Duration) error {
	if lease <= 0 {
		lease = DefaultLease
	}
	if !r.Holds(token) {
		return ErrFenced
	}
	r.lease.Store(monotonic() + int64(lease))
	return nil
}

// Release ends the lease with token. It fails with ErrFenced if the lease
// was already lost.
func (r *Region) Release(token uint64) error {
	w := r.lockw.Load()
	if ownerOf(w) != r.pid || r.fence.Load() != token || w&commitBit != 0 || r.lease.Load() == 0 {
		return ErrFenced
	}
	// A released lease's token must not match again.
	r.fence.Add(1)
	r.unlock()
	return nil
}

// recoverLocked repairs the region after taking the lock from a dead
// owner: an interrupted write is rolled back from the undo log.
func (r *Region) recoverLocked() (rolledBack bool) {
	s := r.seq.Load()
	if s&1 != 0 {
		if r.undoState.Load() == 1 {
			u0 := int64(leUint64(r.ctl[offUndoOff:]))
			n := int64(leUint64(r.ctl[offUndoLen:]))
			if u0 >= 0 && n >= 0 && u0+n <= int64(len(r.data)) && n <= int64(len(r.undo)) {
				copy(r.data[u0:u0+n], r.undo[:n])
			}
		}
		// Never step back to a version a racing reader may have seen.
		r.seq.Store(s + 1)
		rolledBack = true
		r.notify()
	}
	r.undoState.Store(0)
	if r.lease.Load() != 0 {
		r.lease.Store(0)
		r.fence.Add(1) // the dead holder's token is void
	}
	if r.flag != nil {
		for {
			f := r.flag.Load()
			if r.flag.CompareAndSwap(f, f&^0xff) {
				break
			}
		}
	}
	return rolledBack
}

// Recover takes the lock back if its owner process is dead, rolling back
// an interrupted write. It reports whether it found a dead owner. The host
// calls it when it adopts a region.
func (r *Region) Recover() (bool, error) {
	w := r.lockw.Load()
	owner := ownerOf(w)
	if owner == 0 {
		// A crash between the two unlock steps, or a dead program outside
		// shmgr, can leave only the flag set; the seq word tells.
		if r.seq.Load()&1 != 0 && r.lockw.CompareAndSwap(w, owned(w, r.pid)) {
			r.recoverLocked()
			r.release()
			return true, nil
		}
		return false, nil
	}
	if owner != r.pid && alive(owner) {
		return false, nil
	}
	if !r.lockw.CompareAndSwap(w, owned(w, r.pid)) {
		return false, nil
	}
	r.recoverLocked()
	r.release()
	return true, nil
}

package region

import (
	"runtime"
	"time"
)

// lock takes the control-block lock (and, for utf8, the offset-0 flag),
// taking it back from a dead owner or an expired lease if need be.
func (r *Region) lock(timeout time.Duration, label []byte, stop <-chan struct{}) error {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	w := r.lockw.Load()
	inherited := false
	if w&ownerMask != 0 || !r.lockw.CompareAndSwap(w, r.owned(w)) {
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
	if err := r.takeFlag(timeout, stop); err != nil {
		r.releaseWord()
		return err
	}
	return nil
}

// flagWaiting, in the flag holder field beside a lock word, says that its
// owner found the offset-0 flag held by a program outside shmgr and waits
// for it: if the owner dies, the flag is still that program's.
const flagWaiting = 1 << 63

// takeFlag takes the offset-0 flag for the lock this Region holds,
// waiting (up to timeout from the first wait, or until stop) for a
// program outside shmgr that holds it, and records the holder. The clock
// is read only once it has to wait.
func (r *Region) takeFlag(timeout time.Duration, stop <-chan struct{}) error {
	var deadline time.Time
	for i := 0; ; i++ {
		f := r.flag.Load()
		if f&0xff == 0 && r.flag.CompareAndSwap(f, f|1) {
			*r.flagBy = r.lockw.Load() &^ commitBit
			return nil
		}
		if i == 0 {
			continue
		}
		// A program outside shmgr holds the flag: wait for it like any
		// owner, saying so for whoever recovers this lock if we die.
		if i == 1 {
			*r.flagBy = r.lockw.Load()&^commitBit | flagWaiting
			deadline = time.Now().Add(timeout)
		}
		if err := r.waitFlag(deadline, stop); err != nil {
			*r.flagBy = 0
			return err
		}
	}
}

// tryLock takes the lock (and the offset-0 flag) if both are free now,
// without waiting.
func (r *Region) tryLock() bool {
	w := r.lockw.Load()
	if w&ownerMask != 0 || !r.lockw.CompareAndSwap(w, r.owned(w)) {
		return false
	}
	copy(r.ctl[offLabel:offLabel+labelLen], r.label[:])
	return r.flag == nil || r.tryFlag(r.lockw.Load()&^commitBit)
}

// tryFlag takes the offset-0 flag for the lock word w this Region has
// just taken, if the flag is free now, and records w as its holder;
// otherwise it gives the lock word back. It reports whether this Region
// holds both.
func (r *Region) tryFlag(w uint64) bool {
	f := r.flag.Load()
	if f&0xff == 0 && r.flag.CompareAndSwap(f, f|1) {
		*r.flagBy = w
		return true
	}
	r.releaseWord()
	return false
}

// waitFlag waits until the offset-0 flag is free, until deadline or until
// stop closes.
func (r *Region) waitFlag(deadline time.Time, stop <-chan struct{}) error {
	r.waiting.Add(1)
	defer r.waiting.Add(-1)
	start := time.Now()
	for i := 0; ; i++ {
		if r.flag.Load()&0xff == 0 {
			return nil
		}
		if now := time.Now(); now.After(deadline) {
			return &LockTimeoutError{Waited: now.Sub(start)}
		}
		if stop != nil {
			select {
			case <-stop:
				return ErrStopped
			default:
			}
		}
		backoff(i)
	}
}

// unlock releases the offset-0 flag, then the lock.
func (r *Region) unlock() {
	r.releaseFlag()
	r.releaseWord()
}

// releaseFlag clears the flag holder, then the offset-0 flag this Region
// holds with the lock.
func (r *Region) releaseFlag() {
	if r.flag == nil {
		return
	}
	*r.flagBy = 0
	for {
		f := r.flag.Load()
		if r.flag.CompareAndSwap(f, f&^0xff) {
			return
		}
	}
}

// releaseWord frees the lock word this Region holds, keeping its
// generation. The CAS cannot fail for a live holder without a lease
// (nobody may take it); if it does, nothing is overwritten.
func (r *Region) releaseWord() bool {
	w := r.lockw.Load()
	if w&ownerMask != r.me {
		return false
	}
	return r.lockw.CompareAndSwap(w, w&genMask)
}

// lockSlow waits for the lock. It reports whether it took over the
// offset-0 flag with it (from an expired lease or a dead owner that held
// it).
func (r *Region) lockSlow(timeout time.Duration, stop <-chan struct{}) (inherited bool, err error) {
	r.waiting.Add(1)
	defer r.waiting.Add(-1)
	start := time.Now()
	lastCheck := start
	for i := 0; ; i++ {
		w := r.lockw.Load()
		if w&ownerMask == 0 {
			if r.lockw.CompareAndSwap(w, r.owned(w)) {
				return false, nil
			}
			continue
		}
		if i > 16 {
			now := time.Now()
			if now.Sub(lastCheck) >= deadCheckEvery || i == 17 {
				lastCheck = now
				if took, inh := r.takeOver(w); took {
					return inh, nil
				}
			}
			if now.Sub(start) > timeout {
				return false, r.timeoutError(now.Sub(start))
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

// takeOver takes lock word w from a dead owner or an expired lease, with
// one CAS on w. It reports whether it did, and whether the offset-0 flag
// came with it.
func (r *Region) takeOver(w uint64) (took, inherited bool) {
	if w&ownerMask != r.me && !r.ownerAlive(w) {
		nw := r.owned(w)
		if !r.lockw.CompareAndSwap(w, nw) {
			return false, false
		}
		return true, r.recoverLocked(w, nw)
	}
	// A live holder: an expired lease may be broken, never mid-commit.
	l := r.lease.Load()
	end := leaseEnd(w, l)
	if end == 0 || w&commitBit != 0 || nowMs() <= end {
		return false, false
	}
	nw := r.owned(w)
	if !r.lockw.CompareAndSwap(w, nw) {
		return false, false
	}
	r.clearLease(nw)
	// The broken lease's token must not match again, even from this slot.
	r.fence.Add(1)
	return true, r.takeFlagOf(w, nw)
}

// takeFlagOf reports whether the offset-0 flag was held by the owner of
// lock word old, whose lock this Region now holds as nw, and if so
// records this Region as its holder.
//
// A set flag is the old owner's unless the flag holder field says the
// owner was waiting for a program outside shmgr. The owner records the
// flag with a plain store beside its CAS, and clears the record just
// before the flag, so a kill between the two leaves a set flag with a
// stale record: it is the owner's all the same. The one case this takes
// wrongly is an owner killed between its lock CAS and the first sight of
// an outside program's flag (a few instructions, and only with such a
// program contending); doc.go says so.
func (r *Region) takeFlagOf(old, nw uint64) bool {
	if r.flag == nil || r.flag.Load()&0xff == 0 || *r.flagBy == old&^commitBit|flagWaiting {
		return false
	}
	*r.flagBy = nw
	return true
}

// clearLease sets the lease word to 0 unless it already belongs to lock
// word w (this Region's, just taken). Only stale renewals race it, each
// once, so the loop ends.
func (r *Region) clearLease(w uint64) {
	for {
		l := r.lease.Load()
		if l == 0 || l>>leaseTagShft == leaseTag(w) && l&leaseEndMask != 0 {
			return
		}
		if r.lease.CompareAndSwap(l, 0) {
			return
		}
	}
}

// LockWaiters returns how many calls through this Region are waiting for
// the lock right now: parked at the gate behind another goroutine of
// this process, or waiting for the lock word or the offset-0 flag held
// by another owner. It is for tests and diagnostics, which need to know
// that a write is waiting rather than only sent.
func (r *Region) LockWaiters() int { return int(r.waiting.Load()) }

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
	r.waiting.Add(1)
	defer r.waiting.Add(-1)
	start := time.Now()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r.gate <- struct{}{}:
		return max(timeout-time.Since(start), time.Nanosecond), nil
	case <-t.C:
		return 0, r.timeoutError(time.Since(start))
	case <-stop:
		return 0, ErrStopped
	}
}

func (r *Region) gateOut() { <-r.gate }

// enter prepares a write: it takes the lock, or, for a fenced write,
// checks the caller's lease and marks it committing.
func (r *Region) enter(o WriteOptions) error {
	if r.readOnly {
		return r.readOnlyError()
	}
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
	if w&ownerMask != r.me || w&commitBit != 0 || r.fence.Load() != o.Fence {
		return ErrFenced
	}
	// A lease always has an end; none means the lock is held by a plain
	// writer (perhaps of this process) that took over.
	if end := leaseEnd(w, r.lease.Load()); end == 0 || nowMs() > end {
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
	w := r.lockw.Load()
	r.lockw.CompareAndSwap(w, w&^commitBit)
}

package region

import (
	"fmt"
	"runtime"
	"time"
)

// The lock word is 64 bits at offset 128 of the control block:
//
//	bits  0-7   owner slot + 1 (0: free)
//	bits  8-31  the owner slot's epoch when it was claimed (low 24 bits)
//	bits 32-62  generation, bumped by every acquisition
//	bit  63     committing: a lease holder is writing; the lease cannot be
//	            broken until the bit clears
//
// The owner bits (0-31) name one incarnation of one slot: a process that
// claims a slot after its holder died gets another epoch, so it never
// mistakes a dead predecessor's lock for its own, and a waiter never
// mistakes it for the dead owner. The generation makes every
// acquisition's word distinct, so a CAS on a word a caller validated
// fails if anything happened in between, even when the same slot (the
// host, holding leases for many TCP clients) took the lock again.
//
// The lease word (offset 136) holds a lease's end, in milliseconds of the
// monotonic clock (bits 0-39), and the low 24 bits of the generation of
// the acquisition it belongs to (bits 40-63). It counts only while its
// tag matches the lock word's generation: a stale renewal that lands
// after a break is void for the new holder. Every transition keeps it 0
// or tagged with the current generation.
const (
	slotMask   = 0xff
	epochShift = 8
	epochBits  = 0xffffff
	ownerMask  = 1<<32 - 1
	genShift   = 32
	genMask    = (1<<31 - 1) << genShift
	commitBit  = 1 << 63

	leaseEndMask = 1<<40 - 1
	leaseTagBits = 0xffffff
	leaseTagShft = 40
)

// MaxLease is the longest lease Acquire and Renew grant, as the host does
// for TCP clients.
const MaxLease = 60 * time.Second

// ownerBits returns the owner bits naming slot s at epoch e.
func ownerBits(s int, e uint32) uint64 {
	return uint64(s+1) | uint64(e&epochBits)<<epochShift
}

// owned returns the word of an acquisition by this Region that follows w.
func (r *Region) owned(w uint64) uint64 { return (w+1<<genShift)&genMask | r.me }

// leaseTag returns the tag a lease word of lock word w carries.
func leaseTag(w uint64) uint64 { return (w >> genShift) & leaseTagBits }

// makeLease returns the lease word of lock word w ending at endMs.
func makeLease(w uint64, endMs int64) uint64 {
	return leaseTag(w)<<leaseTagShft | uint64(endMs)&leaseEndMask
}

// leaseEnd returns the end (ms) of lock word w's lease in lease word l,
// or 0 if l is not w's lease.
func leaseEnd(w, l uint64) int64 {
	if l>>leaseTagShft != leaseTag(w) {
		return 0
	}
	return int64(l & leaseEndMask)
}

// nowMs is the monotonic clock in milliseconds.
func nowMs() int64 { return monotonic() / 1e6 }

// deadCheckEvery is how often a waiter checks whether the owner is alive
// or its lease has run out (a system call on the owner's slot).
const deadCheckEvery = time.Millisecond

// ownerAlive reports whether the owner that lock word w names still holds
// its slot: the kernel still holds the slot's lock for it, and the slot's
// epoch is the one w names (a later claimant has another). When it cannot
// tell, it says alive: waiting longer is safe, breaking a live lock is not.
func (r *Region) ownerAlive(w uint64) bool {
	o := w & ownerMask
	if o == 0 {
		return false
	}
	if o == r.me || r.slots == nil {
		return true // ours, or this Region is closed and cannot tell
	}
	s := int(o&slotMask) - 1
	if s >= numSlots {
		return false // no slot has this number: garbage, nobody's lock
	}
	held, err := r.slots.held(s)
	if err != nil {
		return true
	}
	return held && r.slotEpochAt(s)&epochBits == uint32(o>>epochShift)
}

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
	if r.flag == nil {
		return true
	}
	f := r.flag.Load()
	if f&0xff == 0 && r.flag.CompareAndSwap(f, f|1) {
		*r.flagBy = r.lockw.Load() &^ commitBit
		return true
	}
	r.releaseWord()
	return false
}

// takeFromDead takes the lock from a dead owner, rolling back its
// interrupted write, and reports whether it did (and, for utf8, holds the
// offset-0 flag: when the dead owner did not hold it and it is not free,
// the lock is recovered and given back).
func (r *Region) takeFromDead() bool {
	w := r.lockw.Load()
	if w&ownerMask == 0 || w&ownerMask == r.me || r.ownerAlive(w) {
		return false
	}
	nw := r.owned(w)
	if !r.lockw.CompareAndSwap(w, nw) {
		return false
	}
	inherited := r.recoverLocked(w, nw)
	copy(r.ctl[offLabel:offLabel+labelLen], r.label[:])
	if r.flag == nil || inherited {
		return true
	}
	f := r.flag.Load()
	if f&0xff == 0 && r.flag.CompareAndSwap(f, f|1) {
		*r.flagBy = nw
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

// timeoutError describes the current owner for a lock wait of waited.
func (r *Region) timeoutError(waited time.Duration) error {
	w := r.lockw.Load()
	if w&ownerMask == 0 {
		return &LockTimeoutError{Waited: waited}
	}
	return &LockTimeoutError{Waited: waited, PID: r.ownerPID(w), Label: r.ownerLabel()}
}

// ownerPID returns the pid the owner of w recorded in its slot (as its own
// pid namespace numbers it; for messages only).
func (r *Region) ownerPID(w uint64) uint32 {
	s := int(w&slotMask) - 1
	if s < 0 || s >= numSlots {
		return 0
	}
	return r.slotPIDAt(s)
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

// Acquire takes the lock as a lease: it stays held until Release, until
// lease passes (on the system's monotonic clock; a waiter may then break
// it), or until this Region's process dies or closes it. Writes under the
// lease pass WriteOptions{Fenced: true, Fence: token}. The token grows
// with every grant, so a stale holder's token never matches a newer
// lease. A lease longer than MaxLease is refused (ErrLeaseTooLong).
//
// stop, if not nil, abandons the wait when closed (ErrStopped).
func (r *Region) Acquire(wait, lease time.Duration, label []byte, stop <-chan struct{}) (token uint64, err error) {
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

// DefaultLease is the lease length Acquire uses when given none.
const DefaultLease = 10 * time.Second

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

// recoverLocked repairs the region after this Region took lock word old
// from a dead owner, as nw: an interrupted write is rolled back from the
// undo log, the lease is void. It reports whether the offset-0 flag came
// with the lock (the flag holder names old).
func (r *Region) recoverLocked(old, nw uint64) (inherited bool) {
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
		storeFence()
		r.seq.Store(s + 1)
		r.notify()
	}
	r.undoState.Store(0)
	r.clearLease(nw)
	r.fence.Add(1) // the dead holder's token, if it had a lease, is void
	return r.takeFlagOf(old, nw)
}

// Recover takes the lock back if its owner is dead, rolling back an
// interrupted write, and records this boot's id. It reports whether it
// found a dead owner. The host calls it when it adopts a region.
func (r *Region) Recover() (bool, error) {
	defer r.recordBoot()
	w := r.lockw.Load()
	if w&ownerMask == 0 {
		// Only a writer holding the lock makes seq odd; without one, the
		// block was left so by something else: roll back all the same.
		if r.seq.Load()&1 != 0 && r.lockw.CompareAndSwap(w, r.owned(w)) {
			r.recoverLocked(w, r.owned(w))
			r.releaseWord()
			return true, nil
		}
		return false, nil
	}
	if w&ownerMask == r.me || r.ownerAlive(w) {
		return false, nil
	}
	nw := r.owned(w)
	if !r.lockw.CompareAndSwap(w, nw) {
		return false, nil
	}
	if r.recoverLocked(w, nw) {
		r.releaseFlag()
	}
	r.releaseWord()
	return true, nil
}

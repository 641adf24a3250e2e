package region

// takeFromDead takes the lock from a dead owner, rolling back its
// interrupted write, and reports whether it did (and, for utf8, holds the
// offset-0 flag: when the dead owner did not hold it and it is not free,
// the lock is recovered and given back).
func (r *Region) takeFromDead() bool {
	if r.readOnly {
		return false
	}
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
	return r.flag == nil || inherited || r.tryFlag(nw)
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
	if r.readOnly {
		return false, r.readOnlyError()
	}
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

package region

import (
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

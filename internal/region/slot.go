package region

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// slotLockBase is the byte offset of slot 0's lock in the lock file: far
// past the end of any control block, so that a lock never covers bytes
// anyone reads or writes (Windows locks are mandatory for ReadFile).
const slotLockBase = 1 << 62

func (r *Region) slotWord(s, off int) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&r.ctl[offSlots+s*slotSize+off]))
}

// slotEpochAt returns slot s's epoch: bumped by every claim.
func (r *Region) slotEpochAt(s int) uint32 { return r.slotWord(s, slotEpoch).Load() }

// slotPIDAt returns the pid slot s's holder recorded (for messages).
func (r *Region) slotPIDAt(s int) uint32 { return r.slotWord(s, slotPID).Load() }

// claimSlot takes the first owner slot no live process holds: the kernel
// lock first (it is what says the slot is taken), then a new epoch, so
// that no lock word of an earlier holder of the slot names this Region.
func (r *Region) claimSlot(lockPath string) error {
	if lockPath == "" {
		return fmt.Errorf("%w: no path to take the owner slot locks on", ErrBadControl)
	}
	f, err := openSlots(lockPath)
	if err != nil {
		return fmt.Errorf("region: owner slots of %s: %w", lockPath, err)
	}
	for s := 0; s < numSlots; s++ {
		ok, err := f.lock(s)
		if err != nil {
			f.close()
			return fmt.Errorf("region: owner slot %d of %s: %w", s, lockPath, err)
		}
		if !ok {
			continue
		}
		e := r.slotWord(s, slotEpoch).Add(1)
		if e&epochBits == 0 {
			// Epoch 0 names nobody's claim: skip it on wrap-around.
			e = r.slotWord(s, slotEpoch).Add(1)
		}
		r.slotWord(s, slotPID).Store(r.pid)
		r.slots, r.slot, r.me = f, s, ownerBits(s, e)
		return nil
	}
	f.close()
	return fmt.Errorf("%w: all %d owner slots of %s are held by live processes: close some of the processes that map the region", ErrNoSlot, numSlots, lockPath)
}

// Slot returns the owner slot this Region holds.
func (r *Region) Slot() int { return r.slot }

// bootIDOf returns the boot id recorded in the control block.
func (r *Region) bootIDOf() [bootIDLen]byte {
	var id [bootIDLen]byte
	binary.LittleEndian.PutUint64(id[:8], (*atomic.Uint64)(unsafe.Pointer(&r.ctl[offBootID])).Load())
	binary.LittleEndian.PutUint64(id[8:], (*atomic.Uint64)(unsafe.Pointer(&r.ctl[offBootID+8])).Load())
	return id
}

// Rebooted reports whether the control block was last adopted in an
// earlier boot of this machine: every owner it records is dead, every
// lease end void (Recover takes such locks back; slot locks do not
// survive a reboot). For a durable region it also means the data file may
// hold whatever the kernel had flushed when the power went: see
// WriteCheckpoint.
func (r *Region) Rebooted() bool {
	id := r.bootIDOf()
	return !bytes.Equal(id[:], r.boot[:])
}

// recordBoot records this boot's id, once the old boot's owners are dealt
// with.
func (r *Region) recordBoot() {
	if !r.Rebooted() {
		return
	}
	(*atomic.Uint64)(unsafe.Pointer(&r.ctl[offBootID])).Store(binary.LittleEndian.Uint64(r.boot[:8]))
	(*atomic.Uint64)(unsafe.Pointer(&r.ctl[offBootID+8])).Store(binary.LittleEndian.Uint64(r.boot[8:]))
}

package region

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"
)

// Format 1 of the control block (shmgr before owner slots): the same
// offsets for everything format 2 kept, but the lock word names its owner
// by pid (bits 0-31), and the lease end is nanoseconds of the monotonic
// clock.
const (
	// MagicV1 is the magic of a format-1 control block, which Upgrade
	// converts.
	MagicV1     = ctlMagicV1
	ctlMagicV1  = "SHMGRCB1"
	ctlFormatV1 = 1
	v1PIDMask   = 1<<32 - 1
)

// Upgrade converts a format-1 control block to format 2 in place, under
// the format-1 lock: it takes that lock (from its owner, if the owner's
// pid is dead), rolls back a write the owner left half done, and rewrites
// the header. It reports whether it rolled a write back. If a live
// format-1 process holds the lock it refuses, saying what to do; it never
// guesses. A block that is already format 2 is left alone.
//
// IMPORTANT: processes of the older shmgr that still map the region keep
// speaking format 1 to it: stop them before the host upgrades (a format-1
// process that attaches afterwards is refused by its own format check).
func Upgrade(data, ctl []byte) (rolledBack bool, err error) {
	if len(ctl) < ctlHeaderSize {
		return false, fmt.Errorf("%w: %d bytes is too small for a shmgr control block", ErrBadControl, len(ctl))
	}
	switch string(ctl[offMagic : offMagic+8]) {
	case ctlMagic:
		return false, nil
	case ctlMagicV1:
	default:
		return false, fmt.Errorf("%w: no shmgr control block (magic missing)", ErrBadControl)
	}
	if f := binary.LittleEndian.Uint32(ctl[offFormat:]); f != ctlFormatV1 {
		return false, fmt.Errorf("%w: format-1 magic with format number %d", ErrBadControl, f)
	}
	l := Layout(binary.LittleEndian.Uint32(ctl[offLayout:]))
	size := int64(binary.LittleEndian.Uint64(ctl[offSize:]))
	if size != int64(len(data)) {
		return false, fmt.Errorf("%w: control block is for %d bytes, data object has %d", ErrBadControl, size, len(data))
	}
	if err := CheckSize(l, size); err != nil {
		return false, fmt.Errorf("%w: %v", ErrBadControl, err)
	}
	if int64(len(ctl)) != CtlSize(size, 0) {
		return false, fmt.Errorf("%w: control block is %d bytes, want %d", ErrBadControl, len(ctl), CtlSize(size, 0))
	}

	lockw := (*atomic.Uint64)(unsafe.Pointer(&ctl[offLock]))
	seq := (*atomic.Uint64)(unsafe.Pointer(&ctl[offSeq]))
	undoState := (*atomic.Uint32)(unsafe.Pointer(&ctl[offUndoState]))
	me := uint32(os.Getpid())

	// Take the format-1 lock, as a format-1 process would.
	w := lockw.Load()
	owner := uint32(w & v1PIDMask)
	if owner != 0 && owner != me && pidAlive(owner) {
		return false, fmt.Errorf("%w: a process of an older shmgr (pid %d, %q) holds the region's lock: stop the older shmgr clients and host, then start this host again", ErrOldFormat, owner, cString(ctl[offLabel:offLabel+labelLen]))
	}
	mine := (w+1<<genShift)&genMask | uint64(me)
	if !lockw.CompareAndSwap(w, mine) {
		return false, fmt.Errorf("%w: the format-1 lock changed hands while upgrading: an older shmgr process is still writing; stop it and start this host again", ErrOldFormat)
	}

	// Repair what a dead format-1 owner left, as format 1 did.
	if s := seq.Load(); s&1 != 0 {
		if undoState.Load() == 1 {
			u0 := int64(leUint64(ctl[offUndoOff:]))
			n := int64(leUint64(ctl[offUndoLen:]))
			undo := ctl[ctlHeaderSize:]
			if u0 >= 0 && n >= 0 && u0+n <= int64(len(data)) && n <= int64(len(undo)) {
				copy(data[u0:u0+n], undo[:n])
			}
		}
		seq.Store(s + 1)
		rolledBack = true
	}
	undoState.Store(0)
	if owner != 0 && l == UTF8 {
		// The dead owner held the offset-0 flag with the lock (format 1
		// took it right after the lock word).
		flag := (*atomic.Uint32)(unsafe.Pointer(&data[0]))
		for {
			f := flag.Load()
			if flag.CompareAndSwap(f, f&^0xff) {
				break
			}
		}
	}

	// Rewrite the header as format 2; the magic last, then the lock word
	// (free in format 2's encoding) ends the format-1 hold.
	(*atomic.Uint64)(unsafe.Pointer(&ctl[offLease])).Store(0)
	clear(ctl[offLabel : offLabel+labelLen])
	binary.LittleEndian.PutUint64(ctl[offFlagBy:], 0)
	// Format 1 always had a full-size undo area: record it as 0 (the
	// whole object), whatever format 1 left in those reserved bytes.
	binary.LittleEndian.PutUint64(ctl[offUndoCap:], 0)
	clear(ctl[offSlots : offSlots+numSlots*slotSize])
	id := bootID()
	copy(ctl[offBootID:offBootID+bootIDLen], id[:])
	binary.LittleEndian.PutUint32(ctl[offNumSlots:], numSlots)
	binary.LittleEndian.PutUint32(ctl[offFormat:], ctlFormat)
	(*atomic.Uint64)(unsafe.Pointer(&ctl[offMagic])).Store(binary.LittleEndian.Uint64([]byte(ctlMagic)))
	lockw.Store(mine & genMask)
	return rolledBack, nil
}

// cString returns b up to its first NUL.
func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

package region

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/shmgr/shmgr/internal/shmerr"
)

// DefaultTimeout is how long a writer waits for the lock by default.
const DefaultTimeout = 5 * time.Second

// Errors returned by this package, matched with errors.Is. Those that
// cross the wire are kinds of package shmerr, or errors of such a kind.
var (
	// ErrTooLarge: the content does not fit the region.
	ErrTooLarge = shmerr.ErrTooLarge
	// ErrInvalidUTF8: content for a utf8 region is not valid UTF-8.
	ErrInvalidUTF8 = shmerr.ErrInvalidUTF8
	// ErrLockTimeout: the lock was not acquired in time (see LockTimeoutError).
	ErrLockTimeout = shmerr.ErrLockTimeout
	// ErrConflict: a conditional write found another version (see ConflictError).
	ErrConflict = shmerr.ErrConflict
	// ErrOutOfRange: a byte range lies outside the data.
	ErrOutOfRange = shmerr.ErrOutOfRange
	// ErrBadControl: the control block is missing, corrupt or belongs to
	// another data object.
	ErrBadControl = errors.New("bad control block")
	// ErrBadSize: the size is not allowed for the layout.
	ErrBadSize = shmerr.New(shmerr.ErrProtocol, "bad region size")
	// ErrStopped: the caller's stop channel closed while it waited for the
	// lock.
	ErrStopped = shmerr.New(shmerr.ErrUnavailable, "stopped waiting for the lock")
	// ErrCorrupt: the region's bytes break its layout (a length field past
	// its end), so the operation cannot proceed. It is the one error for a
	// bad length field; such errors also match ErrOutOfRange, which is what
	// crosses the wire (proto out_of_range) and what a client matches.
	ErrCorrupt = errors.New("region content is corrupt")
	// ErrNoSlot: every owner slot of the control block is held by a live
	// process, so this process cannot map the region for writing.
	ErrNoSlot = errors.New("no free owner slot")
	// ErrOldFormat: the control block was made by an older shmgr (format
	// 1); the host upgrades it in place when it adopts it (see Upgrade).
	ErrOldFormat = errors.New("control block of an older format")
	// ErrLeaseTooLong: a lease longer than MaxLease was asked for.
	ErrLeaseTooLong = errors.New("lease too long")
	// ErrFenced: the lease a write or renewal relied on has expired or been
	// released, or its fencing token is stale; nothing was written.
	ErrFenced = shmerr.ErrFenced
	// ErrReadOnly: the Region was attached read-only (AttachReadOnly), so
	// it neither writes nor takes the lock; write through the host.
	ErrReadOnly = shmerr.New(shmerr.ErrForbidden, "region mapped read-only")
)

// LockTimeoutError says who held the lock when a wait timed out.
type LockTimeoutError struct {
	// Waited is how long the caller waited.
	Waited time.Duration
	// PID is the owner's process id (0 if the owner is a program outside
	// shmgr holding only the offset-0 flag).
	PID uint32
	// Label is the owner's self-description, if any.
	Label string
}

func (e *LockTimeoutError) Error() string {
	if e.PID == 0 {
		return fmt.Sprintf("lock timeout after %v: the lock flag at offset 0 is held by a program outside shmgr", e.Waited.Round(time.Millisecond))
	}
	who := fmt.Sprintf("pid %d", e.PID)
	if e.Label != "" {
		who += " (" + e.Label + ")"
	}
	return fmt.Sprintf("lock timeout after %v: held by %s", e.Waited.Round(time.Millisecond), who)
}

// Unwrap returns ErrLockTimeout.
func (e *LockTimeoutError) Unwrap() error { return ErrLockTimeout }

// ConflictError reports the version a conditional write found.
type ConflictError struct {
	// Expected is the version the caller asked for.
	Expected uint64
	// Current is the region's version.
	Current uint64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("version conflict: expected version %d, region is at version %d", e.Expected, e.Current)
}

// Unwrap returns ErrConflict.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// Region is one mapped region seen through the lock and version protocol.
// A Region is safe for concurrent use by multiple goroutines, and the
// protocol makes it safe across processes. Each Region holds an owner
// slot of the control block from Attach until Close.
type Region struct {
	data   []byte
	ctl    []byte
	undo   []byte
	layout Layout
	max    int64 // largest content
	maxW   int64 // largest write the undo area holds (raw; utf8: the size)

	seq       *atomic.Uint64
	lockw     *atomic.Uint64 // see lockword.go
	lease     *atomic.Uint64 // see lockword.go: lease end (ms) tagged with its generation
	fence     *atomic.Uint64 // fencing token of the last lease granted
	flag      *atomic.Uint32 // utf8 only: bytes 0-3 of data; byte 0 is the lock flag
	flagBy    *uint64        // see lock.go (takeFlagOf): plain stores, read only after its writer died
	undoState *atomic.Uint32
	watch     *atomic.Uint32
	waiters   *atomic.Uint32 // processes sleeping on watch
	retired   *atomic.Uint32 // set by the host before it deletes the region

	// readOnly: the data object is mapped read-only (AttachReadOnly), so
	// nothing may store into it: no writes, no lock (for utf8 the lock
	// includes the offset-0 flag, a data byte), no recovery.
	readOnly bool

	slots *slotFile // the kernel-held slot locks (see slot.go)
	slot  int       // this Region's owner slot
	me    uint64    // the lock word's owner bits naming this Region's slot and epoch
	boot  [bootIDLen]byte
	pid   uint32
	label [labelLen]byte
	gate  chan struct{} // see gateIn

	// waiting counts this Region's calls that wait for the lock (see
	// LockWaiters).
	waiting atomic.Int32
}

// Attach checks a control block against its data object and returns a
// Region over them, holding an owner slot of the control block until
// Close. lockPath is the file system path of the control object (on
// Windows, its section name when it has no file): the slot locks are
// taken on it. Attach fails with ErrOldFormat for a format-1 control
// block (the host upgrades those: see Upgrade) and with ErrNoSlot when
// every slot is held by a live process.
func Attach(data, ctl []byte, lockPath string) (*Region, error) {
	if err := checkHeader(data, ctl); err != nil {
		return nil, err
	}
	l := Layout(binary.LittleEndian.Uint32(ctl[offLayout:]))
	size := int64(len(data))
	r := &Region{
		data:      data,
		ctl:       ctl,
		undo:      ctl[ctlHeaderSize:],
		layout:    l,
		seq:       (*atomic.Uint64)(unsafe.Pointer(&ctl[offSeq])),
		lockw:     (*atomic.Uint64)(unsafe.Pointer(&ctl[offLock])),
		lease:     (*atomic.Uint64)(unsafe.Pointer(&ctl[offLease])),
		fence:     (*atomic.Uint64)(unsafe.Pointer(&ctl[offFence])),
		flagBy:    (*uint64)(unsafe.Pointer(&ctl[offFlagBy])),
		undoState: (*atomic.Uint32)(unsafe.Pointer(&ctl[offUndoState])),
		watch:     (*atomic.Uint32)(unsafe.Pointer(&ctl[offWatch])),
		waiters:   (*atomic.Uint32)(unsafe.Pointer(&ctl[offWaiters])),
		retired:   (*atomic.Uint32)(unsafe.Pointer(&ctl[offRetired])),
		boot:      bootID(),
		pid:       uint32(os.Getpid()),
		gate:      make(chan struct{}, 1),
	}
	if l == UTF8 {
		r.flag = (*atomic.Uint32)(unsafe.Pointer(&data[0]))
		r.max = size - DataOffset
	} else {
		r.max = size
	}
	r.maxW = undoCapOf(ctl, size)
	if err := r.claimSlot(lockPath); err != nil {
		return nil, err
	}
	r.SetLabel(fmt.Sprintf("pid %d", r.pid))
	return r, nil
}

// AttachReadOnly is Attach for a process that maps the data object
// read-only: the Region reads with the seqlock and watches, and refuses
// Write, WriteAt, Update, Acquire and Recover with ErrReadOnly. A reader
// that loses many races with writers keeps retrying instead of taking the
// lock (taking it stores into the data object's offset-0 flag for utf8).
// The control block must stay writable: the owner slot's epoch, the watch
// waiters count and lock labels live there.
func AttachReadOnly(data, ctl []byte, lockPath string) (*Region, error) {
	r, err := Attach(data, ctl, lockPath)
	if err != nil {
		return nil, err
	}
	r.readOnly = true
	return r, nil
}

// ReadOnly reports whether the Region was attached with AttachReadOnly.
func (r *Region) ReadOnly() bool { return r.readOnly }

func (r *Region) readOnlyError() error {
	return fmt.Errorf("%w: this process maps the region read-only (a replicated region): write through the host", ErrReadOnly)
}

// tooLarge is the error for a write larger than the undo area holds.
func (r *Region) tooLarge(n int) error {
	return fmt.Errorf("%w: %d bytes: this region's max write is %d bytes (its undo area holds no more): write in smaller pieces, or recreate the region with a larger --max-write (CREATE max_write=)", ErrTooLarge, n, r.maxW)
}

// Close gives up the Region's owner slot. The Region must not be used
// afterwards; a lease it still holds is left to be taken back (its owner
// is dead now). Close before unmapping the objects.
func (r *Region) Close() error {
	if r.slots == nil {
		return nil
	}
	err := r.slots.close()
	r.slots = nil
	return err
}

// SetLabel sets how this process describes itself as a lock owner (for
// example "shmgr host"). It is shown in lock timeout errors. It must not
// be called concurrently with writes.
func (r *Region) SetLabel(s string) {
	clear(r.label[:])
	copy(r.label[:], s)
}

// Layout returns the region's layout.
func (r *Region) Layout() Layout { return r.layout }

// Size returns the size of the data object in bytes.
func (r *Region) Size() int64 { return int64(len(r.data)) }

// MaxContent returns the largest content the region holds: size-5 for
// utf8, size for raw.
func (r *Region) MaxContent() int64 { return r.max }

// MaxWrite returns the largest write the region takes: its undo area's
// capacity (the whole size unless the region was created with a smaller
// max write; raw only).
func (r *Region) MaxWrite() int64 { return r.maxW }

// Nonce returns the nonce the host stored in the control block.
func (r *Region) Nonce() uint64 { return binary.LittleEndian.Uint64(r.ctl[offNonce:]) }

// Version returns the version of the last committed write.
func (r *Region) Version() uint64 { return r.seq.Load() / 2 }

// Retire marks the region as deleted, for processes that still map it,
// and wakes its watchers. Only the host calls it, just before it unlinks
// the objects.
func (r *Region) Retire() {
	r.retired.Store(1)
	r.notify()
}

// Retired reports whether the host has deleted (or replaced) the region:
// a process that still maps it must stop using it and ask the host again.
func (r *Region) Retired() bool { return r.retired.Load() != 0 }

// LockInfo describes the lock's current holder.
type LockInfo struct {
	// Held reports whether the lock is held.
	Held bool
	// PID is the owner's process id (0 if only the offset-0 flag is set).
	PID uint32
	// Label is the owner's self-description.
	Label string
}

// LockState returns who holds the lock, if anyone.
func (r *Region) LockState() LockInfo {
	if w := r.lockw.Load(); w&ownerMask != 0 {
		return LockInfo{Held: true, PID: r.ownerPID(w), Label: r.ownerLabel()}
	}
	if r.flag != nil && r.flag.Load()&0xff != 0 {
		return LockInfo{Held: true}
	}
	return LockInfo{}
}

func (r *Region) ownerLabel() string {
	b := r.ctl[offLabel : offLabel+labelLen]
	n := 0
	for n < len(b) && b[n] != 0 {
		n++
	}
	return string(b[:n])
}

// corruptLen is the one error for a length field past the region's end.
// It matches ErrCorrupt and ErrOutOfRange: the second is what crosses
// the wire.
func corruptLen(l, max int64) error {
	return fmt.Errorf("%w: the length field says %d bytes, the region holds at most %d: a program outside shmgr wrote it; a full Write repairs it (%w)", ErrCorrupt, l, max, ErrOutOfRange)
}

package region

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/shmgr/shmgr/internal/shmerr"
)

// Layout says how a region's data object is organised.
type Layout uint32

// Layouts. The numbers are stored in control blocks: do not reorder.
const (
	// UTF8 is the documented layout: lock flag, uint32 length, UTF-8 data.
	UTF8 Layout = 1
	// Raw is the whole object as bytes, with the lock in the control block.
	Raw Layout = 2
)

// String returns the layout's name as used on the wire and in flags.
func (l Layout) String() string {
	switch l {
	case UTF8:
		return "utf8"
	case Raw:
		return "raw"
	}
	return fmt.Sprintf("layout(%d)", uint32(l))
}

// ParseLayout parses a layout name ("utf8" or "raw").
func ParseLayout(s string) (Layout, error) {
	switch strings.ToLower(s) {
	case "utf8", "utf-8", "":
		return UTF8, nil
	case "raw", "bytes":
		return Raw, nil
	}
	return 0, fmt.Errorf("unknown layout %q: use utf8 or raw", s)
}

// The documented layout.
const (
	// DefaultSize is the size of the documented default region.
	DefaultSize = 4096
	// LockOffset is the offset of the lock flag in the utf8 layout.
	LockOffset = 0
	// LenOffset is the offset of the uint32 little-endian data length.
	LenOffset = 1
	// DataOffset is the offset of the first data byte in the utf8 layout.
	DataOffset = 5
	// MinSize is the smallest region: one data byte.
	MinSize = 1
	// MaxUTF8Size bounds a utf8 region: its length field is a uint32.
	MaxUTF8Size = DataOffset + 1<<32 - 1
)

// DefaultTimeout is how long a writer waits for the lock by default.
const DefaultTimeout = 5 * time.Second

// Control block byte map, format 2 (see docs/ARCHITECTURE.md; a test
// checks the two agree).
const (
	ctlMagic      = "SHMGRCB2"
	ctlFormat     = 2
	offMagic      = 0
	offFormat     = 8
	offLayout     = 12
	offSize       = 16
	offNonce      = 24
	offBootID     = 32
	bootIDLen     = 16
	offNumSlots   = 48
	offSeq        = 64
	offLock       = 128
	offLease      = 136
	offLabel      = 144
	labelLen      = 48
	offUndoState  = 192
	offUndoOff    = 200
	offUndoLen    = 208
	offFlagBy     = 216
	offUndoCap    = 224
	offWatch      = 256
	offWaiters    = 260
	offRetired    = 264
	offFence      = 272
	offSlots      = 2048
	slotSize      = 16
	numSlots      = 128
	ctlHeaderSize = 4096
)

// FormatVersion is the control block format this build writes and reads.
const FormatVersion = ctlFormat

// Offsets within an owner slot.
const (
	slotEpoch = 0
	slotPID   = 4
)

// CtlSize returns the size of the control block for a data object of
// dataSize bytes whose writes are at most maxWrite bytes (0: the whole
// object): a header page and an undo area of UndoCap(dataSize, maxWrite)
// bytes plus 8 (a write's old bytes must survive a crash until it
// commits, so the undo area holds the largest write). A region costs
// Footprint(dataSize, maxWrite) bytes in all.
func CtlSize(dataSize, maxWrite int64) int64 {
	return ctlHeaderSize + UndoCap(dataSize, maxWrite) + 8
}

// UndoCap returns how many bytes a region's undo area holds: maxWrite,
// or dataSize when maxWrite is 0 (the default, and what a control block
// made before the field existed records).
func UndoCap(dataSize, maxWrite int64) int64 {
	if maxWrite <= 0 || maxWrite > dataSize {
		return dataSize
	}
	return maxWrite
}

// Footprint returns what a region of dataSize bytes whose writes are at
// most maxWrite bytes (0: the whole object) costs in shared memory (or
// on disk, for a durable one): the data object and its control block,
// about twice the data by default.
func Footprint(dataSize, maxWrite int64) int64 { return dataSize + CtlSize(dataSize, maxWrite) }

// CheckMaxWrite reports whether maxWrite is a valid max write for a
// region of layout l and size bytes: 0 (the whole region) or, for raw,
// 1 to size. A utf8 write saves the length word and the old content up
// to the write's end, so a utf8 region's undo area is always its whole
// size: max write applies to raw regions only.
func CheckMaxWrite(l Layout, size, maxWrite int64) error {
	switch {
	case maxWrite == 0:
		return nil
	case l != Raw:
		return fmt.Errorf("%w: max write %d: max write applies to raw regions only (a utf8 write saves the length word and the content before its end, so a utf8 region's undo area is always its whole size); leave it out", ErrBadSize, maxWrite)
	case maxWrite < 1 || maxWrite > size:
		return fmt.Errorf("%w: max write %d: it must be 1 to the region's size (%d bytes)", ErrBadSize, maxWrite, size)
	}
	return nil
}

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

// Format initialises a control block for a data object of len(data) bytes
// and the given layout, whose writes are at most maxWrite bytes (0: the
// whole object; see CheckMaxWrite); ctl must be CtlSize(len(data),
// maxWrite) bytes. The data must be zero (a fresh object) or already
// hold valid content for the layout. version is the region's starting
// version. Only the host formats control blocks.
func Format(data, ctl []byte, l Layout, maxWrite int64, nonce uint64, version uint64) error {
	size := int64(len(data))
	if err := CheckSize(l, size); err != nil {
		return err
	}
	if err := CheckMaxWrite(l, size, maxWrite); err != nil {
		return err
	}
	if int64(len(ctl)) != CtlSize(size, maxWrite) {
		return fmt.Errorf("%w: control block is %d bytes, want %d", ErrBadControl, len(ctl), CtlSize(size, maxWrite))
	}
	clear(ctl[:ctlHeaderSize])
	copy(ctl[offMagic:], ctlMagic)
	binary.LittleEndian.PutUint32(ctl[offFormat:], ctlFormat)
	binary.LittleEndian.PutUint32(ctl[offLayout:], uint32(l))
	binary.LittleEndian.PutUint64(ctl[offSize:], uint64(size))
	binary.LittleEndian.PutUint64(ctl[offUndoCap:], uint64(UndoCap(size, maxWrite)))
	binary.LittleEndian.PutUint64(ctl[offNonce:], nonce)
	id := bootID()
	copy(ctl[offBootID:offBootID+bootIDLen], id[:])
	binary.LittleEndian.PutUint32(ctl[offNumSlots:], numSlots)
	binary.LittleEndian.PutUint64(ctl[offSeq:], version*2)
	if l == UTF8 {
		data[LockOffset] = 0
		if binary.LittleEndian.Uint32(data[LenOffset:]) > uint32(len(data)-DataOffset) {
			binary.LittleEndian.PutUint32(data[LenOffset:], 0)
		}
	}
	return nil
}

// CheckSize reports whether size bytes is a valid data object for l.
func CheckSize(l Layout, size int64) error {
	switch l {
	case UTF8:
		if size < DataOffset+1 || size > MaxUTF8Size {
			return fmt.Errorf("%w: %d bytes: a utf8 region needs %d to %d bytes", ErrBadSize, size, DataOffset+1, int64(MaxUTF8Size))
		}
	case Raw:
		if size < MinSize {
			return fmt.Errorf("%w: %d bytes: a raw region needs at least %d byte", ErrBadSize, size, MinSize)
		}
	default:
		return fmt.Errorf("unknown layout %d", uint32(l))
	}
	if int64(int(size)) != size {
		return fmt.Errorf("%w: %d bytes does not fit this platform's address space", ErrBadSize, size)
	}
	return nil
}

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
	lockw     *atomic.Uint64 // see lock.go
	lease     *atomic.Uint64 // see lock.go: lease end (ms) tagged with its generation
	fence     *atomic.Uint64 // fencing token of the last lease granted
	flag      *atomic.Uint32 // utf8 only: bytes 0-3 of data; byte 0 is the lock flag
	flagBy    *uint64        // see lock.go: plain stores, read only after its writer died
	undoState *atomic.Uint32
	watch     *atomic.Uint32
	waiters   *atomic.Uint32 // processes sleeping on watch
	retired   *atomic.Uint32 // set by the host before it deletes the region

	slots *slotFile // the kernel-held slot locks (see slot.go)
	slot  int       // this Region's owner slot
	me    uint64    // the lock word's owner bits naming this Region's slot and epoch
	boot  [bootIDLen]byte
	pid   uint32
	label [labelLen]byte
	gate  chan struct{} // see gateIn
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

// checkHeader checks a format-2 control block's header against its data
// object.
func checkHeader(data, ctl []byte) error {
	if len(ctl) < ctlHeaderSize {
		return fmt.Errorf("%w: %d bytes is too small for a shmgr control block", ErrBadControl, len(ctl))
	}
	switch m := string(ctl[offMagic : offMagic+8]); m {
	case ctlMagic:
	case ctlMagicV1:
		return fmt.Errorf("%w: %w: format 1, this build uses format %d: start the shmgr host of this version once; it upgrades the control block in place (stop older shmgr clients first)", ErrBadControl, ErrOldFormat, ctlFormat)
	default:
		return fmt.Errorf("%w: no shmgr control block (magic missing)", ErrBadControl)
	}
	if f := binary.LittleEndian.Uint32(ctl[offFormat:]); f != ctlFormat {
		return fmt.Errorf("%w: control block format %d, this build knows %d: use the shmgr that made it", ErrBadControl, f, ctlFormat)
	}
	if n := binary.LittleEndian.Uint32(ctl[offNumSlots:]); n != numSlots {
		return fmt.Errorf("%w: control block has %d owner slots, this build knows %d", ErrBadControl, n, numSlots)
	}
	l := Layout(binary.LittleEndian.Uint32(ctl[offLayout:]))
	size := int64(binary.LittleEndian.Uint64(ctl[offSize:]))
	if size != int64(len(data)) {
		return fmt.Errorf("%w: control block is for %d bytes, data object has %d", ErrBadControl, size, len(data))
	}
	if err := CheckSize(l, size); err != nil {
		return fmt.Errorf("%w: %v", ErrBadControl, err)
	}
	c := int64(binary.LittleEndian.Uint64(ctl[offUndoCap:]))
	if c < 0 || c > size || c != 0 && c != size && l != Raw {
		return fmt.Errorf("%w: the control block's undo capacity is %d bytes, for a %s region of %d bytes", ErrBadControl, c, l, size)
	}
	if int64(len(ctl)) != CtlSize(size, c) {
		return fmt.Errorf("%w: control block is %d bytes, want %d (undo capacity %d)", ErrBadControl, len(ctl), CtlSize(size, c), UndoCap(size, c))
	}
	return nil
}

// undoCapOf returns the undo capacity a checked control block records.
func undoCapOf(ctl []byte, size int64) int64 {
	return UndoCap(size, int64(binary.LittleEndian.Uint64(ctl[offUndoCap:])))
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

// maxOptimistic is how many seqlock attempts a reader makes before it
// takes the lock, so that a reader racing a writer flat out never starves.
const maxOptimistic = 64

// contentLen returns the current content length as the data says, which
// may be garbage while a write is in progress.
func (r *Region) contentLen() int64 {
	if r.layout == Raw {
		return r.max
	}
	return int64(binary.LittleEndian.Uint32(r.data[LenOffset:]))
}

// busy reports whether a program outside shmgr may be writing: the
// offset-0 flag is set (utf8 only) while shmgr's own lock is free. When a
// shmgr process holds the lock, the flag is its own (a lease keeps it for
// the whole lease) and its writes move the seq word, which readers check.
func (r *Region) busy() bool {
	return r.flag != nil && r.flag.Load()&0xff != 0 && r.lockw.Load()&ownerMask == 0
}

// checkedLen is contentLen for code about to slice with it: a length field
// past the region's end (written by a program that ignores the layout) is
// an error, not a panic.
func (r *Region) checkedLen() (int64, error) {
	l := r.contentLen()
	if l < 0 || l > r.max {
		return 0, corruptLen(l, r.max)
	}
	return l, nil
}

// corruptLen is the one error for a length field past the region's end.
// It matches ErrCorrupt and ErrOutOfRange: the second is what crosses
// the wire.
func corruptLen(l, max int64) error {
	return fmt.Errorf("%w: the length field says %d bytes, the region holds at most %d: a program outside shmgr wrote it; a full Write repairs it (%w)", ErrCorrupt, l, max, ErrOutOfRange)
}

// AppendContent appends the region's current content to dst and returns
// the extended slice and the content's version. It never blocks a writer:
// it copies optimistically and retries if a write raced it, and after a
// bounded number of retries it takes the lock.
func (r *Region) AppendContent(dst []byte) ([]byte, uint64, error) {
	return r.AppendRange(dst, 0, -1)
}

// AppendRange appends n bytes of content from offset off (n < 0: to the
// end). For the utf8 layout the range is within the current content and
// is clipped to its end; for raw it must lie within the object.
func (r *Region) AppendRange(dst []byte, off, n int64) ([]byte, uint64, error) {
	return r.AppendFramed(dst, off, n, nil)
}

// Header appends a frame header for content of n bytes at version v.
type Header func(dst []byte, v uint64, n int) []byte

// AppendFramed is AppendRange with a header: hdr (if not nil) is appended
// before the content, with the content's version and length, all in one
// consistent copy. A server uses it to frame a reply without copying the
// content twice.
func (r *Region) AppendFramed(dst []byte, off, n int64, hdr Header) ([]byte, uint64, error) {
	if off < 0 {
		return dst, 0, fmt.Errorf("%w: offset %d is negative", ErrOutOfRange, off)
	}
	start := len(dst)
	for i := 0; i < maxOptimistic; i++ {
		s1 := r.seq.Load()
		if s1&1 != 0 || r.busy() {
			spin(i)
			continue
		}
		var err error
		dst, err = r.appendLocked(dst[:start], r.contentLen(), off, n, s1/2, hdr)
		loadFence() // the copy's loads before the re-check (doc.go, fence 2)
		if r.busy() || r.seq.Load() != s1 {
			spin(i)
			continue
		}
		if err != nil {
			dst = dst[:start]
		}
		return dst, s1 / 2, err
	}
	return r.appendSlow(dst, start, off, n, hdr)
}

// appendSlow serves a reader that lost maxOptimistic races: it takes the
// lock when the lock is free, so that writers wait for it, and meanwhile
// keeps trying optimistically with growing pauses. It never waits for a
// lease to end: a lease holder's writes move the seq word like any other.
func (r *Region) appendSlow(dst []byte, start int, off, n int64, hdr Header) ([]byte, uint64, error) {
	begin := time.Now()
	for i := 0; ; i++ {
		if r.tryLock() || i%16 == 15 && r.takeFromDead() {
			v := r.seq.Load() / 2
			var err error
			dst, err = r.appendLocked(dst[:start], r.contentLen(), off, n, v, hdr)
			r.unlock()
			if err != nil {
				dst = dst[:start]
			}
			return dst, v, err
		}
		backoff(8 + i)
		if s1 := r.seq.Load(); s1&1 == 0 && !r.busy() {
			var err error
			dst, err = r.appendLocked(dst[:start], r.contentLen(), off, n, s1/2, hdr)
			loadFence()
			if !r.busy() && r.seq.Load() == s1 {
				if err != nil {
					dst = dst[:start]
				}
				return dst, s1 / 2, err
			}
		}
		if waited := time.Since(begin); waited > DefaultTimeout {
			return dst[:start], 0, r.timeoutError(waited)
		}
	}
}

// appendLocked copies the range from a consistent (or about-to-be-checked)
// view with content length l.
func (r *Region) appendLocked(dst []byte, l, off, n int64, v uint64, hdr Header) ([]byte, error) {
	if l < 0 || l > r.max {
		// Only possible mid-write; the caller's seq check rejects the copy.
		return dst, corruptLen(l, r.max)
	}
	if off > l {
		return dst, fmt.Errorf("%w: offset %d is past the end of the content (%d bytes)", ErrOutOfRange, off, l)
	}
	end := l
	if n >= 0 {
		// n > l-off, not off+n > l: the sum may overflow.
		if n > l-off {
			if r.layout == Raw {
				return dst, fmt.Errorf("%w: %d bytes at offset %d exceed the region (%d bytes)", ErrOutOfRange, n, off, l)
			}
		} else {
			end = off + n
		}
	}
	base := int64(0)
	if r.layout == UTF8 {
		base = DataOffset
	}
	if hdr != nil {
		dst = hdr(dst, v, int(end-off))
	}
	return append(dst, r.data[base+off:base+end]...), nil
}

// spin backs off inside an optimistic read loop.
func spin(i int) {
	if i > 4 {
		runtime.Gosched()
	}
}

// WriteOptions tune one write. The zero value waits DefaultTimeout and
// writes unconditionally.
type WriteOptions struct {
	// Timeout is how long to wait for the lock (0: DefaultTimeout).
	Timeout time.Duration
	// IfVersion makes the write conditional: it fails with a
	// ConflictError unless the region is at this version.
	IfVersion uint64
	// Conditional enables IfVersion.
	Conditional bool
	// Label overrides the region's owner label for this write.
	Label []byte
	// Fenced makes the write under a lease this process holds (see
	// Acquire): it does not take the lock, and fails with ErrFenced unless
	// the lease with token Fence is still held and unexpired.
	Fenced bool
	// Fence is the lease's fencing token.
	Fence uint64
	// Stop, if not nil, abandons the wait for the lock when closed
	// (ErrStopped): a server stops waiting when its connection ends.
	Stop <-chan struct{}
}

// Write replaces the region's content with p (for raw: writes p at offset
// 0) and returns the new version. Nothing is touched if p is invalid.
func (r *Region) Write(p []byte, o WriteOptions) (uint64, error) {
	if r.layout == UTF8 {
		if err := r.checkUTF8(p); err != nil {
			return 0, err
		}
	} else if int64(len(p)) > r.max {
		return 0, fmt.Errorf("%w: %d bytes, the region holds %d", ErrTooLarge, len(p), r.max)
	} else if int64(len(p)) > r.maxW {
		return 0, r.tooLarge(len(p))
	}
	if err := r.enter(o); err != nil {
		return 0, err
	}
	defer r.leave(o)
	if err := r.checkVersion(o); err != nil {
		return 0, err
	}
	return r.commit(0, p, true), nil
}

// WriteAt writes p at offset off of the content and returns the new
// version. For utf8 the offset must not pass the end of the content and
// both ends of the write must fall on character boundaries; the content
// grows if the write passes its end. For raw the range must lie within
// the object.
func (r *Region) WriteAt(off int64, p []byte, o WriteOptions) (uint64, error) {
	if off < 0 {
		return 0, fmt.Errorf("%w: offset %d is negative", ErrOutOfRange, off)
	}
	if int64(len(p)) > r.max-off { // not off+len: the sum may overflow
		if r.layout == Raw {
			return 0, fmt.Errorf("%w: %d bytes at offset %d exceed the region (%d bytes)", ErrOutOfRange, len(p), off, r.max)
		}
		return 0, fmt.Errorf("%w: %d bytes at offset %d exceed the maximum of %d", ErrTooLarge, len(p), off, r.max)
	}
	if int64(len(p)) > r.maxW {
		return 0, r.tooLarge(len(p))
	}
	if r.layout == UTF8 && !utf8.Valid(p) {
		return 0, fmt.Errorf("%w: %s", ErrInvalidUTF8, badUTF8At(p))
	}
	if err := r.enter(o); err != nil {
		return 0, err
	}
	defer r.leave(o)
	if err := r.checkVersion(o); err != nil {
		return 0, err
	}
	if r.layout == UTF8 {
		l, err := r.checkedLen()
		if err != nil {
			return 0, err
		}
		if off > l {
			return 0, fmt.Errorf("%w: offset %d is past the end of the content (%d bytes)", ErrOutOfRange, off, l)
		}
		cur := r.data[DataOffset : DataOffset+l]
		end := off + int64(len(p))
		if !runeStart(cur, off) || !runeStart(cur, end) {
			return 0, fmt.Errorf("%w: a write at %d..%d would split a character", ErrInvalidUTF8, off, end)
		}
	}
	return r.commit(off, p, false), nil
}

// Update runs fn on the current content under the lock and writes what fn
// returns. cur aliases the region and is valid only during fn; fn must not
// retain it. If fn returns an error nothing is written.
func (r *Region) Update(o WriteOptions, fn func(cur []byte) ([]byte, error)) (uint64, error) {
	if err := r.enter(o); err != nil {
		return 0, err
	}
	defer r.leave(o)
	if err := r.checkVersion(o); err != nil {
		return 0, err
	}
	base := int64(0)
	if r.layout == UTF8 {
		base = DataOffset
	}
	l, err := r.checkedLen()
	if err != nil {
		return 0, err
	}
	next, err := fn(r.data[base : base+l])
	if err != nil {
		return 0, err
	}
	if r.layout == UTF8 {
		if err := r.checkUTF8(next); err != nil {
			return 0, err
		}
	} else if int64(len(next)) > r.max {
		return 0, fmt.Errorf("%w: %d bytes, the region holds %d", ErrTooLarge, len(next), r.max)
	} else if int64(len(next)) > r.maxW {
		return 0, r.tooLarge(len(next))
	}
	return r.commit(0, next, true), nil
}

func (r *Region) checkUTF8(p []byte) error {
	if int64(len(p)) > r.max {
		return fmt.Errorf("%w: %d bytes, the maximum is %d", ErrTooLarge, len(p), r.max)
	}
	if !utf8.Valid(p) {
		return fmt.Errorf("%w: %s", ErrInvalidUTF8, badUTF8At(p))
	}
	return nil
}

func (r *Region) checkVersion(o WriteOptions) error {
	if o.Conditional {
		if v := r.seq.Load() / 2; v != o.IfVersion {
			return &ConflictError{Expected: o.IfVersion, Current: v}
		}
	}
	return nil
}

// badUTF8At describes where p stops being UTF-8.
func badUTF8At(p []byte) string {
	for i := 0; i < len(p); {
		c, n := utf8.DecodeRune(p[i:])
		if c == utf8.RuneError && n <= 1 {
			return fmt.Sprintf("invalid byte 0x%02x at offset %d", p[i], i)
		}
		i += n
	}
	return "invalid encoding"
}

// runeStart reports whether offset i of b begins a character (or is the
// end of b).
func runeStart(b []byte, i int64) bool {
	return i >= int64(len(b)) || utf8.RuneStart(b[i])
}

// commit writes p at off with the undo log and the seqlock; the caller
// holds the lock. replace means p becomes the whole content (utf8).
func (r *Region) commit(off int64, p []byte, replace bool) uint64 {
	var u0, u1 int64 // undo range in the data object
	if r.layout == UTF8 {
		old := r.contentLen()
		end := off + int64(len(p))
		// Only bytes that belong to the old content need saving.
		u0, u1 = LenOffset, DataOffset+min(end, old)
	} else {
		u0, u1 = off, off+int64(len(p))
	}
	copy(r.undo, r.data[u0:u1])
	binary.LittleEndian.PutUint64(r.ctl[offUndoOff:], uint64(u0))
	binary.LittleEndian.PutUint64(r.ctl[offUndoLen:], uint64(u1-u0))
	r.undoState.Store(1)

	s := r.seq.Load()
	r.seq.Store(s + 1)
	storeFence() // the odd seq before the data stores (doc.go, fence 1)
	if r.layout == UTF8 {
		newLen := off + int64(len(p))
		if !replace {
			newLen = max(newLen, r.contentLen())
		}
		copy(r.data[DataOffset+off:], p)
		binary.LittleEndian.PutUint32(r.data[LenOffset:], uint32(newLen))
	} else {
		copy(r.data[off:], p)
	}
	r.seq.Store(s + 2)
	r.undoState.Store(0)
	r.notify()
	return (s + 2) / 2
}

func leUint64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }

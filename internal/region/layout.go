package region

import (
	"encoding/binary"
	"fmt"
	"strings"
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

func leUint64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }

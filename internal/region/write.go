package region

import (
	"encoding/binary"
	"fmt"
	"time"
	"unicode/utf8"
)

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
	if err := r.checkContent(p); err != nil {
		return 0, err
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
	if err := r.checkContent(next); err != nil {
		return 0, err
	}
	return r.commit(0, next, true), nil
}

// checkContent reports whether p may become the region's whole content:
// valid UTF-8 that fits (utf8), or no larger than the region and its
// undo area (raw).
func (r *Region) checkContent(p []byte) error {
	switch {
	case r.layout == UTF8:
		return r.checkUTF8(p)
	case int64(len(p)) > r.max:
		return fmt.Errorf("%w: %d bytes, the region holds %d", ErrTooLarge, len(p), r.max)
	case int64(len(p)) > r.maxW:
		return r.tooLarge(len(p))
	}
	return nil
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

package region

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"time"
)

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
// A read-only Region (AttachReadOnly) never takes the lock: it only
// retries.
func (r *Region) appendSlow(dst []byte, start int, off, n int64, hdr Header) ([]byte, uint64, error) {
	begin := time.Now()
	for i := 0; ; i++ {
		if !r.readOnly && (r.tryLock() || i%16 == 15 && r.takeFromDead()) {
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

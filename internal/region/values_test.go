package region_test

import (
	"encoding/binary"
	"fmt"

	"github.com/shmgr/shmgr/internal/region"
)

// crashValue returns value number id for a region: for utf8 one letter
// repeated, its length varying with id; for raw the whole region filled
// with the 8-byte pattern id+1. Any mix of two values, and any value of
// the wrong length, is detectable. buf must hold MaxContent bytes.
func crashValue(buf []byte, l region.Layout, id uint64) []byte {
	if l == region.UTF8 {
		n := 1 + int((id*7919)%uint64(len(buf)))
		b := buf[:n]
		b[0] = byte('a' + id%26)
		for i := 1; i < n; i *= 2 {
			copy(b[i:], b[:i])
		}
		return b
	}
	b := buf[:len(buf)&^7]
	binary.LittleEndian.PutUint64(b, id+1)
	for i := 8; i < len(b); i *= 2 {
		copy(b[i:], b[:i])
	}
	return b
}

// describeValue says where got first differs from want.
func describeValue(got, want []byte) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d bytes, want %d", len(got), len(want))
	}
	i := 0
	for i < len(got) && got[i] == want[i] {
		i++
	}
	if i == len(got) {
		return "equal"
	}
	return fmt.Sprintf("differs at byte %d of %d: got %#x, want %#x", i, len(got), got[i], want[i])
}

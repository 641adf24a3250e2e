package host

import (
	"bytes"
	"testing"

	"github.com/shmgr/shmgr/internal/proto"
)

// TestChanged: the range a snapshot reports as changed rebuilds it from
// the one before (proto.ApplyDelta), and is no wider than it must be.
func TestChanged(t *testing.T) {
	big := func(n int, edits map[int]byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i * 7)
		}
		for i, v := range edits {
			b[i] = v
		}
		return b
	}
	tests := []struct {
		name       string
		prev, next []byte
		off, n     int
	}{
		{"same", []byte("abc"), []byte("abc"), 3, 0},
		{"one byte", []byte("abc"), []byte("aXc"), 1, 1},
		{"two ends", []byte("abcdef"), []byte("Xbcdeg"), 0, 6},
		{"grow", []byte("abc"), []byte("abcde"), 3, 2},
		{"grow and change", []byte("abc"), []byte("aXcde"), 1, 4},
		{"shrink", []byte("abcdef"), []byte("abc"), 3, 0},
		{"shrink and change", []byte("abcdef"), []byte("aXc"), 1, 2},
		{"from empty", nil, []byte("abc"), 0, 3},
		{"to empty", []byte("abc"), nil, 0, 0},
		{"1 MiB, one byte in the middle", big(1<<20, nil), big(1<<20, map[int]byte{500000: 1}), 500000, 1},
		{"1 MiB, two far bytes", big(1<<20, nil), big(1<<20, map[int]byte{1000: 1, 900000: 2}), 1000, 899001},
		{"1 MiB, last byte", big(1<<20, nil), big(1<<20, map[int]byte{1<<20 - 1: 3}), 1<<20 - 1, 1},
		{"1 MiB, first byte", big(1<<20, nil), big(1<<20, map[int]byte{0: 5}), 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			off, n := changed(tt.prev, tt.next)
			if off != tt.off || n != tt.n {
				t.Errorf("changed = %d, %d; want %d, %d", off, n, tt.off, tt.n)
			}
			got, err := proto.ApplyDelta(tt.prev, int64(len(tt.next)), int64(off), tt.next[off:off+n])
			if err != nil || !bytes.Equal(got, tt.next) {
				t.Errorf("ApplyDelta of the range = %d bytes, %v; want the next content", len(got), err)
			}
		})
	}
}

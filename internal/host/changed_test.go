package host

import (
	"bytes"
	"strings"
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

// TestDeltaSince: from any of the last snapshots, the range DeltaSince
// gives rebuilds the newest one (proto.ApplyDelta), across edits, growth
// and shrinking; from further back it declines.
func TestDeltaSince(t *testing.T) {
	contents := [][]byte{
		[]byte("hello world, this is version zero"),
		[]byte("hello world, this is version one!"),
		[]byte("hello WORLD, this is version one!"),
		[]byte("hello WORLD, this is version one! and longer"),
		[]byte("hello WORLD"),
		[]byte("Hello WORLD"),
		[]byte("Hello WORLD"),
		[]byte(""),
		[]byte("back again"),
	}
	var snaps []*Snapshot
	var prev *Snapshot
	for i, c := range contents {
		prev = nextSnapshot(prev, uint64(10+i), c, true)
		snaps = append(snaps, prev)
	}
	for j, sj := range snaps {
		for i := range j {
			off, n, ok := sj.DeltaSince(snaps[i].Version)
			if !ok {
				t.Fatalf("DeltaSince(%d) on version %d: not ok", snaps[i].Version, sj.Version)
			}
			got, err := proto.ApplyDelta(contents[i], int64(len(contents[j])), int64(off), contents[j][off:off+n])
			if err != nil || !bytes.Equal(got, contents[j]) {
				t.Errorf("from version %d to %d: range [%d, %d) rebuilds %q, %v; want %q", snaps[i].Version, sj.Version, off, off+n, got, err, contents[j])
			}
		}
		if _, _, ok := sj.DeltaSince(9); ok {
			t.Errorf("DeltaSince(9), before the first snapshot, on version %d: ok", sj.Version)
		}
	}
	// Only the last maxChanges snapshots are reachable.
	s := snaps[len(snaps)-1]
	for k := range maxChanges + 5 {
		s = nextSnapshot(s, s.Version+1, []byte(strings.Repeat("x", k%7)), true)
	}
	if _, _, ok := s.DeltaSince(snaps[len(snaps)-1].Version); ok {
		t.Errorf("DeltaSince reached back %d snapshots, past maxChanges (%d)", maxChanges+5, maxChanges)
	}
	if _, _, ok := s.DeltaSince(s.Version - maxChanges); !ok {
		t.Errorf("DeltaSince of the snapshot maxChanges back: not ok")
	}
}

// TestSnapshotWithoutDiff: while no subscriber wants deltas the hub does
// not compare contents, and DeltaSince spans the whole content.
func TestSnapshotWithoutDiff(t *testing.T) {
	a := nextSnapshot(nil, 1, []byte("hello world"), false)
	b := nextSnapshot(a, 2, []byte("hello World"), false)
	if off, n, ok := b.DeltaSince(1); !ok || off != 0 || n != len(b.Content) {
		t.Errorf("DeltaSince(1) = %d, %d, %v; want the whole content", off, n, ok)
	}
	c := nextSnapshot(b, 3, []byte("hello WOrld"), true)
	if off, n, ok := c.DeltaSince(2); !ok || off != 7 || n != 1 {
		t.Errorf("DeltaSince(2) with a diff = %d, %d, %v; want 7, 1", off, n, ok)
	}
	if off, n, ok := c.DeltaSince(1); !ok || off != 0 || n != len(c.Content) {
		t.Errorf("DeltaSince(1) across an undiffed step = %d, %d, %v; want the whole content", off, n, ok)
	}
}

package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
)

// crashAfterSeal leaves in dir the log of a node killed between the two
// steps of a segment rotation in raft-wal: the tail segment's file is
// sealed (its index written and synced, inside an append), and the
// metadata, which raft-wal commits afterwards in the background, still
// names it as the unsealed tail. It returns the last index written.
func crashAfterSeal(t *testing.T, dir string, segmentSize int) uint64 {
	t.Helper()
	meta := &metadb.BoltMetaDB{}
	st, err := meta.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	si := types.SegmentInfo{ID: 1, BaseIndex: 1, MinIndex: 1, SizeLimit: uint32(segmentSize), Codec: wal.CodecBinaryV1, CreateTime: time.Now()}
	st.NextSegmentID, st.Segments = 2, []types.SegmentInfo{si}
	if err := meta.CommitState(st); err != nil {
		t.Fatal(err)
	}
	w, err := segment.NewFiler(dir, fs.New()).Create(si)
	if err != nil {
		t.Fatal(err)
	}
	var codec wal.BinaryCodec
	idx := uint64(0)
	for sealed := false; !sealed; {
		idx++
		if idx > 10000 {
			t.Fatal("the segment never sealed")
		}
		var b bytes.Buffer
		if err := codec.Encode(&raft.Log{Index: idx, Term: 1, Type: raft.LogCommand, Data: walEntry(idx)}, &b); err != nil {
			t.Fatal(err)
		}
		if err := w.Append([]types.LogEntry{{Index: idx, Data: b.Bytes()}}); err != nil {
			t.Fatal(err)
		}
		if sealed, _, err = w.Sealed(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := meta.Close(); err != nil {
		t.Fatal(err)
	}
	return idx
}

func walEntry(idx uint64) []byte { return fmt.Appendf(bytes.Repeat([]byte{'x'}, 200), "entry %d", idx) }

// TestLogAfterCrashInRotation: a log left by a crash between sealing its
// tail segment and recording the seal (crashAfterSeal) takes the next
// entries, and every entry, old and new, reads back after a restart.
// raft-wal v0.4.0 alone refuses every append of such a log with "segment
// is sealed", for good: seen in CI as a leader killed in the middle of a
// 256 MiB write that never caught up after its restart.
func TestLogAfterCrashInRotation(t *testing.T) {
	const segmentSize = 8 << 10
	dir := t.TempDir()
	last := crashAfterSeal(t, dir, segmentSize)
	logger := hclog.NewNullLogger()
	logs, meta, err := openLog(dir, segmentSize, logger)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := logs.LastIndex(); got != last {
		t.Errorf("LastIndex after the crash = %d, want %d", got, last)
	}
	const more = 100 // enough to fill and rotate segments again
	for i := last + 1; i <= last+more; i++ {
		if err := logs.StoreLog(&raft.Log{Index: i, Term: 2, Type: raft.LogCommand, Data: walEntry(i)}); err != nil {
			t.Fatalf("append of entry %d after the crash: %v", i, err)
		}
	}
	if err := errors.Join(logs.Close(), meta.Close()); err != nil {
		t.Fatal(err)
	}
	logs, meta, err = openLog(dir, segmentSize, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logs.Close(); meta.Close() })
	if got, _ := logs.LastIndex(); got != last+more {
		t.Errorf("LastIndex after a restart = %d, want %d", got, last+more)
	}
	for i := uint64(1); i <= last+more; i++ {
		var l raft.Log
		if err := logs.GetLog(i, &l); err != nil {
			t.Fatalf("entry %d after a restart: %v", i, err)
		}
		if !bytes.Equal(l.Data, walEntry(i)) {
			t.Fatalf("entry %d after a restart holds %.40q", i, l.Data)
		}
	}
}

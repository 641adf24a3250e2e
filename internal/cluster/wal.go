package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
)

// openLog opens the Raft log in dir (raft-wal, segments of segmentSize
// bytes) and its metadata database, which the caller closes with it,
// after finishing a segment rotation a crash interrupted (see
// finishRotation).
func openLog(dir string, segmentSize int, logger hclog.Logger) (*wal.WAL, *metadb.BoltMetaDB, error) {
	if err := finishRotation(dir, segmentSize, logger); err != nil {
		return nil, nil, fmt.Errorf("cluster: open the log: %w", err)
	}
	meta := &metadb.BoltMetaDB{}
	logs, err := wal.Open(dir, wal.WithLogger(logger), wal.WithSegmentSize(segmentSize), wal.WithMetaStore(meta))
	if err != nil {
		meta.Close()
		return nil, nil, fmt.Errorf("cluster: open the log: %w", err)
	}
	return logs, meta, nil
}

// finishRotation completes a segment rotation that a crash cut in two.
// raft-wal seals a full tail segment inside an append (it writes and
// syncs the segment's index), then records the seal and the next segment
// in its metadata in the background. A crash in between leaves a tail
// the metadata calls unsealed whose file is sealed, and raft-wal v0.4.0,
// on opening it, refuses every append with "segment is sealed", for good:
// the node can never catch up. This records the seal and the next
// segment as the rotation would have (the next segment's file is made by
// raft-wal on opening, as after a crash just past the metadata commit).
// It changes nothing in any other log.
func finishRotation(dir string, segmentSize int, logger hclog.Logger) error {
	if _, err := os.Stat(filepath.Join(dir, metadb.FileName)); errors.Is(err, os.ErrNotExist) {
		return nil // a new log
	}
	meta := &metadb.BoltMetaDB{}
	defer meta.Close()
	st, err := meta.Load(dir)
	if err != nil {
		return err
	}
	if len(st.Segments) == 0 {
		return nil
	}
	tail := st.Segments[len(st.Segments)-1]
	if !tail.SealTime.IsZero() {
		return nil
	}
	w, err := segment.NewFiler(dir, fs.New()).RecoverTail(tail)
	if errors.Is(err, os.ErrNotExist) {
		return nil // raft-wal makes a missing tail file itself
	}
	if err != nil {
		return err
	}
	sealed, indexStart, err := w.Sealed()
	last := w.LastIndex()
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil || !sealed {
		return err
	}
	now := time.Now()
	tail.SealTime, tail.MaxIndex, tail.IndexStart = now, last, indexStart
	st.Segments[len(st.Segments)-1] = tail
	// The next segment as raft-wal's rotation makes it (WAL.newSegment).
	st.Segments = append(st.Segments, types.SegmentInfo{ID: st.NextSegmentID, BaseIndex: last + 1, MinIndex: last + 1,
		SizeLimit: uint32(segmentSize), Codec: wal.CodecBinaryV1, CreateTime: now})
	st.NextSegmentID++
	if err := meta.CommitState(st); err != nil {
		return err
	}
	logger.Warn("finished a segment rotation a crash interrupted", "sealed-segment", tail.ID, "last-index", last)
	return nil
}

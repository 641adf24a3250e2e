package cluster

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"

	"github.com/hashicorp/raft"

	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/region"
)

// A snapshot stream: magic "SHMGRCS1"; the index of the last entry it
// includes; the region count, then for each its
// shm_id, size, layout, durable flag, max write, nonce, version and
// content; the upload count, then for each its id, last index and pieces;
// the request count, then for each (oldest first) its id, version, error
// code (proto.Code, 0 for none) and error message; then, from format 2 on
// (magic "SHMGRCS2"), the log time, the lease count and for each its
// shm_id, token, deadline and free time, and the access tokens file (1
// and its bytes, or 0 for none); a CRC-32C of everything before it (4
// bytes, little-endian). Strings and byte strings are a uvarint length
// and the bytes; numbers are uvarints. Snapshots are written in the
// newest format; format 1 (no leases, no tokens) is still read.
const (
	snapMagic1 = "SHMGRCS1"
	snapMagic  = "SHMGRCS2"
)

// maxSnapString bounds a string in a snapshot that is not content (an
// shm_id, a nonce), so that a damaged length cannot make Restore allocate
// gigabytes before the checksum fails.
const maxSnapString = 256

// ErrBadSnapshot: a snapshot stream is damaged or of another format.
var ErrBadSnapshot = errors.New("bad cluster snapshot")

type snapshot struct {
	index    uint64
	regions  []snapRegion
	uploads  []snapUpload
	requests []snapRequest
	now      int64
	leases   []snapLease
	tokens   tokens
}

type snapLease struct {
	ID string
	lease
}

type snapRequest struct {
	ID     uint64
	Result Result
}

type snapRegion struct {
	ID       string
	Size     int64
	Layout   region.Layout
	Durable  bool
	MaxWrite int64
	Nonce    string
	Version  uint64
	Content  []byte
}

type snapUpload struct {
	ID    uint64
	Last  uint64
	Parts [][]byte
}

// Persist implements raft.FSMSnapshot.
func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.write(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("cluster: write snapshot: %w", err)
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (s *snapshot) Release() {}

func (s *snapshot) write(w io.Writer) error {
	sum := crc32.New(castagnoli)
	bw := bufio.NewWriterSize(io.MultiWriter(w, sum), 1<<20)
	var num [binary.MaxVarintLen64]byte
	u := func(n uint64) { bw.Write(num[:binary.PutUvarint(num[:], n)]) }
	bs := func(b []byte) { u(uint64(len(b))); bw.Write(b) }
	bw.WriteString(snapMagic)
	u(s.index)
	u(uint64(len(s.regions)))
	for _, r := range s.regions {
		bs([]byte(r.ID))
		u(uint64(r.Size))
		u(uint64(r.Layout))
		d := uint64(0)
		if r.Durable {
			d = 1
		}
		u(d)
		u(uint64(r.MaxWrite))
		bs([]byte(r.Nonce))
		u(r.Version)
		bs(r.Content)
	}
	u(uint64(len(s.uploads)))
	for _, up := range s.uploads {
		u(up.ID)
		u(up.Last)
		u(uint64(len(up.Parts)))
		for _, p := range up.Parts {
			bs(p)
		}
	}
	u(uint64(len(s.requests)))
	for _, r := range s.requests {
		u(r.ID)
		u(r.Result.Version)
		if r.Result.Err == nil {
			u(0)
			bs(nil)
		} else {
			u(uint64(proto.CodeOf(r.Result.Err)))
			bs([]byte(r.Result.Err.Error()))
		}
	}
	u(uint64(s.now))
	u(uint64(len(s.leases)))
	for _, l := range s.leases {
		bs([]byte(l.ID))
		u(l.Token)
		u(uint64(l.Deadline))
		u(uint64(l.Free))
	}
	if s.tokens.set {
		u(1)
		bs(s.tokens.data)
	} else {
		u(0)
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	_, err := w.Write(binary.LittleEndian.AppendUint32(nil, sum.Sum32()))
	return err
}

// snapReader reads a snapshot stream, summing what it reads.
type snapReader struct {
	r   *bufio.Reader
	sum hash.Hash32
	err error
}

func (s *snapReader) ReadByte() (byte, error) {
	b, err := s.r.ReadByte()
	if err == nil {
		s.sum.Write([]byte{b})
	}
	return b, err
}

func (s *snapReader) u(what string) uint64 {
	if s.err != nil {
		return 0
	}
	n, err := binary.ReadUvarint(s)
	if err != nil {
		s.err = fmt.Errorf("%w: %s: %w", ErrBadSnapshot, what, err)
	}
	return n
}

func (s *snapReader) bytes(what string, max uint64) []byte {
	n := s.u(what + " length")
	if s.err != nil {
		return nil
	}
	if n > max {
		s.err = fmt.Errorf("%w: %s of %d bytes, at most %d", ErrBadSnapshot, what, n, max)
		return nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(s.r, b); err != nil {
		s.err = fmt.Errorf("%w: %s: %w", ErrBadSnapshot, what, err)
		return nil
	}
	s.sum.Write(b)
	return b
}

func readSnapshot(r io.Reader) (*snapshot, error) {
	s := &snapReader{r: bufio.NewReaderSize(r, 1<<20), sum: crc32.New(castagnoli)}
	magic := make([]byte, len(snapMagic))
	if _, err := io.ReadFull(s.r, magic); err != nil || string(magic) != snapMagic && string(magic) != snapMagic1 {
		return nil, fmt.Errorf("%w: not a shmgr cluster snapshot (magic %q)", ErrBadSnapshot, magic)
	}
	s.sum.Write(magic)
	out := &snapshot{index: s.u("index")}
	n := s.u("region count")
	for i := uint64(0); i < n && s.err == nil; i++ {
		var rs snapRegion
		rs.ID = string(s.bytes("shm_id", maxSnapString))
		rs.Size = int64(s.u("size"))
		rs.Layout = region.Layout(s.u("layout"))
		rs.Durable = s.u("durable") == 1
		rs.MaxWrite = int64(s.u("max write"))
		rs.Nonce = string(s.bytes("nonce", maxSnapString))
		rs.Version = s.u("version")
		if rs.Size < 0 {
			s.err = fmt.Errorf("%w: region %q of size %d", ErrBadSnapshot, rs.ID, rs.Size)
			break
		}
		rs.Content = s.bytes("content", uint64(rs.Size))
		out.regions = append(out.regions, rs)
	}
	n = s.u("upload count")
	for i := uint64(0); i < n && s.err == nil; i++ {
		up := snapUpload{ID: s.u("upload id"), Last: s.u("upload index")}
		parts := s.u("piece count")
		for j := uint64(0); j < parts && s.err == nil; j++ {
			up.Parts = append(up.Parts, s.bytes("piece", maxChunk))
		}
		out.uploads = append(out.uploads, up)
	}
	n = s.u("request count")
	if n > maxRequests {
		s.err = fmt.Errorf("%w: %d requests, at most %d", ErrBadSnapshot, n, maxRequests)
	}
	for i := uint64(0); i < n && s.err == nil; i++ {
		r := snapRequest{ID: s.u("request id")}
		r.Result.Version = s.u("request version")
		code := s.u("request code")
		msg := s.bytes("request error", 1<<16)
		if code != 0 {
			r.Result.Err = &remoteError{kind: proto.Code(code).Err(), msg: string(msg)}
		}
		out.requests = append(out.requests, r)
	}
	if string(magic) == snapMagic {
		out.readLeases(s)
	}
	if s.err != nil {
		return nil, s.err
	}
	want := s.sum.Sum32()
	var tail [4]byte
	if _, err := io.ReadFull(s.r, tail[:]); err != nil {
		return nil, fmt.Errorf("%w: checksum: %w", ErrBadSnapshot, err)
	}
	if binary.LittleEndian.Uint32(tail[:]) != want {
		return nil, fmt.Errorf("%w: checksum does not match (damaged)", ErrBadSnapshot)
	}
	return out, nil
}

// readLeases reads what format 2 adds: log time, leases and tokens.
func (out *snapshot) readLeases(s *snapReader) {
	const maxInt = 1<<63 - 1
	now := s.u("log time")
	if now > maxInt {
		s.err = fmt.Errorf("%w: log time %d out of range", ErrBadSnapshot, now)
	}
	out.now = int64(now)
	n := s.u("lease count")
	for i := uint64(0); i < n && s.err == nil; i++ {
		l := snapLease{ID: string(s.bytes("lease shm_id", maxSnapString))}
		l.Token = s.u("lease token")
		d, f := s.u("lease deadline"), s.u("lease free time")
		if d > maxInt || f > maxInt {
			s.err = fmt.Errorf("%w: lease on %q: a time out of range", ErrBadSnapshot, l.ID)
		}
		l.Deadline, l.Free = int64(d), int64(f)
		out.leases = append(out.leases, l)
	}
	switch s.u("tokens flag") {
	case 0:
	case 1:
		if data := s.bytes("tokens file", MaxTokensFile); s.err == nil {
			out.tokens = tokens{data: data, sum: sha256.Sum256(data), set: true}
		}
	default:
		if s.err == nil {
			s.err = fmt.Errorf("%w: bad tokens flag", ErrBadSnapshot)
		}
	}
}

package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shmerr"
)

// Op is what a log entry does. The numbers are stored in the log and in
// snapshots of every node: append only, never reorder or reuse.
type Op uint8

// Operations. OpChunk and OpCommit are what Node.Apply turns a large
// write into; a caller never sends them.
const (
	// OpCreate creates region ID (Size, Layout, Durable, MaxWrite).
	OpCreate Op = 1
	// OpDelete deletes region ID.
	OpDelete Op = 2
	// OpWrite replaces region ID's content with Data.
	OpWrite Op = 3
	// OpWriteAt writes Data at offset Off of region ID's content.
	OpWriteAt Op = 4
	// OpChunk stages one piece of a large write (Upload, Seq, Data).
	OpChunk Op = 5
	// OpCommit applies the staged pieces of Upload as one OpWrite (or
	// OpWriteAt at Off, with WriteAt set) of Total bytes in Chunks pieces
	// whose CRC-32C is Sum.
	OpCommit Op = 6
)

// String returns the op's name, as logs and errors show it.
func (o Op) String() string {
	switch o {
	case OpCreate:
		return "create"
	case OpDelete:
		return "delete"
	case OpWrite:
		return "write"
	case OpWriteAt:
		return "write_at"
	case OpChunk:
		return "chunk"
	case OpCommit:
		return "commit"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// cmdFormat is the format of an encoded command (its first byte). A node
// refuses entries of a format it does not know rather than guess: an
// upgrade writes the new format only once every node reads it.
const cmdFormat = 1

// maxIDLen bounds the shm_id of a command (host.CheckID allows 64).
const maxIDLen = 64

// Command is one replicated operation: what a log entry holds.
type Command struct {
	// Op is the operation.
	Op Op
	// ID is the region's shm_id.
	ID string

	// Size, Layout, Durable and MaxWrite describe a region to create.
	Size     int64
	Layout   region.Layout
	Durable  bool
	MaxWrite int64

	// Off is the offset of OpWriteAt (and of an OpCommit with WriteAt).
	Off int64
	// Data is the content written (or one staged piece of it). Decode
	// returns it aliasing the entry.
	Data []byte
	// Conditional makes a write apply only if the region is at IfVersion
	// when the entry applies; otherwise it fails with a conflict.
	Conditional bool
	// IfVersion is the version a conditional write expects.
	IfVersion uint64

	// Upload names a chunked write (OpChunk, OpCommit).
	Upload uint64
	// Seq is a piece's place in its upload, from 0.
	Seq uint32
	// Chunks and Total are an upload's piece count and byte count; Sum
	// is the CRC-32C of its bytes; WriteAt says it is a range write.
	Chunks  uint32
	Total   int64
	Sum     uint32
	WriteAt bool

	// Request, if not 0, names the write for exactly-once retries: a
	// command whose Request was applied already (within the last
	// maxRequests requests) is answered with the first one's result and
	// not applied again, on whichever leader it reaches. The caller picks
	// it at random once per logical write and sends it with every retry.
	Request uint64
}

// Flag bits of an encoded command.
const (
	flagDurable = 1 << iota
	flagConditional
	flagWriteAt
)

// ErrBadCommand: a log entry or request does not decode as a command. It
// is a protocol error: the bytes came from a node of another version, or
// were damaged.
var ErrBadCommand = shmerr.New(shmerr.ErrProtocol, "bad cluster command")

// Append appends c's encoding to dst: format, op, flags, the shm_id
// (uvarint length and bytes), the eleven numbers as uvarints, then Data to
// the end of the entry.
func (c *Command) Append(dst []byte) []byte {
	var flags byte
	if c.Durable {
		flags |= flagDurable
	}
	if c.Conditional {
		flags |= flagConditional
	}
	if c.WriteAt {
		flags |= flagWriteAt
	}
	dst = append(dst, cmdFormat, byte(c.Op), flags)
	dst = binary.AppendUvarint(dst, uint64(len(c.ID)))
	dst = append(dst, c.ID...)
	for _, n := range [...]uint64{uint64(c.Size), uint64(c.Layout), uint64(c.MaxWrite), uint64(c.Off), c.IfVersion,
		c.Upload, uint64(c.Seq), uint64(c.Chunks), uint64(c.Total), uint64(c.Sum), c.Request} {
		dst = binary.AppendUvarint(dst, n)
	}
	return append(dst, c.Data...)
}

// Decode parses an encoded command. c.Data aliases b.
func Decode(b []byte) (Command, error) {
	var c Command
	if len(b) < 3 {
		return c, fmt.Errorf("%w: %d bytes, a command has at least 3", ErrBadCommand, len(b))
	}
	if b[0] != cmdFormat {
		return c, fmt.Errorf("%w: format %d, this node reads format %d (upgrade every node first)", ErrBadCommand, b[0], cmdFormat)
	}
	c.Op, c.Durable, c.Conditional, c.WriteAt = Op(b[1]), b[2]&flagDurable != 0, b[2]&flagConditional != 0, b[2]&flagWriteAt != 0
	if c.Op < OpCreate || c.Op > OpCommit {
		return c, fmt.Errorf("%w: unknown op %d", ErrBadCommand, b[1])
	}
	if b[2]&^(flagDurable|flagConditional|flagWriteAt) != 0 {
		return c, fmt.Errorf("%w: unknown flags 0x%02x", ErrBadCommand, b[2])
	}
	p := b[3:]
	next := func(what string) (uint64, error) {
		n, k := binary.Uvarint(p)
		if k <= 0 {
			return 0, fmt.Errorf("%w: %s: bad or missing varint", ErrBadCommand, what)
		}
		p = p[k:]
		return n, nil
	}
	l, err := next("shm_id length")
	if err != nil {
		return c, err
	}
	if l > maxIDLen || l > uint64(len(p)) {
		return c, fmt.Errorf("%w: shm_id of %d bytes (at most %d, %d left)", ErrBadCommand, l, maxIDLen, len(p))
	}
	c.ID, p = string(p[:l]), p[l:]
	var n [11]uint64
	for i, what := range [...]string{"size", "layout", "max write", "offset", "if version", "upload", "seq", "chunks", "total", "sum", "request"} {
		if n[i], err = next(what); err != nil {
			return c, err
		}
	}
	const maxInt = 1<<63 - 1
	if n[0] > maxInt || n[2] > maxInt || n[3] > maxInt || n[8] > maxInt || n[1] > 255 || n[6] > 1<<32-1 || n[7] > 1<<32-1 || n[9] > 1<<32-1 {
		return c, fmt.Errorf("%w: a number is out of range", ErrBadCommand)
	}
	c.Size, c.Layout, c.MaxWrite, c.Off, c.IfVersion = int64(n[0]), region.Layout(n[1]), int64(n[2]), int64(n[3]), n[4]
	c.Upload, c.Seq, c.Chunks, c.Total, c.Sum, c.Request = n[5], uint32(n[6]), uint32(n[7]), int64(n[8]), uint32(n[9]), n[10]
	if len(p) > 0 {
		c.Data = p
	}
	return c, nil
}

// check reports whether a caller's command is one Node.Apply takes.
func (c *Command) check() error {
	switch c.Op {
	case OpCreate, OpDelete, OpWrite, OpWriteAt:
	case OpChunk, OpCommit:
		return errors.New("cluster: chunk and commit entries are made by Node.Apply, not sent by callers")
	default:
		return fmt.Errorf("%w: unknown op %d", ErrBadCommand, c.Op)
	}
	if len(c.ID) > maxIDLen {
		return fmt.Errorf("%w: shm_id of %d bytes, at most %d", shmerr.ErrBadID, len(c.ID), maxIDLen)
	}
	if c.Off < 0 || c.Size < 0 || c.MaxWrite < 0 {
		return fmt.Errorf("%w: negative offset or size", shmerr.ErrOutOfRange)
	}
	return nil
}

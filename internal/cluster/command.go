package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

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
	// OpLock grants region ID's lease for Lease milliseconds of log time,
	// if no live lease holds it; the fencing token is the entry's index.
	OpLock Op = 7
	// OpRenew extends the lease with Token to Lease milliseconds from the
	// entry's log time, if it is still live.
	OpRenew Op = 8
	// OpUnlock ends the lease with Token, if it is still live.
	OpUnlock Op = 9
	// OpTokens replaces every node's access tokens file with Data.
	OpTokens Op = 10
)

// lastOp is the highest op this node knows.
const lastOp = OpTokens

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
	case OpLock:
		return "lock"
	case OpRenew:
		return "renew"
	case OpUnlock:
		return "unlock"
	case OpTokens:
		return "tokens"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// cmdFormat is the format of an encoded command (its first byte). A node
// refuses entries of a format it does not know rather than guess: an
// upgrade writes the new format only once every node reads it. Format 2
// adds Stamp, Lease, Token and Skew; a command with none of them is still
// written as format 1, so entries that format 1 can say stay readable by
// nodes that know only format 1.
const (
	cmdFormat1 = 1
	cmdFormat  = 2
)

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

	// Stamp is the leader's wall clock (Unix nanoseconds) when it
	// proposed the command: Node.Apply sets it on the leader, whatever a
	// caller or a forwarding follower put there. The FSM's log time is
	// the largest Stamp applied so far, so it never goes backwards.
	Stamp int64
	// Lease is the length of the lease OpLock grants or OpRenew extends,
	// in milliseconds (1 to MaxLease).
	Lease int64
	// Fenced makes a write (OpWrite, OpWriteAt, OpCommit) apply only
	// under the live lease with Token; Token also names the lease of
	// OpRenew and OpUnlock.
	Fenced bool
	Token  uint64
	// Skew is the clock-skew allowance in milliseconds that the leader
	// stamps on OpLock and OpRenew (Config.ClockSkew): the lease they
	// grant stays taken for Skew past its deadline. Carried in the entry
	// so that every replica frees the lease at the same log time.
	Skew int64
}

// MaxLease is the longest lease OpLock and OpRenew take, as on a single
// host.
const MaxLease = region.MaxLease

// Flag bits of an encoded command.
const (
	flagDurable = 1 << iota
	flagConditional
	flagWriteAt
	flagFenced
)

const knownFlags = flagDurable | flagConditional | flagWriteAt | flagFenced

// ErrBadCommand: a log entry or request does not decode as a command. It
// is a protocol error: the bytes came from a node of another version, or
// were damaged.
var ErrBadCommand = shmerr.New(shmerr.ErrProtocol, "bad cluster command")

// Append appends c's encoding to dst: format, op, flags, the shm_id
// (uvarint length and bytes), the eleven numbers as uvarints, in format 2
// four more (Stamp, Lease, Token, Skew), then Data to the end of the
// entry.
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
	if c.Fenced {
		flags |= flagFenced
	}
	format := byte(cmdFormat1)
	if c.v2() {
		format = cmdFormat
	}
	dst = append(dst, format, byte(c.Op), flags)
	dst = binary.AppendUvarint(dst, uint64(len(c.ID)))
	dst = append(dst, c.ID...)
	for _, n := range [...]uint64{uint64(c.Size), uint64(c.Layout), uint64(c.MaxWrite), uint64(c.Off), c.IfVersion,
		c.Upload, uint64(c.Seq), uint64(c.Chunks), uint64(c.Total), uint64(c.Sum), c.Request} {
		dst = binary.AppendUvarint(dst, n)
	}
	if format == cmdFormat {
		for _, n := range [...]uint64{uint64(c.Stamp), uint64(c.Lease), c.Token, uint64(c.Skew)} {
			dst = binary.AppendUvarint(dst, n)
		}
	}
	return append(dst, c.Data...)
}

// v2 reports whether c needs format 2: a field format 1 lacks, or an op
// that format 1 readers do not know.
func (c *Command) v2() bool {
	return c.Stamp != 0 || c.Lease != 0 || c.Token != 0 || c.Skew != 0 || c.Fenced || c.Op > OpCommit
}

// Decode parses an encoded command. c.Data aliases b.
func Decode(b []byte) (Command, error) {
	var c Command
	if len(b) < 3 {
		return c, fmt.Errorf("%w: %d bytes, a command has at least 3", ErrBadCommand, len(b))
	}
	format := b[0]
	if format != cmdFormat1 && format != cmdFormat {
		return c, fmt.Errorf("%w: format %d, this node reads formats %d and %d (upgrade every node first)", ErrBadCommand, b[0], cmdFormat1, cmdFormat)
	}
	c.Op, c.Durable, c.Conditional, c.WriteAt, c.Fenced = Op(b[1]), b[2]&flagDurable != 0, b[2]&flagConditional != 0, b[2]&flagWriteAt != 0, b[2]&flagFenced != 0
	if c.Op < OpCreate || c.Op > lastOp || format == cmdFormat1 && c.Op > OpCommit {
		return c, fmt.Errorf("%w: unknown op %d in format %d", ErrBadCommand, b[1], format)
	}
	if b[2]&^knownFlags != 0 || format == cmdFormat1 && c.Fenced {
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
	if format == cmdFormat {
		var m [4]uint64
		for i, what := range [...]string{"stamp", "lease", "token", "skew"} {
			if m[i], err = next(what); err != nil {
				return c, err
			}
		}
		if m[0] > maxInt || m[1] > maxInt || m[3] > maxInt {
			return c, fmt.Errorf("%w: a number is out of range", ErrBadCommand)
		}
		c.Stamp, c.Lease, c.Token, c.Skew = int64(m[0]), int64(m[1]), m[2], int64(m[3])
	}
	if len(p) > 0 {
		c.Data = p
	}
	return c, nil
}

// check reports whether a caller's command is one Node.Apply takes.
func (c *Command) check() error {
	switch c.Op {
	case OpCreate, OpDelete, OpWrite, OpWriteAt, OpUnlock:
	case OpLock, OpRenew:
		if c.Lease < 1 || c.Lease > MaxLease.Milliseconds() {
			return fmt.Errorf("%w: a lease of %d ms: it must be 1 to %d ms", shmerr.ErrLimit, c.Lease, MaxLease.Milliseconds())
		}
	case OpTokens:
		if len(c.Data) > MaxTokensFile {
			return fmt.Errorf("%w: a tokens file of %d bytes, at most %d", shmerr.ErrTooLarge, len(c.Data), MaxTokensFile)
		}
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

// stamp sets what the leader adds to a command it proposes: its wall
// clock, and its clock-skew allowance on the lease commands.
func (c *Command) stamp(now time.Time, skew time.Duration) {
	if c.Op == OpChunk {
		return
	}
	c.Stamp = now.UnixNano()
	if c.Op == OpLock || c.Op == OpRenew {
		if skew <= 0 {
			skew = DefaultClockSkew
		}
		c.Skew = skew.Milliseconds()
	}
}

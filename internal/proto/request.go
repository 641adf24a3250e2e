package proto

// This file holds the request types: Cmd, Request and the Limits a Parser
// enforces. parser.go frames requests, commands.go says what each verb
// takes, options.go parses key=value options, and tokens.go the numbers and
// ids inside them.

import "math"

// Cmd identifies a request's command.
type Cmd uint8

// Commands. CmdNone is the zero value: no request (the input was
// incomplete, an empty line, or bytes being discarded after an error).
const (
	CmdNone Cmd = iota
	CmdRead
	CmdWrite
	CmdPing
	CmdQuit
	CmdUse
	CmdGet
	CmdSet
	CmdInfo
	CmdList
	CmdCreate
	CmdDelete
	CmdWatch
	CmdUnwatch
	CmdAuth
	CmdLock
	CmdRenew
	CmdUnlock
	CmdCluster

	// numCmds must stay last. A new command is added here, then as a row
	// of the commands table (commands.go).
	numCmds
)

// Request is one parsed request.
//
// IMPORTANT: its byte slices alias the buffer passed to Parser.Next and are
// valid only until that buffer is modified. Copy what must outlive it.
type Request struct {
	// Cmd is the command.
	Cmd Cmd
	// ID is the region id for USE, GET, SET, INFO with an id, CREATE,
	// DELETE, WATCH, UNWATCH, LOCK, RENEW and UNLOCK, and the token for
	// AUTH. It is nil for INFO without an id.
	ID []byte
	// Payload is the data of WRITE and SET (empty, not nil, for length 0).
	Payload []byte
	// HasRange is set for GET with an offset and a length.
	HasRange bool
	// Offset is the GET range offset, or the SET at= offset.
	Offset int64
	// Length is the GET range length.
	Length int64
	// HasAt is set for SET with at=.
	HasAt bool
	// HasIfVer is set for SET with ifver=.
	HasIfVer bool
	// IfVersion is the SET ifver= version.
	IfVersion uint64
	// ClientID is the SET cid= client id (nil when absent).
	ClientID []byte
	// Seq is the SET seq= sequence number (set together with ClientID).
	Seq uint64
	// HasFrom is set for WATCH with from=.
	HasFrom bool
	// Delta is set for WATCH delta=1: the watcher takes DELTA frames.
	Delta bool
	// From is the WATCH from= version.
	From uint64
	// Size is the CREATE size= size (0 when absent).
	Size int64
	// Layout is the CREATE layout= value: "utf8" or "raw", nil when absent.
	Layout []byte
	// Durable is set for CREATE durable=1.
	Durable bool
	// MaxWrite is the CREATE max_write= value: the largest write the
	// region takes (raw only), > 0; 0 when absent (the whole region).
	MaxWrite int64
	// HasLease is set for LOCK and RENEW with lease=.
	HasLease bool
	// Lease is the LOCK or RENEW lease= length in milliseconds, > 0; 0
	// when absent, which means the host's default.
	Lease int64
	// HasWait is set for LOCK with wait=.
	HasWait bool
	// Wait is the LOCK wait= time in milliseconds: how long to wait for
	// the lock (0: try once). Without HasWait the host's lock timeout
	// applies.
	Wait int64
	// Token is the fencing token of RENEW and UNLOCK.
	Token uint64
	// HasFence is set for SET with fence=.
	HasFence bool
	// Fence is the SET fence= token: the write is made under the lock this
	// connection holds with that token.
	Fence uint64
	// Cluster is what a CLUSTER request asks for; its node name (ADD,
	// REMOVE, LEADER) is in ID.
	Cluster ClusterOp
	// Addr is the Raft address of CLUSTER ADD.
	Addr []byte
	// Fingerprint is the certificate fingerprint of CLUSTER ADD, nil when
	// absent.
	Fingerprint []byte
	// Consistent is set for GET and READ with the trailing word
	// "consistent": the read must be linearizable (a cluster node first
	// confirms with the leader and applies at least as far as it has).
	Consistent bool
}

// ClusterOp is the subcommand of a CLUSTER request.
type ClusterOp uint8

// CLUSTER subcommands.
const (
	// ClusterNone: not a CLUSTER request.
	ClusterNone ClusterOp = iota
	// ClusterStatus: every node's role and indexes (CLUSTER STATUS).
	ClusterStatus
	// ClusterAdd adds node ID at Addr (CLUSTER ADD <name> <addr> [<fp>]).
	ClusterAdd
	// ClusterRemove removes node ID (CLUSTER REMOVE <name>).
	ClusterRemove
	// ClusterLeader hands leadership to node ID (CLUSTER LEADER <name>).
	ClusterLeader
)

// String returns the subcommand's word, such as "ADD".
func (o ClusterOp) String() string {
	switch o {
	case ClusterStatus:
		return "STATUS"
	case ClusterAdd:
		return "ADD"
	case ClusterRemove:
		return "REMOVE"
	case ClusterLeader:
		return "LEADER"
	}
	return "NONE"
}

// Limits bound what a Parser accepts.
type Limits struct {
	// MaxLine is the longest command line accepted, in bytes, counting the
	// newline. Default 4096.
	MaxLine int
	// MaxPayload is the largest WRITE or SET payload accepted, in bytes.
	// Default 1 GiB + 64 KiB.
	MaxPayload int64
}

// Default limits.
const (
	// DefaultMaxLine is the default Limits.MaxLine.
	DefaultMaxLine = 4096
	// DefaultMaxPayload is the default Limits.MaxPayload.
	DefaultMaxPayload = 1<<30 + 64<<10
)

// DefaultLimits returns MaxLine 4096 and MaxPayload 1 GiB + 64 KiB.
func DefaultLimits() Limits {
	return Limits{MaxLine: DefaultMaxLine, MaxPayload: DefaultMaxPayload}
}

// normalize replaces fields that are zero or negative with their defaults
// and keeps line + payload + 2 within an int, so slicing cannot overflow.
func (l Limits) normalize() Limits {
	if l.MaxLine <= 0 {
		l.MaxLine = DefaultMaxLine
	}
	if l.MaxPayload <= 0 {
		l.MaxPayload = DefaultMaxPayload
	}
	if l.MaxLine > math.MaxInt/2 {
		l.MaxLine = math.MaxInt / 2
	}
	if m := int64(math.MaxInt/2 - 2); l.MaxPayload > m {
		l.MaxPayload = m
	}
	return l
}

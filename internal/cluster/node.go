// Package cluster replicates a host's regions across machines on Raft
// (hashicorp/raft): every write is an entry of one log, committed on a
// majority before it is acknowledged, and applied on every node straight
// into that node's local region through the region's own write path
// (undo log, seqlock, watch word). The replicated state is the shared
// memory itself, so a region's version is the same on every node and a
// mapped reader on any of them reads it zero-copy. docs/CLUSTER.md has the
// design and the alternatives considered.
package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"

	"github.com/shmgr/shmgr/internal/certs"
	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/shmerr"
)

// DefaultChunkSize is the largest write that travels as one entry; a
// larger one is cut into entries of this size plus a commit entry. Raft
// commits 1 MiB entries quickly and pipelines them, while one entry of
// tens of MiB outlasts the leader's lease and fails.
const DefaultChunkSize = 1 << 20

// maxChunk bounds a piece (Config.ChunkSize, and pieces read back from a
// snapshot).
const maxChunk = 16 << 20

// Errors of a node, matched with errors.Is.
var (
	// ErrNotLeader: the node is not the leader, so it cannot commit; the
	// error names the leader when the node knows it.
	ErrNotLeader = shmerr.New(shmerr.ErrUnavailable, "not the cluster leader")
	// ErrNotEmpty: a node starting a new cluster found regions already on
	// its host, which the other nodes would not have.
	ErrNotEmpty = errors.New("host already holds regions")
)

// Config configures a Node. Zero durations and counts take the defaults
// named on each field.
type Config struct {
	// ID names the node in the cluster (a key of Peers). Required.
	ID string
	// Bind is the host:port Raft listens on and other nodes reach it at
	// (Peers[ID]). Required.
	Bind string
	// Peers maps every voter's ID to its Raft address, this node's
	// included. Nodes started with the same Peers and no state form the
	// cluster; a node with state rejoins from DataDir and ignores Peers.
	Peers map[string]string
	// DataDir holds the node's log, stable store and snapshots. Required;
	// separate from the host's data directory.
	DataDir string
	// Host is the local host the log applies into. Required. The node does
	// not close it.
	Host *host.Host
	// TLS, if set, secures the Raft port with mutually authenticated TLS
	// (see TLS). Without it the port is plain TCP and anyone who reaches
	// it can join: loopback or a trusted network only.
	TLS *TLS
	// Logf logs node and Raft events. Default: discard.
	Logf func(format string, args ...any)
	// Alarmf logs what an operator must act on: a region written outside
	// the log, a replica that diverged. Default: Logf.
	Alarmf func(format string, args ...any)
	// ChunkSize: see DefaultChunkSize (at most 16 MiB).
	ChunkSize int
	// HeartbeatTimeout and ElectionTimeout (default 1 s each) and
	// LeaderLeaseTimeout (default 500 ms) are Raft's.
	HeartbeatTimeout, ElectionTimeout, LeaderLeaseTimeout time.Duration
	// CommitTimeout is how long a leader with nothing new to send waits
	// before telling followers the commit index anyway (Raft's, default
	// 1 ms here, Raft's own default being 50 ms). A follower applies an
	// entry only once it learns it committed, so this bounds the
	// replication lag of the last write of a burst; the price is an empty
	// AppendEntries to each follower every 1-2 ms while idle.
	CommitTimeout time.Duration
	// SnapshotThreshold is how many entries since the last snapshot start
	// a new one (default 8192); TrailingLogs how many entries a snapshot
	// leaves in the log for followers that fell behind (default 10240);
	// SnapshotInterval how often the threshold is checked (default 2 min).
	SnapshotThreshold, TrailingLogs uint64
	SnapshotInterval                time.Duration
	// LogSegmentSize is the size of the log's segment files (default 64
	// MiB). The log frees space a whole segment at a time, and the segment
	// being written still serves entries a snapshot compacted away.
	LogSegmentSize int
	// StaleUploads is how many entries after its last piece a chunked
	// write that never got its commit (its leader died) is dropped
	// (default 65536).
	StaleUploads uint64
	// ClockSkew is how long past its deadline a lease stays taken
	// (default DefaultClockSkew; see docs/CLUSTER.md, "Leases and tokens").
	ClockSkew time.Duration
}

// Node is one member of a cluster: a Raft instance whose state machine is
// the local host.
type Node struct {
	cfg   Config
	raft  *raft.Raft
	fsm   *fsm
	trans *raft.NetworkTransport
	mux   *mux
	logs  *wal.WAL
	meta  *metadb.BoltMetaDB // the log's; closed by closeLogs
	snaps *raft.FileSnapshotStore
	// raftRef is raft for the TLS handshakes, which begin before Start
	// has set raft; static are Config.TLS's pins (see Node.accepts).
	raftRef atomic.Pointer[raft.Raft]
	static  map[string]bool
	watch   watchers  // goroutines run for the node's owner (Go)
	dog     *watchdog // regions written outside the log
}

type logWriter func(string, ...any)

func (w logWriter) Write(p []byte) (int, error) {
	w("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// Start starts a node: it opens the node's store in DataDir, starts Raft
// on Bind and, if the store is empty, bootstraps the cluster from Peers.
// A node with state replays its log onto the host (from its last snapshot,
// or from the first entry onto an emptied host).
func Start(cfg Config) (*Node, error) {
	if cfg.ID == "" || cfg.Bind == "" || cfg.DataDir == "" || cfg.Host == nil {
		return nil, errors.New("cluster: a node needs an ID, a bind address, a data directory and a host")
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.Alarmf == nil {
		cfg.Alarmf = cfg.Logf
	}
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = DefaultChunkSize
	}
	if cfg.ChunkSize < 1 || cfg.ChunkSize > maxChunk {
		return nil, fmt.Errorf("cluster: chunk size %d: it must be 1 to %d bytes", cfg.ChunkSize, maxChunk)
	}
	if cfg.StaleUploads == 0 {
		cfg.StaleUploads = 1 << 16
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft " + cfg.ID, Output: logWriter(cfg.Logf), Level: hclog.Info})
	setDur(&rc.HeartbeatTimeout, cfg.HeartbeatTimeout)
	setDur(&rc.ElectionTimeout, cfg.ElectionTimeout)
	setDur(&rc.LeaderLeaseTimeout, cfg.LeaderLeaseTimeout)
	rc.CommitTimeout = time.Millisecond
	setDur(&rc.CommitTimeout, cfg.CommitTimeout)
	setDur(&rc.SnapshotInterval, cfg.SnapshotInterval)
	if cfg.SnapshotThreshold != 0 {
		rc.SnapshotThreshold = cfg.SnapshotThreshold
	}
	if cfg.TrailingLogs != 0 {
		rc.TrailingLogs = cfg.TrailingLogs
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "wal"), 0o700); err != nil {
		return nil, fmt.Errorf("cluster: data directory: %w", err)
	}
	n := &Node{cfg: cfg, fsm: newFSM(cfg.Host, cfg.Logf, cfg.StaleUploads)}
	n.fsm.alarmf = cfg.Alarmf
	var err error
	if cfg.LogSegmentSize == 0 {
		cfg.LogSegmentSize = wal.DefaultSegmentSize
	}
	if n.logs, n.meta, err = openLog(filepath.Join(cfg.DataDir, "wal"), cfg.LogSegmentSize, rc.Logger.Named("wal")); err != nil {
		return nil, err
	}
	if n.snaps, err = raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, rc.Logger.Named("snapshots")); err != nil {
		n.closeLogs()
		return nil, fmt.Errorf("cluster: snapshots: %w", err)
	}
	if err := n.prepare(); err != nil {
		n.closeLogs()
		return nil, err
	}
	var serverTLS *tls.Config
	var clientTLS func(string) *tls.Config
	if cfg.TLS != nil {
		if n.static, err = cfg.TLS.staticPins(); err != nil {
			n.closeLogs()
			return nil, err
		}
		if serverTLS, clientTLS, err = cfg.TLS.configs(n.accepts); err != nil {
			n.closeLogs()
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", cfg.Bind)
	if err != nil {
		n.closeLogs()
		return nil, fmt.Errorf("cluster: listen on %s: %w", cfg.Bind, err)
	}
	if serverTLS != nil {
		ln = tls.NewListener(ln, serverTLS)
	}
	n.mux = newMux(ln, clientTLS, n.serveForward)
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: n.mux, MaxPool: 3, Timeout: 10 * time.Second,
		Logger: rc.Logger.Named("transport")})
	existing, err := raft.HasExistingState(n.logs, n.logs, n.snaps)
	if err != nil {
		n.close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if n.raft, err = raft.NewRaft(rc, n.fsm, n.logs, n.logs, n.snaps, n.trans); err != nil {
		n.close()
		return nil, fmt.Errorf("cluster: start raft: %w", err)
	}
	n.raftRef.Store(n.raft)
	if !existing && len(cfg.Peers) > 0 {
		var conf raft.Configuration
		for _, id := range sortedKeys(cfg.Peers) {
			addr := cfg.Peers[id]
			if cfg.TLS != nil && cfg.TLS.Fingerprints[id] != "" {
				fp, _ := certs.NormalizeFingerprint(cfg.TLS.Fingerprints[id]) // checked by staticPins
				addr = pinnedAddress(addr, fp)
			}
			conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(addr)})
		}
		if err := n.raft.BootstrapCluster(conf).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			n.Close()
			return nil, fmt.Errorf("cluster: bootstrap: %w", err)
		}
	}
	n.dog = startWatchdog(n.fsm, cfg.Host, cfg.Alarmf)
	return n, nil
}

// prepare makes the host match the start of what Raft will replay: a new
// node needs an empty host; a node with a log and no snapshot replays from
// the first entry, so its host is emptied; a node with a snapshot gets it
// through fsm.Restore.
func (n *Node) prepare() error {
	existing, err := raft.HasExistingState(n.logs, n.logs, n.snaps)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	if !existing {
		def := n.cfg.Host.DefaultID()
		for _, in := range n.cfg.Host.List() {
			if in.ShmID != def || in.Version != 0 {
				return fmt.Errorf("cluster: %w (region %q at version %d): a new node starts from a host with only an unwritten default region; use a fresh host data directory", ErrNotEmpty, in.ShmID, in.Version)
			}
		}
		n.fsm.known[def] = 0
		return nil
	}
	list, err := n.snaps.List()
	if err != nil {
		return fmt.Errorf("cluster: snapshots: %w", err)
	}
	if len(list) == 0 {
		return n.fsm.reset()
	}
	return nil
}

func setDur(dst *time.Duration, v time.Duration) {
	if v != 0 {
		*dst = v
	}
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Apply commits cmd through the log and returns the region's version
// after it, once a majority has it and this node applied it. On a
// follower it is forwarded to the leader, which answers once it applied
// the entry, with the entry's log index; the follower then waits until it
// has applied that index too, so that a read of this node's regions after
// Apply returns sees the write (read your writes, on any node). If that
// wait fails (ctx ends first), the write is committed all the same: Apply
// returns its version and logs that this node is behind. A write larger
// than the chunk size goes as pieces and one commit entry, so that every
// node applies all of it or nothing. An error of kind ErrUnknownOutcome
// means the leader was lost while committing, or its answer was: the
// entry may yet commit. ErrNotLeader (of kind ErrUnavailable) means no
// leader could take it: try again. ctx bounds the wait to enqueue the
// entry, and the forwarding.
func (n *Node) Apply(ctx context.Context, cmd Command) (uint64, error) {
	if err := cmd.check(); err != nil {
		return 0, err
	}
	if n.raft.State() == raft.Leader {
		v, _, err := n.applyLocal(ctx, cmd)
		return v, err
	}
	v, idx, err := n.forward(ctx, fwdWrite, cmd.Append(nil))
	if idx > 0 {
		// Even a write that failed (a version conflict) was an entry:
		// a read after it must see the state it was judged against.
		if werr := n.waitApplied(ctx, idx); werr != nil {
			n.cfg.Logf("cluster: %s %q committed at index %d, but this node has not applied it yet: %v", cmd.Op, cmd.ID, idx, werr)
		}
	}
	return v, err
}

// applyLocal is Apply on this node's Raft, leader or not; it returns the
// log index of the entry that carried cmd too (its commit entry, for a
// chunked write), or 0 if it did not reach the log.
func (n *Node) applyLocal(ctx context.Context, cmd Command) (v, idx uint64, err error) {
	if err := cmd.check(); err != nil {
		return 0, 0, err
	}
	cmd.stamp(time.Now(), n.cfg.ClockSkew) // the leader's clock, even for a forwarded command
	if (cmd.Op == OpWrite || cmd.Op == OpWriteAt) && len(cmd.Data) > n.cfg.ChunkSize {
		return n.applyChunked(ctx, cmd)
	}
	return n.commit(n.raft.Apply(cmd.Append(nil), timeout(ctx)))
}

func timeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return 0
}

// commit waits for an entry and returns its result and its log index.
func (n *Node) commit(f raft.ApplyFuture) (v, idx uint64, err error) {
	if err := f.Error(); err != nil {
		return 0, 0, n.raftErr(err)
	}
	res, ok := f.Response().(*Result)
	if !ok {
		return 0, f.Index(), fmt.Errorf("%w: cluster: the entry applied with no result", shmerr.ErrInternal)
	}
	return res.Version, f.Index(), res.Err
}

func (n *Node) raftErr(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		if _, id := n.raft.LeaderWithID(); id != "" {
			return fmt.Errorf("%w: the leader is %s", ErrNotLeader, id)
		}
		return fmt.Errorf("%w: no leader is known (an election is under way)", ErrNotLeader)
	case errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("%w: %v (the write may still commit)", shmerr.ErrUnknownOutcome, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		// An entry handed over before the node stopped may still commit.
		return fmt.Errorf("%w: cluster node stopped: %v", shmerr.ErrUnknownOutcome, err)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: cluster: %v", shmerr.ErrUnavailable, err)
	}
	return fmt.Errorf("cluster: %w", err)
}

// applyChunked sends a large write as pieces and a commit, pipelined:
// every entry is handed to Raft before the first is waited for.
func (n *Node) applyChunked(ctx context.Context, cmd Command) (v, idx uint64, err error) {
	var id [8]byte
	rand.Read(id[:])
	up := binary.LittleEndian.Uint64(id[:])
	size := n.cfg.ChunkSize
	chunks := (len(cmd.Data) + size - 1) / size
	futures := make([]raft.ApplyFuture, 0, chunks)
	var buf []byte
	for i := 0; i < chunks; i++ {
		piece := Command{Op: OpChunk, ID: cmd.ID, Upload: up, Seq: uint32(i), Data: cmd.Data[i*size : min((i+1)*size, len(cmd.Data))]}
		buf = piece.Append(make([]byte, 0, len(piece.Data)+64))
		futures = append(futures, n.raft.Apply(buf, timeout(ctx)))
	}
	c := Command{Op: OpCommit, ID: cmd.ID, Upload: up, Chunks: uint32(chunks), Total: int64(len(cmd.Data)),
		Sum: crc32.Checksum(cmd.Data, castagnoli), WriteAt: cmd.Op == OpWriteAt, Off: cmd.Off, Conditional: cmd.Conditional, IfVersion: cmd.IfVersion,
		Request: cmd.Request, Stamp: cmd.Stamp, Fenced: cmd.Fenced, Token: cmd.Token}
	last := n.raft.Apply(c.Append(nil), timeout(ctx))
	var first error
	for _, f := range futures {
		if err := f.Error(); err != nil && first == nil {
			first = n.raftErr(err)
		} else if err == nil {
			if res, _ := f.Response().(*Result); res != nil && res.Err != nil && first == nil {
				first = res.Err
			}
		}
	}
	v, idx, err = n.commit(last)
	if err == nil && first != nil {
		// Cannot be: a commit that applied found every piece.
		err = fmt.Errorf("%w: cluster: a piece failed (%v) yet its commit applied", shmerr.ErrInternal, first)
	}
	if err != nil && first != nil && !errors.Is(err, first) {
		err = fmt.Errorf("%w (first failed piece: %v)", err, first)
	}
	return v, idx, err
}

// readIndex confirms this node leads and returns an index that covers
// every write acknowledged so far (its last index: entries of its own log
// past the commit index either commit or the node stops leading).
func (n *Node) readIndex() (uint64, error) {
	if n.raft.State() != raft.Leader {
		return 0, n.raftErr(raft.ErrNotLeader)
	}
	idx := n.raft.LastIndex()
	if err := n.raft.VerifyLeader().Error(); err != nil {
		return 0, n.raftErr(err)
	}
	return idx, nil
}

// Barrier returns once this node has applied every write acknowledged
// anywhere before it was called: a read of the local regions after it is
// linearizable. The leader confirms it still leads (a heartbeat round to a
// majority); a follower asks the leader for that index, then waits until
// it has applied as far. A node cut off from the leader fails with
// ErrNotLeader (of kind ErrUnavailable) rather than answer stale.
func (n *Node) Barrier(ctx context.Context) error {
	var idx uint64
	var err error
	if n.raft.State() == raft.Leader {
		idx, err = n.readIndex()
	} else {
		idx, _, err = n.forward(ctx, fwdRead, nil)
	}
	if err != nil {
		return err
	}
	return n.waitApplied(ctx, idx)
}

// waitApplied returns once this node's host holds every entry up to
// index (see settled). It wakes on each entry the FSM applies, and polls
// while the gap is entries the FSM never sees, which wake nothing.
func (n *Node) waitApplied(ctx context.Context, index uint64) error {
	var tick *time.Ticker
	for {
		ch := n.fsm.wakeCh()
		a := n.settled()
		if a >= index {
			if tick != nil {
				tick.Stop()
			}
			return nil
		}
		if tick == nil {
			tick = time.NewTicker(2 * time.Millisecond)
			defer tick.Stop()
		}
		select {
		case <-ch:
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting to apply index %d (at %d): %w", shmerr.ErrUnavailable, index, a, ctx.Err())
		}
	}
}

// settled is the index up to which this node's host holds every entry:
// the FSM's own applied index, carried on over the entries Raft never
// hands the FSM (the no-op a leader begins its term with, configuration
// changes) once Raft has applied them. Without that, a barrier right
// after a leader change waited for the next write: the new leader's last
// index is its no-op, which the FSM never reaches.
func (n *Node) settled() uint64 {
	a := n.fsm.applied.Load()
	for ra := n.raft.AppliedIndex(); a < ra; a++ {
		var l raft.Log
		if err := n.logs.GetLog(a+1, &l); err != nil || l.Type == raft.LogCommand {
			break
		}
	}
	return a
}

// Member is one server of the cluster's configuration.
type Member struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Voter   bool   `json:"voter"`
	// Fingerprint is the SHA-256 fingerprint the configuration pins for
	// the member's certificate (lower-case hex), "" without TLS.
	Fingerprint string `json:"fingerprint,omitempty"`
}

// Members returns the cluster's configuration as this node knows it.
func (n *Node) Members() ([]Member, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, n.raftErr(err)
	}
	var out []Member
	for _, s := range f.Configuration().Servers {
		addr, fp := splitPin(string(s.Address))
		out = append(out, Member{ID: string(s.ID), Address: addr, Voter: s.Suffrage == raft.Voter, Fingerprint: fp})
	}
	return out, nil
}

// IsLeader reports whether this node is the leader now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the leader's ID and Raft address, empty when none is
// known.
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	addr, _ = splitPin(string(a))
	return string(i), addr
}

// State returns the node's Raft role: "Leader", "Follower", "Candidate"
// or "Shutdown".
func (n *Node) State() string { return n.raft.State().String() }

// AppliedIndex returns the index of the last entry applied to the host
// (by itself, or in a restored snapshot).
func (n *Node) AppliedIndex() uint64 { return n.fsm.applied.Load() }

// Status is a node's view of the cluster, for status commands and tests.
type Status struct {
	// ID and State are this node's ID and Raft role.
	ID    string `json:"id"`
	State string `json:"state"`
	// Leader is the leader's ID, empty when none is known.
	Leader string `json:"leader"`
	// Term, LastIndex, CommitIndex and AppliedIndex are Raft's.
	Term         uint64 `json:"term"`
	LastIndex    uint64 `json:"last_index"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	// RaftApplied is Raft's own applied index, which counts the entries
	// the state machine never sees (configuration, a new leader's no-op)
	// too: CommitIndex - RaftApplied is how far this node lags.
	RaftApplied uint64 `json:"raft_applied_index"`
	// Restores counts snapshots this process restored.
	Restores uint64 `json:"restores"`
	// Diverged counts regions found written behind the log's back.
	Diverged uint64 `json:"diverged"`
	// OutsideWrites counts changes to a region's shared memory (its
	// version or its bytes) that the watchdog found with no entry applied.
	OutsideWrites uint64 `json:"outside_writes"`
	// Staged and StagedBytes are the chunked writes awaiting their commit.
	Staged      int   `json:"staged"`
	StagedBytes int64 `json:"staged_bytes"`
}

// Status returns the node's status now.
func (n *Node) Status() Status {
	leader, _ := n.Leader()
	st := Status{ID: n.cfg.ID, State: n.State(), Leader: leader, Term: n.raft.CurrentTerm(), LastIndex: n.raft.LastIndex(),
		CommitIndex: n.raft.CommitIndex(), AppliedIndex: n.AppliedIndex(), RaftApplied: n.raft.AppliedIndex(), Restores: n.fsm.restores.Load(),
		Diverged: n.fsm.diverged.Load(), OutsideWrites: n.dog.count()}
	st.Staged, st.StagedBytes = n.fsm.staged()
	return st
}

// Snapshot takes a snapshot now and compacts the log behind it.
func (n *Node) Snapshot() error {
	if err := n.raft.Snapshot().Error(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return fmt.Errorf("cluster: snapshot: %w", err)
	}
	return nil
}

// Close stops the node: it snapshots (so that a restart replays nothing
// it applied already), leaves Raft and closes its store. The host stays
// open: its owner closes it.
func (n *Node) Close() error {
	n.watch.close()
	n.dog.close()
	snap := n.Snapshot()
	err := n.raft.Shutdown().Error()
	return errors.Join(snap, err, n.close())
}

func (n *Node) close() error {
	var err error
	if n.trans != nil {
		err = n.trans.Close() // closes the mux too
	}
	if n.mux != nil {
		n.mux.Close()
	}
	return errors.Join(err, n.closeLogs())
}

// closeLogs closes the log and its metadata database. raft-wal's Close
// leaves the latter open, and with it the flock on its file: a node
// started again in the same process would wait for that lock for good.
func (n *Node) closeLogs() error {
	return errors.Join(n.logs.Close(), n.meta.Close())
}

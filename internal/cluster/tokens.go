package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"sync"

	"github.com/shmgr/shmgr/internal/atomicfile"
	"github.com/shmgr/shmgr/internal/auth"
)

// MaxTokensFile bounds the access tokens file one OpTokens carries: well
// under the chunk size, so that it is always one entry.
const MaxTokensFile = 1 << 20

// tokens is the access tokens file the log holds: the last OpTokens
// applied (or restored from a snapshot).
type tokens struct {
	data []byte
	sum  [sha256.Size]byte
	set  bool
}

// setTokens applies an OpTokens: it writes data atomically as the host's
// tokens file (auth.FileName in the host's data directory; the host's
// token store reads it again on its next check), unless the file holds
// it already, then records it. The file is written before the record
// changes, so that a watcher that sees the record unchanged around its
// read of the file knows the file it read is not one the log just wrote
// (see the daemon's token watcher). A file that cannot be written is
// logged: this host then accepts other tokens than the cluster's.
func (f *fsm) setTokens(data []byte) {
	data = bytes.Clone(data)
	if dir := f.h.DataDir(); dir != "" {
		if old, err := os.ReadFile(filepath.Join(dir, auth.FileName)); err != nil || !bytes.Equal(old, data) {
			if err := atomicfile.Write(dir, auth.FileName, data, 0o600); err != nil {
				f.logf("cluster: TOKENS NOT APPLIED: write the access tokens from the log to %s: %v; this host accepts other tokens than the cluster's until the next change", dir, err)
			}
		}
	}
	f.mu.Lock()
	f.tokens = tokens{data: data, sum: sha256.Sum256(data), set: true}
	f.mu.Unlock()
}

// Tokens returns the access tokens file the log holds, and its SHA-256;
// ok is false if no node has proposed one yet. The bytes are shared: do
// not change them.
func (n *Node) Tokens() (data []byte, sum [sha256.Size]byte, ok bool) {
	n.fsm.mu.Lock()
	defer n.fsm.mu.Unlock()
	t := n.fsm.tokens
	return t.data, t.sum, t.set
}

// ProposeTokens commits data (a whole tokens file, at most
// MaxTokensFile bytes) through the log: every node then writes it as its
// host's tokens file, so every host of the cluster accepts the same
// tokens.
func (n *Node) ProposeTokens(ctx context.Context, data []byte) error {
	_, err := n.Apply(ctx, Command{Op: OpTokens, Data: data})
	return err
}

// watchers are the goroutines a node runs for its owner (Node.Go).
type watchers struct {
	// mu protects stop and closed.
	mu     sync.Mutex
	stop   chan struct{}
	closed bool
	wg     sync.WaitGroup
}

// Go runs fn on a goroutine the node owns, until the node closes: Close
// closes stop and waits for fn to return before it stops Raft (so fn may
// Apply until then). After Close, Go runs nothing. The daemon's tokens
// watcher runs this way, so that it lives exactly as long as the node.
func (n *Node) Go(fn func(stop <-chan struct{})) {
	w := &n.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	if w.stop == nil {
		w.stop = make(chan struct{})
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		fn(w.stop)
	}()
}

// close stops the watchers and waits for them.
func (w *watchers) close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		if w.stop != nil {
			close(w.stop)
		}
	}
	w.mu.Unlock()
	w.wg.Wait()
}

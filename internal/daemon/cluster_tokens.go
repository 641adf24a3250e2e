package daemon

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/shmgr/shmgr/internal/auth"
	"github.com/shmgr/shmgr/internal/cluster"
)

// tokenWatch is how often a cluster node looks at its tokens file for a
// change to hand to the other nodes.
const tokenWatch = 500 * time.Millisecond

// tokenWatcher returns the loop that keeps the cluster's access tokens
// one (tokenSync), a round every tokenWatch. It runs on the node
// (Node.Go) until the node closes.
func tokenWatcher(n *cluster.Node, dir string, log *slog.Logger) func(stop <-chan struct{}) {
	s := &tokenSync{n: n, path: filepath.Join(dir, auth.FileName), log: log}
	return func(stop <-chan struct{}) {
		t := time.NewTicker(tokenWatch)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			s.step()
		}
	}
}

// tokenSync hands a cluster node's changed tokens file to the cluster:
// when the file (path) differs from the one the log holds ("shmgr token
// add/rm --data-dir" of this node changed it), it proposes the whole file
// through the log, and every node's FSM writes it into its own data
// directory.
//
// It starts once the node has applied the log (Barrier): a node that was
// down holds an old file until then, and proposing it would undo later
// changes. A file the log just wrote is not proposed again: it has the
// log's hash. The log's hash is read before and after the file, and a
// round in which it changed proposes nothing, so a file read just before
// the log replaced it never undoes the newer one. Of a new cluster (no
// tokens in the log yet) only the leader proposes the file it started
// with: the cluster's tokens begin as that one node's, not as whichever
// node proposed last. A file that would not load is logged and not
// proposed. Two nodes changed at once: the later entry wins on every
// node, and the other change is lost (make it again).
type tokenSync struct {
	n    *cluster.Node
	path string
	log  *slog.Logger

	caughtUp bool
	// firstSum is the file's hash once caught up (hadFirst: it existed);
	// refused the last file that would not load, logged once.
	hadFirst          bool
	firstSum, refused [sha256.Size]byte
}

// step runs one round and reports whether it proposed the file (and the
// log took it).
func (s *tokenSync) step() bool {
	if !s.caughtUp {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := s.n.Barrier(ctx)
		cancel()
		if err != nil {
			return false
		}
		s.caughtUp = true
		first, err := os.ReadFile(s.path)
		s.firstSum, s.hadFirst = sha256.Sum256(first), err == nil
	}
	_, before, set := s.n.Tokens()
	b, err := os.ReadFile(s.path)
	_, after, _ := s.n.Tokens()
	if err != nil || before != after {
		return false
	}
	sum := sha256.Sum256(b)
	switch {
	case set && sum == before:
		return false // the log's file
	case !set && s.hadFirst && sum == s.firstSum && !s.n.IsLeader():
		return false // a new cluster takes its leader's tokens
	case sum == s.refused:
		return false
	}
	if err := auth.Validate(b); err != nil {
		s.refused = sum
		s.log.Warn(fmt.Sprintf("%s changed, but the cluster keeps its tokens: %v", s.path, err))
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	err = s.n.ProposeTokens(ctx, b)
	cancel()
	if err != nil {
		s.log.Warn("handing the changed tokens file to the cluster failed; trying again", "err", err)
		return false
	}
	s.log.Info("tokens file handed to every node of the cluster", "bytes", len(b))
	return true
}

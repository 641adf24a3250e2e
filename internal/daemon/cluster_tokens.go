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
// one: when the node's tokens file (in dir) differs from the one the log
// holds ("shmgr token add/rm --data-dir" of this node changed it), it
// proposes the whole file through the log, and every node's FSM writes
// it into its own data directory. It runs on the node (Node.Go) until the
// node closes.
//
// It starts once the node has applied the log (Barrier): a node that
// was down holds an old file until then. A file the log just wrote is
// not proposed again: it has the log's
// hash. The log's hash is read before and after the file, and a round in
// which it changed proposes nothing, so a file read just before the log
// replaced it never undoes the newer one. Of a new cluster (no tokens in
// the log yet) only the leader proposes the file it started with: the
// cluster's tokens begin as that one node's, not as whichever node
// proposed last. A file that would not load is logged and not proposed.
// Two nodes changed at once: the later entry wins on every node, and the
// other change is lost (make it again).
func tokenWatcher(n *cluster.Node, dir string, log *slog.Logger) func(stop <-chan struct{}) {
	path := filepath.Join(dir, auth.FileName)
	return func(stop <-chan struct{}) {
		var first []byte
		var firstSum, refused [sha256.Size]byte // refused: the last file not proposed, logged once
		caughtUp, hadFirst := false, false
		t := time.NewTicker(tokenWatch)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			if !caughtUp {
				// A node that was down may hold an old file: until it has
				// applied the log (which rewrites the file), it proposes
				// nothing, or it would undo later changes.
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := n.Barrier(ctx)
				cancel()
				if err != nil {
					continue
				}
				caughtUp = true
				first, err = os.ReadFile(path)
				firstSum, hadFirst = sha256.Sum256(first), err == nil
			}
			_, before, set := n.Tokens()
			b, err := os.ReadFile(path)
			_, after, _ := n.Tokens()
			if err != nil || before != after {
				continue
			}
			sum := sha256.Sum256(b)
			switch {
			case set && sum == before:
				continue // the log's file
			case !set && hadFirst && sum == firstSum && !n.IsLeader():
				continue // a new cluster takes its leader's tokens
			case sum == refused:
				continue
			}
			if err := auth.Validate(b); err != nil {
				refused = sum
				log.Warn(fmt.Sprintf("%s changed, but the cluster keeps its tokens: %v", path, err))
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err = n.ProposeTokens(ctx, b)
			cancel()
			if err != nil {
				log.Warn("handing the changed tokens file to the cluster failed; trying again", "err", err)
				continue
			}
			log.Info("tokens file handed to every node of the cluster", "bytes", len(b))
		}
	}
}

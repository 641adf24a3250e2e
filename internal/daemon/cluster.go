package daemon

import (
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sort"
	"strings"

	"github.com/shmgr/shmgr/internal/cluster"
	"github.com/shmgr/shmgr/internal/host"
)

// ClusterConfig makes a host one node of a cluster (see docs/CLUSTER.md):
// its regions are replicated through a Raft log with the other nodes'.
type ClusterConfig struct {
	// Node is this node's name, a key of Peers.
	Node string
	// Raft is the host:port this node's Raft listens on (default:
	// Peers[Node]); the other nodes reach it at Peers[Node].
	Raft string
	// Peers maps every node's name to its Raft address, this node's
	// included. Nodes started with the same Peers form the cluster (the
	// first start bootstraps; later starts rejoin from the data
	// directory).
	Peers map[string]string
}

// raftDir is where the node keeps its log and snapshots: inside the
// host's data directory, so that one --data-dir holds a node, and apart
// from the host's own files, which the log rebuilds.
func raftDir(dataDir string) string { return filepath.Join(dataDir, "raft") }

// ParsePeers parses "a=HOST:PORT,b=HOST:PORT,...".
func ParsePeers(s string) (map[string]string, error) {
	peers := map[string]string{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, addr, ok := strings.Cut(item, "=")
		if !ok || name == "" || addr == "" {
			return nil, fmt.Errorf("peer %q: write it as NAME=HOST:PORT", item)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("peer %q: address %q: %w", name, addr, err)
		}
		if _, dup := peers[name]; dup {
			return nil, fmt.Errorf("peer %q is named twice", name)
		}
		peers[name] = addr
	}
	if len(peers) == 0 {
		return nil, fmt.Errorf("no peers in %q: write them as a=HOST:PORT,b=HOST:PORT,c=HOST:PORT", s)
	}
	return peers, nil
}

// Check reports what no node could start with.
func (c *ClusterConfig) Check() error {
	if c.Node == "" {
		return fmt.Errorf("a cluster node needs a name (--node), one of the peers %s", names(c.Peers))
	}
	if len(c.Peers) == 0 {
		return fmt.Errorf("node %q has no peers (--peers a=HOST:PORT,b=HOST:PORT,...)", c.Node)
	}
	self, ok := c.Peers[c.Node]
	if !ok {
		return fmt.Errorf("node %q is not among the peers %s: name it in --peers, or pick one of those names with --node", c.Node, names(c.Peers))
	}
	if c.Raft != "" && c.Raft != self {
		if _, _, err := net.SplitHostPort(c.Raft); err != nil {
			return fmt.Errorf("raft address %q: %w", c.Raft, err)
		}
	}
	seen := map[string]string{}
	for _, n := range sortedNames(c.Peers) {
		if o, dup := seen[c.Peers[n]]; dup {
			return fmt.Errorf("peers %q and %q have the same address %s", o, n, c.Peers[n])
		}
		seen[c.Peers[n]] = n
	}
	return nil
}

func sortedNames(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func names(m map[string]string) string {
	return "(" + strings.Join(sortedNames(m), ", ") + ")"
}

// startNode starts the cluster node over h, its log in the data
// directory's raft directory.
func startNode(cfg Config, h *host.Host, log *slog.Logger) (*cluster.Node, error) {
	c := cfg.Cluster
	bind := c.Raft
	if bind == "" {
		bind = c.Peers[c.Node]
	}
	n, err := cluster.Start(cluster.Config{
		ID: c.Node, Bind: bind, Peers: c.Peers, DataDir: raftDir(cfg.DataDir), Host: h,
		Logf: func(format string, args ...any) { log.Info(fmt.Sprintf(format, args...)) },
	})
	if err != nil {
		return nil, fmt.Errorf("cluster node %q: %w", c.Node, err)
	}
	n.Go(tokenWatcher(n, cfg.DataDir, log)) // cluster_tokens.go
	log.Info("cluster node started", "node", c.Node, "raft", bind, "peers", len(c.Peers))
	if !loopbackRaft(bind) {
		// The host's TLS is not carried to the Raft port yet.
		log.Warn("the Raft port is plain TCP without authentication: anyone who reaches " + bind + " can take part in the cluster; keep it on loopback or a trusted network")
	}
	return n, nil
}

// Node is the host's cluster node, nil for a single host.
func (d *Daemon) Node() *cluster.Node { return d.node }

// loopbackRaft reports whether addr binds a loopback address only.
func loopbackRaft(addr string) bool {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/shmgr/shmgr/internal/certs"
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
	// Join starts a node that is not a member yet, with no Peers: it
	// waits until a member adds it ("shmgr cluster add"), then gets a
	// snapshot and the log. It needs Raft and an empty host. A node that
	// has joined restarts from its data directory, Join or not.
	Join bool
	// Fingerprints maps node names to the SHA-256 fingerprints of their
	// hosts' certificates (--peer-fingerprints). With the host's TLS the
	// Raft port runs mutually authenticated TLS: a new cluster needs every
	// peer's, which go into its first configuration (and from then on the
	// log carries them, with those of nodes added later); a node that
	// joins needs the members', to accept the leader before it has the
	// configuration. Not needed to restart a node with state.
	Fingerprints map[string]string
	// InsecureRaft lets the Raft port run plain TCP beyond loopback
	// (--insecure-raft): anyone who reaches it can take part in the
	// cluster. Without it such a node refuses to start unless the host
	// runs TLS.
	InsecureRaft bool
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

// ParseFingerprints parses "a=FP,b=FP,...", or "@PATH": a file of such
// entries, one or more a line (blank lines and lines starting with # are
// skipped). Each fingerprint is 64 hex digits, colons allowed (as a host
// prints it after "tls sha256:").
func ParseFingerprints(s string) (map[string]string, error) {
	if path, ok := strings.CutPrefix(s, "@"); ok {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("fingerprint file: %w", err)
		}
		var items []string
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				items = append(items, line)
			}
		}
		s = strings.Join(items, ",")
		if s == "" {
			return nil, fmt.Errorf("fingerprint file %s holds no NAME=FINGERPRINT entries", path)
		}
	}
	fps := map[string]string{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, fp, ok := strings.Cut(item, "=")
		if !ok || name == "" || fp == "" {
			return nil, fmt.Errorf("fingerprint %q: write it as NAME=FINGERPRINT", item)
		}
		n, err := certs.NormalizeFingerprint(fp)
		if err != nil {
			return nil, fmt.Errorf("node %q: %w", name, err)
		}
		if _, dup := fps[name]; dup {
			return nil, fmt.Errorf("node %q's fingerprint is given twice", name)
		}
		fps[name] = n
	}
	if len(fps) == 0 {
		return nil, fmt.Errorf("no fingerprints in %q: write them as a=FINGERPRINT,b=FINGERPRINT", s)
	}
	return fps, nil
}

// Check reports what no node could start with.
func (c *ClusterConfig) Check() error {
	if c.Node == "" {
		return fmt.Errorf("a cluster node needs a name (--node), one of the peers %s", names(c.Peers))
	}
	if c.Join {
		if len(c.Peers) > 0 {
			return fmt.Errorf("node %q: --join starts a node that waits to be added; it takes no --peers (a member adds it with: shmgr cluster add %s %s)", c.Node, c.Node, c.Raft)
		}
		if c.Raft == "" {
			return fmt.Errorf("node %q: --join needs --raft, the address the members reach this node's Raft port at", c.Node)
		}
		if _, _, err := net.SplitHostPort(c.Raft); err != nil {
			return fmt.Errorf("raft address %q: %w", c.Raft, err)
		}
		return nil
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

// bind is the address the node's Raft listens on.
func (c *ClusterConfig) bind() string {
	if c.Raft != "" {
		return c.Raft
	}
	return c.Peers[c.Node]
}

// CheckSecurity reports a node that would run its Raft port unprotected
// beyond loopback, or fingerprints that cannot be checked; withTLS says
// whether the host runs TLS (--tls or --tls-cert). The promise is
// that Raft traffic is authenticated, and encrypted beyond loopback.
func (c *ClusterConfig) CheckSecurity(withTLS bool) error {
	if !withTLS {
		if len(c.Fingerprints) > 0 {
			return errors.New("--peer-fingerprints pins the members' certificates on the Raft port, which runs TLS only with the host's: add --tls (or --tls-cert and --tls-key)")
		}
		if c.InsecureRaft {
			return nil
		}
		addrs := []string{c.bind()}
		for _, n := range sortedNames(c.Peers) {
			addrs = append(addrs, c.Peers[n])
		}
		for _, a := range addrs {
			if !loopbackRaft(a) {
				return fmt.Errorf("the Raft address %s is not loopback, and without TLS anyone who reaches it could join the cluster and write every region: add --tls with --peer-fingerprints (see docs/CLUSTER.md, Security), or --insecure-raft on a network you trust", a)
			}
		}
		return nil
	}
	if c.InsecureRaft {
		return errors.New("--insecure-raft with --tls: the Raft port runs the host's TLS; leave out --insecure-raft")
	}
	return nil
}

// hasRaftState reports whether dir holds a node's log or snapshots (the
// node restarts from them, and needs no bootstrap fingerprints).
func hasRaftState(dir string) bool {
	for _, sub := range []string{"wal", "snapshots"} {
		if ents, err := os.ReadDir(filepath.Join(dir, sub)); err == nil && len(ents) > 0 {
			return true
		}
	}
	return false
}

// nodeTLS is the node's TLS from the host's certificate and the
// fingerprints, checked: a new cluster needs every peer's, a joining
// node at least one member's, and this node's own must be its host's.
func nodeTLS(cfg Config, sec security) (*cluster.TLS, error) {
	c := cfg.Cluster
	if sec.tls == nil {
		return nil, nil
	}
	own, err := certs.NormalizeFingerprint(sec.fingerprint)
	if err != nil {
		return nil, fmt.Errorf("the host's certificate: %w", err)
	}
	fps := map[string]string{}
	for n, fp := range c.Fingerprints {
		fps[n] = fp
	}
	if fp, ok := fps[c.Node]; ok && fp != own {
		return nil, fmt.Errorf("--peer-fingerprints gives node %q (this node) the fingerprint %s, but this host's certificate is %s", c.Node, fp, sec.fingerprint)
	}
	fps[c.Node] = own
	if !hasRaftState(raftDir(cfg.DataDir)) {
		var missing []string
		for _, n := range sortedNames(c.Peers) {
			if fps[n] == "" {
				missing = append(missing, n)
			}
		}
		switch {
		case len(missing) > 0:
			return nil, fmt.Errorf("the Raft port runs TLS, pinned to the members' certificates, and --peer-fingerprints lacks %s: give every peer's as NAME=FINGERPRINT (each host prints its own as \"tls sha256\")", strings.Join(missing, ", "))
		case c.Join && len(fps) < 2:
			return nil, errors.New("a node that joins a TLS cluster needs --peer-fingerprints with the members' certificates, to accept the leader before it has the cluster's configuration")
		}
	}
	return &cluster.TLS{Certificate: sec.tls.Certificates[0], Fingerprints: fps}, nil
}

// startNode starts the cluster node over h, its log in the data
// directory's raft directory, its Raft port on the host's TLS if the
// host has TLS.
func startNode(cfg Config, h *host.Host, log *slog.Logger, sec security) (*cluster.Node, error) {
	c := cfg.Cluster
	bind := c.bind()
	if err := c.CheckSecurity(sec.tls != nil); err != nil {
		return nil, fmt.Errorf("cluster node %q: %w", c.Node, err)
	}
	nt, err := nodeTLS(cfg, sec)
	if err != nil {
		return nil, fmt.Errorf("cluster node %q: %w", c.Node, err)
	}
	n, err := cluster.Start(cluster.Config{
		ID: c.Node, Bind: bind, Peers: c.Peers, DataDir: raftDir(cfg.DataDir), Host: h, TLS: nt,
		Logf:   func(format string, args ...any) { log.Info(fmt.Sprintf(format, args...)) },
		Alarmf: func(format string, args ...any) { log.Error(fmt.Sprintf(format, args...)) },
	})
	if err != nil {
		return nil, fmt.Errorf("cluster node %q: %w", c.Node, err)
	}
	n.Go(tokenWatcher(n, cfg.DataDir, log)) // cluster_tokens.go
	log.Info("cluster node started", "node", c.Node, "raft", bind, "peers", len(c.Peers), "tls", nt != nil, "join", c.Join)
	if c.Join && len(c.Peers) == 0 {
		log.Info(fmt.Sprintf("node %s waits to be added: on any member run  shmgr cluster add %s %s%s", c.Node, c.Node, bind, fpHint(sec)))
	}
	if nt == nil && !loopbackRaft(bind) {
		log.Warn("the Raft port is plain TCP without authentication (--insecure-raft): anyone who reaches " + bind + " can take part in the cluster; keep it on a trusted network")
	}
	return n, nil
}

func fpHint(sec security) string {
	if sec.fingerprint == "" {
		return ""
	}
	return " --fingerprint " + sec.fingerprint
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

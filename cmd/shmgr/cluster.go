package main

// This file holds cluster mode's part of the CLI: the host's --node,
// --raft, --peers, --join, --peer-fingerprints and --insecure-raft flags,
// and "shmgr cluster status|add|remove|leader".

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/certs"
	"github.com/shmgr/shmgr/internal/daemon"
	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/server"
	"github.com/spf13/cobra"
)

// clusterFlags are the host's cluster flags.
type clusterFlags struct {
	node         string // --node: this node's name
	raft         string // --raft: the Raft listen address (default: its --peers entry)
	peers        string // --peers: a=HOST:PORT,b=HOST:PORT,...
	join         bool   // --join: start outside the cluster, wait for "cluster add"
	fingerprints string // --peer-fingerprints: a=FP,b=FP,... or @FILE
	insecureRaft bool   // --insecure-raft: plain TCP Raft beyond loopback
}

func addClusterFlags(c *cobra.Command, f *clusterFlags) {
	c.Flags().StringVar(&f.node, "node", "", "cluster mode: this node's name, one of --peers")
	c.Flags().StringVar(&f.raft, "raft", "", "cluster mode: the address Raft listens on (default: this node's --peers address)")
	c.Flags().StringVar(&f.peers, "peers", "", "cluster mode: every node's name and Raft address, such as a=10.0.0.1:9420,b=10.0.0.2:9420,c=10.0.0.3:9420")
	c.Flags().BoolVar(&f.join, "join", false, "cluster mode: start a new node with --node and --raft but no --peers, to be added by \"shmgr cluster add\" on a member")
	c.Flags().StringVar(&f.fingerprints, "peer-fingerprints", "", "cluster mode with --tls: the members' certificate fingerprints, a=FP,b=FP,c=FP (or @FILE with NAME=FP lines); needed to start a new cluster or --join one")
	c.Flags().BoolVar(&f.insecureRaft, "insecure-raft", false, "cluster mode: allow a Raft port beyond loopback without --tls (anyone who reaches it can join; not recommended)")
}

// clusterConfig turns the flags into the daemon's cluster settings: nil
// without any of them (a single host), an error naming the flag for a
// half-given or inconsistent set. withTLS says whether the host runs TLS,
// which the Raft port then uses.
func (f *clusterFlags) clusterConfig(withTLS bool) (*daemon.ClusterConfig, error) {
	if f.node == "" && f.raft == "" && f.peers == "" && !f.join && f.fingerprints == "" && !f.insecureRaft {
		return nil, nil
	}
	var peers map[string]string
	switch {
	case f.join && f.peers != "":
		return nil, usageError{errors.New("--join starts a node outside the cluster, to be added with \"shmgr cluster add\": leave out --peers")}
	case f.join:
		if f.node == "" || f.raft == "" {
			return nil, usageError{errors.New("--join needs --node (this node's name) and --raft (the address the members reach its Raft port at)")}
		}
	case f.peers == "":
		return nil, usageError{errors.New("--node and --raft need --peers (every node's NAME=HOST:PORT, this one's included), or --join to be added to a running cluster")}
	default:
		var err error
		if peers, err = daemon.ParsePeers(f.peers); err != nil {
			return nil, usageError{fmt.Errorf("--peers: %w", err)}
		}
		if f.node == "" {
			return nil, usageError{errors.New("--peers needs --node: the name of this node among them")}
		}
	}
	cc := &daemon.ClusterConfig{Node: f.node, Raft: f.raft, Peers: peers, Join: f.join, InsecureRaft: f.insecureRaft}
	if f.fingerprints != "" {
		var err error
		if cc.Fingerprints, err = daemon.ParseFingerprints(f.fingerprints); err != nil {
			return nil, usageError{fmt.Errorf("--peer-fingerprints: %w", err)}
		}
	}
	if err := cc.Check(); err != nil {
		return nil, usageError{fmt.Errorf("cluster flags: %w", err)}
	}
	if err := cc.CheckSecurity(withTLS); err != nil {
		return nil, usageError{fmt.Errorf("cluster flags: %w", err)}
	}
	return cc, nil
}

func newClusterCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "cluster",
		Short: "Show a cluster's nodes, and add, remove or promote nodes",
		Long: `Cluster administration, against any host of the cluster (--host): a
membership change is forwarded to the leader, and needs the admin token.

Adding a node: start its host with --node NAME --raft ADDR --join (and,
on a TLS cluster, --tls --peer-fingerprints with the members'), then run
"shmgr cluster add NAME ADDR" (with --fingerprint, the "tls sha256" its
host printed) against any member. See docs/CLUSTER.md, Membership.`,
		Args: cobra.NoArgs,
	}
	c.AddCommand(newClusterStatusCmd(&globals{}), newClusterAddCmd(&globals{}), newClusterRemoveCmd(&globals{}), newClusterLeaderCmd(&globals{}),
		newClusterFingerprintCmd())
	return c
}

// newClusterFingerprintCmd prints a host's certificate fingerprint before
// the host first starts, for the other nodes' --peer-fingerprints.
func newClusterFingerprintCmd() *cobra.Command {
	var dataDir, certFile string
	var asJSON bool
	c := &cobra.Command{
		Use:   "fingerprint",
		Short: "Print this machine's host certificate fingerprint (made now if the data directory has none)",
		Long: `Print the SHA-256 fingerprint of the certificate a host started with --tls
presents, on its client port and its Raft port: the one in the data
directory (made now if there is none yet, as the host would make it), or
the --tls-cert file. Run it on each machine before starting a new TLS
cluster, and give every host all of them with --peer-fingerprints.`,
		Example: `  shmgr cluster fingerprint --data-dir /var/lib/shmgr
  shmgr cluster fingerprint --tls-cert /etc/shmgr/cert.pem`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			var fp string
			if certFile != "" {
				var err error
				if fp, err = certs.FileFingerprint(certFile); err != nil {
					return fmt.Errorf("--tls-cert %s: %w", certFile, err)
				}
			} else {
				dir := dataDir
				if dir == "" {
					var err error
					if dir, err = host.DefaultDataDir(); err != nil {
						return err
					}
				}
				if err := os.MkdirAll(dir, 0o700); err != nil {
					return fmt.Errorf("data directory: %w", err)
				}
				cert, err := certs.LoadOrCreate(dir, server.Addresses(net.IPv4zero))
				if err != nil {
					return err
				}
				fp = certs.Fingerprint(cert.Certificate[0])
			}
			if asJSON {
				return printJSON(c.OutOrStdout(), map[string]string{"fingerprint": fp})
			}
			_, err := fmt.Fprintln(c.OutOrStdout(), fp)
			return err
		},
	}
	c.Flags().StringVar(&dataDir, "data-dir", "", "the host's data directory (env "+host.DataDirEnv+")")
	c.Flags().StringVar(&certFile, "tls-cert", "", "the host's --tls-cert file instead")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return c
}

// membershipTimeout is the default --timeout of a membership change: a
// configuration entry to commit, or a leadership transfer.
const membershipTimeout = 40 * time.Second

// addMembershipFlags adds the client flags, with a longer --timeout.
func addMembershipFlags(c *cobra.Command, g *globals) {
	addClientFlags(c, g, false)
	g.timeout = membershipTimeout
	c.Flags().Lookup("timeout").DefValue = membershipTimeout.String()
}

func newClusterAddCmd(g *globals) *cobra.Command {
	var fp string
	c := &cobra.Command{
		Use:   "add NAME ADDR",
		Short: "Add node NAME, whose Raft port is at ADDR, to the cluster",
		Long: `Add node NAME, whose Raft port is at ADDR (HOST:PORT), as a voter. Start
its host first with --node NAME --raft ADDR --join on an empty data
directory; once added it is sent a snapshot and the log. On a cluster whose
hosts run --tls, give the new host's certificate fingerprint (it prints it
as "tls sha256") with --fingerprint: every node accepts that certificate
for NAME from then on, with no restart.`,
		Example: `  shmgr cluster add d 10.0.0.4:9420 --host 10.0.0.1:7000
  shmgr cluster add d 10.0.0.4:9420 --fingerprint 3A:91:...:7C --tls-fingerprint ...`,
		Args: cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			return withClient(c, g, (*globals).connect, func(ctx context.Context, conn *client.Conn) (result, error) {
				if err := conn.ClusterAdd(ctx, args[0], args[1], fp); err != nil {
					return result{}, fmt.Errorf("cluster add %s: %w", args[0], err)
				}
				return membershipResult("added", args[0], args[1]), nil
			})
		},
	}
	addMembershipFlags(c, g)
	c.Flags().StringVar(&fp, "fingerprint", "", "the new node's certificate SHA-256 fingerprint (needed when the cluster runs --tls)")
	return c
}

func newClusterRemoveCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove node NAME from the cluster",
		Long: `Remove node NAME from the cluster's configuration. It stops receiving the
log and its certificate is no longer accepted; stop its host afterwards.
Removing the leader makes another node lead.`,
		Example: `  shmgr cluster remove c --host 10.0.0.1:7000`,
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return withClient(c, g, (*globals).connect, func(ctx context.Context, conn *client.Conn) (result, error) {
				if err := conn.ClusterRemove(ctx, args[0]); err != nil {
					return result{}, fmt.Errorf("cluster remove %s: %w", args[0], err)
				}
				return membershipResult("removed", args[0], ""), nil
			})
		},
	}
	addMembershipFlags(c, g)
	return c
}

func newClusterLeaderCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:     "leader NAME",
		Short:   "Transfer the cluster's leadership to node NAME",
		Example: `  shmgr cluster leader d --host 10.0.0.1:7000`,
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return withClient(c, g, (*globals).connect, func(ctx context.Context, conn *client.Conn) (result, error) {
				if err := conn.ClusterLeader(ctx, args[0]); err != nil {
					return result{}, fmt.Errorf("cluster leader %s: %w", args[0], err)
				}
				return membershipResult("leader", args[0], ""), nil
			})
		},
	}
	addMembershipFlags(c, g)
	return c
}

// membershipDone is the JSON of a membership change.
type membershipDone struct {
	Done    string `json:"done"`
	Node    string `json:"node"`
	Address string `json:"address,omitempty"`
}

func membershipResult(done, node, addr string) result {
	return result{json: membershipDone{Done: done, Node: node, Address: addr}, text: func(w io.Writer) error {
		var err error
		switch done {
		case "added":
			_, err = fmt.Fprintf(w, "node %s (%s) added; it catches up from the leader (see shmgr cluster status)\n", node, addr)
		case "removed":
			_, err = fmt.Fprintf(w, "node %s removed; stop its host\n", node)
		default:
			_, err = fmt.Fprintf(w, "node %s leads\n", node)
		}
		return err
	}}
}

func newClusterStatusCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "status",
		Short: "Show the cluster's nodes, roles, indexes and leader, as one host sees them",
		Example: `  shmgr cluster status --host 127.0.0.1:9410
  shmgr cluster status --json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			return withClient(c, g, (*globals).connect, func(ctx context.Context, conn *client.Conn) (result, error) {
				raw, err := conn.ClusterStatus(ctx)
				if errors.Is(err, client.ErrForbidden) {
					return result{}, fmt.Errorf("cluster status: the host at %s is not a cluster node (start it with --node and --peers): %w", conn.Addr(), err)
				}
				if err != nil {
					return result{}, fmt.Errorf("cluster status: %w", err)
				}
				var ci server.ClusterInfo
				if err := json.Unmarshal(raw, &ci); err != nil {
					return result{}, fmt.Errorf("cluster status: the host's answer: %w", err)
				}
				return result{json: ci, text: func(out io.Writer) error { return printCluster(out, conn.Addr(), &ci) }}, nil
			})
		},
	}
	addClientFlags(c, g, false)
	return c
}

// printCluster prints what cluster status prints without --json.
func printCluster(out io.Writer, addr string, ci *server.ClusterInfo) error {
	leader := ci.Leader
	if leader == "" {
		leader = "(none known)"
	}
	fmt.Fprintf(out, "node %s at %s: %s, term %d, applied %d of %d committed (lag %d)\n",
		ci.ID, addr, ci.State, ci.Term, ci.AppliedIndex, ci.CommitIndex, ci.Lag)
	fmt.Fprintf(out, "leader: %s\n", leader)
	if ci.OutsideWrites > 0 || ci.Diverged > 0 {
		fmt.Fprintf(out, "WARNING: this replica differs from the others: %s written outside the log, %s found by the log (the host's log names the regions: REGION WRITTEN OUTSIDE THE LOG, REPLICA DIVERGED)\n",
			plural(ci.OutsideWrites, "change"), plural(ci.Diverged, "divergence"))
	}
	if ci.Error != "" {
		fmt.Fprintf(out, "members: %s\n", ci.Error)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if len(ci.Nodes) == 0 {
		fmt.Fprintln(tw, "NODE\tRAFT ADDRESS\tVOTER\tROLE")
		for _, m := range ci.Members {
			role := "follower"
			if m.Leader {
				role = "leader"
			}
			if m.ID == ci.ID {
				role += " (this node)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%v\t%s\n", m.ID, m.Address, m.Voter, role)
		}
		return tw.Flush()
	}
	fmt.Fprintln(tw, "NODE\tRAFT ADDRESS\tVOTER\tROLE\tAPPLIED\tCOMMITTED\tLAG")
	var why []string
	for _, n := range ci.Nodes {
		name := n.ID
		if n.ID == ci.ID {
			name += "*"
		}
		if !n.Reachable {
			fmt.Fprintf(tw, "%s\t%s\t%v\tunreachable\t-\t-\t-\n", name, n.Address, n.Voter)
			why = append(why, fmt.Sprintf("%s unreachable: %s", n.ID, oneLine(n.Error)))
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%d\t%d\t%d\n", name, n.Address, n.Voter, strings.ToLower(n.State), n.AppliedIndex, n.CommitIndex, n.Lag)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out, "(* this node)")
	for _, w := range why {
		fmt.Fprintln(out, w)
	}
	return nil
}

// oneLine keeps an error message on one short line.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:197] + "..."
	}
	return s
}

// plural writes n and noun, with an s unless n is 1.
func plural(n uint64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

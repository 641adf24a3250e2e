package main

// This file holds cluster mode's part of the CLI: the host's --node,
// --raft and --peers flags, and "shmgr cluster status".

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/daemon"
	"github.com/shmgr/shmgr/internal/server"
	"github.com/spf13/cobra"
)

// clusterFlags are the host's cluster flags.
type clusterFlags struct {
	node  string // --node: this node's name
	raft  string // --raft: the Raft listen address (default: its --peers entry)
	peers string // --peers: a=HOST:PORT,b=HOST:PORT,...
}

func addClusterFlags(c *cobra.Command, f *clusterFlags) {
	c.Flags().StringVar(&f.node, "node", "", "cluster mode: this node's name, one of --peers")
	c.Flags().StringVar(&f.raft, "raft", "", "cluster mode: the address Raft listens on (default: this node's --peers address)")
	c.Flags().StringVar(&f.peers, "peers", "", "cluster mode: every node's name and Raft address, such as a=10.0.0.1:9420,b=10.0.0.2:9420,c=10.0.0.3:9420")
}

// clusterConfig turns the flags into the daemon's cluster settings: nil
// without any of them (a single host), an error naming the flag for a
// half-given or inconsistent set.
func (f *clusterFlags) clusterConfig() (*daemon.ClusterConfig, error) {
	if f.node == "" && f.raft == "" && f.peers == "" {
		return nil, nil
	}
	if f.peers == "" {
		return nil, usageError{errors.New("--node and --raft need --peers (every node's NAME=HOST:PORT, this one's included)")}
	}
	peers, err := daemon.ParsePeers(f.peers)
	if err != nil {
		return nil, usageError{fmt.Errorf("--peers: %w", err)}
	}
	if f.node == "" {
		return nil, usageError{errors.New("--peers needs --node: the name of this node among them")}
	}
	cc := &daemon.ClusterConfig{Node: f.node, Raft: f.raft, Peers: peers}
	if err := cc.Check(); err != nil {
		return nil, usageError{fmt.Errorf("cluster flags: %w", err)}
	}
	return cc, nil
}

func newClusterCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "cluster",
		Short: "Show a cluster's state (cluster mode preview)",
		Args:  cobra.NoArgs,
	}
	c.AddCommand(newClusterStatusCmd(&globals{}))
	return c
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
				hi, err := conn.HostInfo(ctx)
				if err != nil {
					return result{}, fmt.Errorf("cluster status: %w", err)
				}
				if len(hi.Cluster) == 0 {
					return result{}, fmt.Errorf("cluster status: the host at %s is not a cluster node (start it with --node and --peers)", conn.Addr())
				}
				var ci server.ClusterInfo
				if err := json.Unmarshal(hi.Cluster, &ci); err != nil {
					return result{}, fmt.Errorf("cluster status: the host's cluster object: %w", err)
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
	if ci.Error != "" {
		fmt.Fprintf(out, "members: %s\n", ci.Error)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
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

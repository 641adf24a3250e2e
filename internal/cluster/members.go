package cluster

// This file holds membership: adding, removing and promoting nodes from
// any node (a follower forwards the change to the leader), the member
// certificates the cluster's configuration pins, and every member's
// status fetched over the Raft port.
//
// Pins travel in the configuration itself. A server's address in Raft's
// configuration is "HOST:PORT#FINGERPRINT" when the cluster runs on TLS
// (pinnedAddress): Raft replicates configuration changes as log entries
// and keeps the configuration in every snapshot, so a node added with its
// fingerprint is known to every node as soon as the entry reaches it (no
// node restarts), a node that restores a snapshot has the pins of its
// configuration, and a removed node's pin goes with its removal. The
// transport strips the pin before dialling (mux.dial) and requires the
// peer at that address to present exactly that certificate; an incoming
// connection is accepted if its certificate is pinned anywhere in the
// latest configuration (Node.accepts).

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shmgr/shmgr/internal/certs"
	"github.com/shmgr/shmgr/internal/shmerr"
)

// pinSep separates a Raft address from the fingerprint pinned for it.
const pinSep = "#"

// pinnedAddress returns the configuration's form of addr with fingerprint
// fp (normalized), or addr alone if fp is empty.
func pinnedAddress(addr, fp string) string {
	if fp == "" {
		return addr
	}
	return addr + pinSep + fp
}

// splitPin splits a configuration address into the address to dial and
// the fingerprint pinned for it ("" if none).
func splitPin(address string) (addr, fp string) {
	addr, fp, _ = strings.Cut(address, pinSep)
	return addr, fp
}

// configPins returns the fingerprints pinned in conf.
func configPins(conf raft.Configuration) map[string]bool {
	var pins map[string]bool
	for _, s := range conf.Servers {
		if _, fp := splitPin(string(s.Address)); fp != "" {
			if pins == nil {
				pins = map[string]bool{}
			}
			pins[fp] = true
		}
	}
	return pins
}

// accepts reports whether a peer presenting the certificate of (normalized)
// fingerprint fp is a member: pinned in the latest configuration, or, while
// the configuration pins none, among the node's Config.TLS fingerprints.
func (n *Node) accepts(fp string) bool {
	if r := n.raftRef.Load(); r != nil {
		if pins := configPins(r.GetConfiguration().Configuration()); pins != nil {
			return pins[fp]
		}
	}
	return n.static[fp]
}

// Membership errors, matched with errors.Is.
var (
	// ErrNoMember: no member of the cluster has this name (of kind
	// shmerr.ErrNotFound, which is what a forwarded change keeps).
	ErrNoMember = shmerr.New(shmerr.ErrNotFound, "no such cluster member")
	// ErrFingerprint: a node's certificate fingerprint is missing where
	// the cluster runs on TLS, or given where it does not, or malformed.
	ErrFingerprint = shmerr.New(shmerr.ErrProtocol, "cluster member fingerprint")
)

// membershipTimeout bounds a membership change on the leader: adding a
// voter commits a configuration entry (the new node catches up after).
const membershipTimeout = 30 * time.Second

// AddMember adds node id, reached at Raft address addr, as a voter. On a
// cluster with TLS, fingerprint is the SHA-256 fingerprint of the new
// node's certificate (any spelling certs.NormalizeFingerprint takes): it
// goes into the configuration, and from then on every node accepts that
// certificate, and that one only, for id. Without TLS it must be empty.
// The new node is started with no Peers, an empty host and an empty data
// directory (Config.TLS.Fingerprints or Members naming the members it
// will hear from); the leader then sends it a snapshot and the log. On a
// follower the change is forwarded to the leader. Adding a member that is
// there at the same address changes nothing; at another address, the
// address is changed.
func (n *Node) AddMember(ctx context.Context, id, addr, fingerprint string) error {
	if id == "" || strings.ContainsAny(id, pinSep+"\x00") {
		return fmt.Errorf("%w: node name %q", shmerr.ErrProtocol, id)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil || strings.Contains(addr, pinSep) {
		return fmt.Errorf("%w: node %q: Raft address %q: write it as HOST:PORT", shmerr.ErrProtocol, id, addr)
	}
	fp := ""
	switch {
	case n.cfg.TLS != nil && fingerprint == "":
		return fmt.Errorf("%w: the cluster's Raft port runs on TLS: give node %q's certificate fingerprint (its host prints it as \"tls sha256\")", ErrFingerprint, id)
	case n.cfg.TLS == nil && fingerprint != "":
		return fmt.Errorf("%w: the cluster's Raft port runs without TLS, so a fingerprint for node %q would not be checked: start the hosts with --tls", ErrFingerprint, id)
	case fingerprint != "":
		var err error
		if fp, err = certs.NormalizeFingerprint(fingerprint); err != nil {
			return fmt.Errorf("%w: node %q: %v", ErrFingerprint, id, err)
		}
	}
	return n.change(ctx, fwdAdd, id, pinnedAddress(addr, fp))
}

// AddVoter is AddMember without a fingerprint (a cluster without TLS).
func (n *Node) AddVoter(ctx context.Context, id, addr string) error {
	return n.AddMember(ctx, id, addr, "")
}

// RemoveServer removes node id from the cluster; on a follower the change
// is forwarded to the leader. Removing the leader makes it step down once
// the change commits. A name that is not a member's is ErrNoMember.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	return n.change(ctx, fwdRemove, id, "")
}

// TransferLeadership hands leadership to node id (any up-to-date voter if
// id is empty), and returns once it has; on a follower it is forwarded to
// the leader. Transferring to the leader itself changes nothing.
func (n *Node) TransferLeadership(id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), membershipTimeout)
	defer cancel()
	return n.change(ctx, fwdLeader, id, "")
}

// change makes a membership change on the leader: here, or forwarded.
func (n *Node) change(ctx context.Context, verb byte, id, address string) error {
	if n.raft.State() == raft.Leader {
		return n.changeLocal(ctx, verb, id, address)
	}
	body := binary.AppendUvarint(nil, uint64(len(id)))
	body = append(body, id...)
	body = append(body, address...)
	_, _, err := n.forward(ctx, verb, body)
	return err
}

// serveChange serves a forwarded membership change.
func (n *Node) serveChange(verb byte, body []byte) error {
	l, k := binary.Uvarint(body)
	if k <= 0 || l > uint64(len(body)-k) {
		return fmt.Errorf("%w: a forwarded membership change", ErrBadCommand)
	}
	id, address := string(body[k:k+int(l)]), string(body[k+int(l):])
	ctx, cancel := context.WithTimeout(context.Background(), membershipTimeout)
	defer cancel()
	return n.changeLocal(ctx, verb, id, address)
}

// changeLocal makes a membership change on this node's Raft, which must
// lead.
func (n *Node) changeLocal(ctx context.Context, verb byte, id, address string) error {
	if n.raft.State() != raft.Leader {
		return n.raftErr(raft.ErrNotLeader)
	}
	conf := n.raft.GetConfiguration().Configuration()
	var member *raft.Server
	for i := range conf.Servers {
		if string(conf.Servers[i].ID) == id {
			member = &conf.Servers[i]
		}
	}
	var f raft.Future
	switch verb {
	case fwdAdd:
		if member != nil && member.Address == raft.ServerAddress(address) && member.Suffrage == raft.Voter {
			return nil
		}
		_, want := splitPin(address)
		if (configPins(conf) != nil || n.cfg.TLS != nil) && want == "" {
			return fmt.Errorf("%w: the cluster pins its members' certificates: give node %q's fingerprint", ErrFingerprint, id)
		}
		f = n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(address), 0, timeout(ctx))
	case fwdRemove:
		if member == nil {
			return fmt.Errorf("%w: %q (the members are %s)", ErrNoMember, id, memberNames(conf))
		}
		f = n.raft.RemoveServer(raft.ServerID(id), 0, timeout(ctx))
	case fwdLeader:
		switch {
		case id == "":
			f = n.raft.LeadershipTransfer()
		case id == n.cfg.ID:
			return nil
		case member == nil:
			return fmt.Errorf("%w: %q (the members are %s)", ErrNoMember, id, memberNames(conf))
		case member.Suffrage != raft.Voter:
			return fmt.Errorf("%w: node %q does not vote, so it cannot lead", shmerr.ErrProtocol, id)
		default:
			f = n.raft.LeadershipTransferToServer(member.ID, member.Address)
		}
	default:
		return fmt.Errorf("%w: membership verb %q", ErrBadCommand, verb)
	}
	if err := f.Error(); err != nil {
		return n.raftErr(err)
	}
	return nil
}

func memberNames(conf raft.Configuration) string {
	var names []string
	for _, s := range conf.Servers {
		names = append(names, string(s.ID))
	}
	return "(" + strings.Join(names, ", ") + ")"
}

// NodeStatus is one member's status as NodeStatuses gathers it.
type NodeStatus struct {
	// ID, Address, Fingerprint and Voter are the member's, from the
	// configuration.
	ID          string `json:"id"`
	Address     string `json:"address"`
	Fingerprint string `json:"fingerprint,omitempty"`
	Voter       bool   `json:"voter"`
	// Reachable says whether the member answered; Error says why not.
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	// State, Term and the indexes are the member's own Status.
	State        string `json:"state,omitempty"`
	Term         uint64 `json:"term"`
	LastIndex    uint64 `json:"last_index"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	RaftApplied  uint64 `json:"raft_applied_index"`
	// Lag is how many entries committed (on the leader, if it answered;
	// else on the member itself) the member has yet to apply.
	Lag uint64 `json:"lag"`
}

// statusTimeout bounds asking one member for its status.
const statusTimeout = 2 * time.Second

// NodeStatuses asks every member of the configuration for its status over
// the Raft port, all at once, each within a short timeout; a member that
// does not answer is listed with Reachable false and the reason. The
// order is the configuration's.
func (n *Node) NodeStatuses(ctx context.Context) ([]NodeStatus, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, n.raftErr(err)
	}
	servers := f.Configuration().Servers
	out := make([]NodeStatus, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		addr, fp := splitPin(string(s.Address))
		out[i] = NodeStatus{ID: string(s.ID), Address: addr, Fingerprint: fp, Voter: s.Suffrage == raft.Voter}
		if string(s.ID) == n.cfg.ID {
			out[i].fill(n.Status())
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, statusTimeout)
			defer cancel()
			st, err := n.askStatus(cctx, string(s.Address), string(s.ID))
			if err != nil {
				out[i].Error = err.Error()
				return
			}
			out[i].fill(st)
		}()
	}
	wg.Wait()
	var leaderCommit uint64
	for _, s := range out {
		if s.Reachable && s.State == raft.Leader.String() {
			leaderCommit = s.CommitIndex
		}
	}
	for i := range out {
		if !out[i].Reachable {
			continue
		}
		c := max(leaderCommit, out[i].CommitIndex)
		if c > out[i].RaftApplied {
			out[i].Lag = c - out[i].RaftApplied
		}
	}
	return out, nil
}

func (s *NodeStatus) fill(st Status) {
	s.Reachable, s.State, s.Term = true, st.State, st.Term
	s.LastIndex, s.CommitIndex, s.AppliedIndex, s.RaftApplied = st.LastIndex, st.CommitIndex, st.AppliedIndex, st.RaftApplied
}

// askStatus asks the member at address for its Status.
func (n *Node) askStatus(ctx context.Context, address, id string) (Status, error) {
	var st Status
	_, _, msg, err := n.call(ctx, address, "node "+id, fwdStatus, nil)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal([]byte(msg), &st); err != nil {
		return st, fmt.Errorf("%w: node %s's status: %v", shmerr.ErrProtocol, id, err)
	}
	if st.ID != id {
		return st, fmt.Errorf("%w: the node at %s says it is %q, the configuration says %q", shmerr.ErrInternal, address, st.ID, id)
	}
	return st, nil
}

// statusJSON is the answer to fwdStatus.
func (n *Node) statusJSON() (string, error) {
	b, err := json.Marshal(n.Status())
	if err != nil {
		return "", errors.Join(shmerr.ErrInternal, err)
	}
	return string(b), nil
}

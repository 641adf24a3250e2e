package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/certs"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// nodeView is one entry of "nodes" in cluster status --json.
type nodeView struct {
	ID           string `json:"id"`
	Address      string `json:"address"`
	Fingerprint  string `json:"fingerprint"`
	Voter        bool   `json:"voter"`
	Reachable    bool   `json:"reachable"`
	Error        string `json:"error"`
	State        string `json:"state"`
	AppliedIndex uint64 `json:"applied_index"`
	CommitIndex  uint64 `json:"commit_index"`
	Lag          uint64 `json:"lag"`
}

// fullStatus is cluster status --json with every node's.
type fullStatus struct {
	clusterStatus
	Nodes []nodeView `json:"nodes"`
}

// member is one host of a cluster test: its process, its Raft address,
// and its certificate's fingerprint on a TLS cluster.
type member struct {
	h    *shmtest.Host
	raft string
	fp   string
}

// cli runs a client command against m (pinning its certificate on TLS).
func (m *member) cli(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	if m.fp != "" {
		args = append(args, "--tls-fingerprint", m.fp)
	}
	return m.h.CLI(t, nil, args...)
}

func (m *member) mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := m.cli(t, args...)
	if code != 0 {
		t.Fatalf("shmgr %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
	}
	return out
}

func (m *member) status(t *testing.T) fullStatus {
	t.Helper()
	var st fullStatus
	if err := json.Unmarshal([]byte(m.mustCLI(t, "cluster", "status", "--json")), &st); err != nil {
		t.Fatalf("cluster status --json: %v", err)
	}
	return st
}

// conn connects the test's own client to m (over TCP: the writes of a
// cluster go through the host).
func (m *member) conn(t *testing.T) *client.Conn {
	t.Helper()
	o := client.DefaultOptions()
	o.Mode = client.ModeTCP
	o.RequestTimeout = 20 * time.Second
	if m.fp != "" {
		var err error
		if o.TLS, err = client.PinnedTLS(m.fp); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, m.h.Addr, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// certFor makes the host certificate of data directory dir before its
// host first starts (as "shmgr cluster fingerprint" does) and returns its
// fingerprint.
func certFor(t *testing.T, dir string) string {
	t.Helper()
	out, errOut, code := shmtest.Run(t, nil, "cluster", "fingerprint", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("cluster fingerprint: exit %d: %s", code, errOut)
	}
	fp := strings.TrimSpace(out)
	cert, err := certs.LoadOrCreate(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := certs.Fingerprint(cert.Certificate[0]); got != fp {
		t.Fatalf("cluster fingerprint printed %s, the data directory's certificate is %s", fp, got)
	}
	return fp
}

// startMembers starts hosts a, b, c as one cluster on loopback, with TLS
// and pinned certificates if withTLS.
func startMembers(t *testing.T, withTLS bool) map[string]*member {
	t.Helper()
	ms := map[string]*member{}
	dirs := map[string]string{}
	var peers, fps []string
	for _, n := range []string{"a", "b", "c"} {
		m := &member{raft: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
		dirs[n] = filepath.Join(t.TempDir(), n)
		if withTLS {
			m.fp = certFor(t, dirs[n])
			fps = append(fps, n+"="+m.fp)
		}
		ms[n] = m
		peers = append(peers, n+"="+m.raft)
	}
	for _, n := range []string{"a", "b", "c"} {
		args := []string{"--node", n, "--peers", strings.Join(peers, ",")}
		if withTLS {
			args = append(args, "--tls", "--peer-fingerprints", strings.Join(fps, ","))
		}
		ms[n].h = startHostAt(t, dirs[n], args...)
	}
	return ms
}

// leaderOf waits until m names a leader and returns it.
func leaderOf(t *testing.T, m *member) string {
	t.Helper()
	var leader string
	shmtest.CheckFor(t, 60*time.Second, "no leader", func() bool {
		leader = m.status(t).Leader
		return leader != ""
	})
	return leader
}

// marker writes mark i (8 digits) at slot i%slots of raw region id,
// through one host, until stopped, each mark retried until acknowledged;
// it records the last acknowledged mark of each slot.
type marker struct {
	slots int
	mu    sync.Mutex
	acked map[int]int // slot -> last acknowledged mark
	// tried is a mark attempted but never acknowledged (-1: none).
	tried int
	n     int
	errs  []string
	stop  chan struct{}
	done  chan struct{}
}

func startMarker(t *testing.T, c *client.Conn, id string, slots int) *marker {
	t.Helper()
	mk := &marker{slots: slots, acked: map[int]int{}, tried: -1, stop: make(chan struct{}), done: make(chan struct{})}
	r, err := c.Open(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(mk.done)
		defer r.Close()
		deadline := time.Now().Add(5 * time.Minute)
		for i := 0; i < 100000 && time.Now().Before(deadline); i++ {
			select {
			case <-mk.stop:
				return
			default:
			}
			acked := false
			for try := 0; try < 20 && !acked; try++ {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				_, err := r.WriteAt(ctx, int64(i%slots*8), []byte(fmt.Sprintf("%08d", i)))
				cancel()
				if err == nil {
					acked = true
					break
				}
				mk.mu.Lock()
				mk.errs = append(mk.errs, err.Error())
				mk.mu.Unlock()
				select {
				case <-mk.stop:
					mk.mu.Lock()
					mk.tried = i
					mk.mu.Unlock()
					return
				case <-time.After(50 * time.Millisecond): // back off: an election is under way
				}
			}
			mk.mu.Lock()
			if acked {
				mk.acked[i%slots] = i
				mk.n++
			} else {
				mk.tried = i
			}
			mk.mu.Unlock()
			if !acked {
				return
			}
		}
	}()
	t.Cleanup(mk.halt)
	return mk
}

func (mk *marker) count() int {
	mk.mu.Lock()
	defer mk.mu.Unlock()
	return mk.n
}

func (mk *marker) halt() {
	select {
	case <-mk.stop:
	default:
		close(mk.stop)
	}
	<-mk.done
}

// waitMore waits until the marker has k more acknowledged marks than now.
func (mk *marker) waitMore(t *testing.T, k int, what string) {
	t.Helper()
	base := mk.count()
	shmtest.CheckFor(t, 90*time.Second, "writes stopped "+what, func() bool { return mk.count() >= base+k })
}

// check reads region id through every host and fails unless each holds
// every acknowledged mark (or, in its slot, the one attempt that was not
// acknowledged), at one version on all of them.
func (mk *marker) check(t *testing.T, id string, ms map[string]*member) {
	t.Helper()
	mk.mu.Lock()
	defer mk.mu.Unlock()
	var version uint64
	for n, m := range ms {
		var got struct {
			Content string `json:"content"`
			Version uint64 `json:"version"`
		}
		var bad string
		ok := shmtest.Poll(60*time.Second, func() bool {
			out, _, code := m.cli(t, "read", "--id", id, "--json")
			if code != 0 || json.Unmarshal([]byte(out), &got) != nil || len(got.Content) < mk.slots*8 {
				bad = "unreadable: " + out
				return false
			}
			bad = ""
			for slot, i := range mk.acked {
				mark := got.Content[slot*8 : slot*8+8]
				if mark != fmt.Sprintf("%08d", i) && (mk.tried < 0 || mk.tried%mk.slots != slot || mark != fmt.Sprintf("%08d", mk.tried)) {
					bad = fmt.Sprintf("slot %d holds %q, the last acknowledged mark there is %08d", slot, mark, i)
					return false
				}
			}
			return version == 0 || got.Version == version
		})
		if !ok {
			t.Errorf("host %s: %s (version %d, others %d)", n, bad, got.Version, version)
			continue
		}
		if version == 0 {
			version = got.Version
		}
	}
	t.Logf("%d marks acknowledged, region %q at version %d on %d hosts; %d write errors retried", mk.n, id, version, len(ms), len(mk.errs))
}

// TestClusterMembershipCLI: three hosts; a fourth is started with --join
// and added with "shmgr cluster add" through a follower while a writer
// keeps writing: it catches up to the same content and version.
// Leadership moves to it with "cluster leader", a node leaves with
// "cluster remove", writes go on, no acknowledged write is lost, and
// "cluster status" lists every node with its indexes (an unreachable one
// as such).
func TestClusterMembershipCLI(t *testing.T) {
	t.Parallel()
	ms := startMembers(t, false)
	leader := leaderOf(t, ms["a"])
	ms[leader].mustCLI(t, "create", "marks", "--layout", "raw", "--size", "4096")
	follower := followerOf(leader)
	writer := follower
	mk := startMarker(t, ms[writer].conn(t), "marks", 256)
	mk.waitMore(t, 20, "before the add")

	// Errors say what is wrong.
	if _, errOut, code := ms["a"].cli(t, "cluster", "remove", "zz"); code == 0 || !strings.Contains(errOut, `no such cluster member: "zz"`) {
		t.Errorf("cluster remove zz: exit %d, stderr %q", code, errOut)
	}
	if _, errOut, code := ms["a"].cli(t, "cluster", "leader", "zz"); code == 0 || !strings.Contains(errOut, "no such cluster member") {
		t.Errorf("cluster leader zz: exit %d, stderr %q", code, errOut)
	}
	single := startHostAt(t, filepath.Join(t.TempDir(), "single"))
	if _, errOut, code := single.CLI(t, nil, "cluster", "add", "d", "127.0.0.1:1"); code == 0 || !strings.Contains(errOut, "not a cluster node") {
		t.Errorf("cluster add on a single host: exit %d, stderr %q", code, errOut)
	}
	if _, errOut, code := single.CLI(t, nil, "cluster", "status"); code == 0 || !strings.Contains(errOut, "not a cluster node") {
		t.Errorf("cluster status on a single host: exit %d, stderr %q", code, errOut)
	}

	d := &member{raft: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	d.h = startHostAt(t, filepath.Join(t.TempDir(), "d"), "--node", "d", "--raft", d.raft, "--join")
	ms[follower].mustCLI(t, "cluster", "add", "d", d.raft)
	mk.waitMore(t, 20, "after the add")
	all := map[string]*member{"a": ms["a"], "b": ms["b"], "c": ms["c"], "d": d}
	shmtest.CheckFor(t, 60*time.Second, "d is not listed with its indexes", func() bool {
		st := ms["a"].status(t)
		for _, n := range st.Nodes {
			if n.ID == "d" {
				return n.Reachable && n.AppliedIndex > 0 && n.Address == d.raft && n.Voter
			}
		}
		return false
	})

	ms["a"].mustCLI(t, "cluster", "leader", "d")
	shmtest.CheckFor(t, 60*time.Second, "d does not lead", func() bool { return d.status(t).State == "Leader" })
	mk.waitMore(t, 20, "after the transfer")

	gone := "c"
	if writer == "c" {
		gone = "b"
	}
	d.mustCLI(t, "cluster", "remove", gone)
	delete(all, gone)
	mk.waitMore(t, 20, "after the remove")
	mk.halt()
	if mk.tried >= 0 {
		t.Logf("mark %d was not acknowledged: %v", mk.tried, mk.errs[max(0, len(mk.errs)-3):])
	}

	var st fullStatus
	shmtest.CheckFor(t, 60*time.Second, "status does not list three caught-up nodes", func() bool {
		st = ms[writer].status(t)
		if len(st.Nodes) != 3 || len(st.Members) != 3 {
			return false
		}
		for _, n := range st.Nodes {
			if !n.Reachable || n.AppliedIndex == 0 || n.Lag > 0 || n.ID == gone {
				return false
			}
		}
		return st.Leader == "d"
	})
	t.Logf("status: %+v", st.Nodes)
	mk.check(t, "marks", all)

	// A member that is down is listed as unreachable, with the reason.
	other := ""
	for _, n := range []string{"a", "b", "c"} {
		if _, ok := all[n]; ok && n != writer && other == "" {
			other = n
		}
	}
	all[other].h.Stop(t)
	st = all[writer].status(t)
	found := false
	for _, n := range st.Nodes {
		if n.ID == other {
			found = true
			if n.Reachable || n.Error == "" {
				t.Errorf("stopped node %s: %+v, want unreachable with an error", other, n)
			}
		}
	}
	if !found {
		t.Errorf("stopped node %s missing from status: %+v", other, st.Nodes)
	}
	out := all[writer].mustCLI(t, "cluster", "status")
	if !strings.Contains(out, "unreachable") || !strings.Contains(out, "APPLIED") {
		t.Errorf("cluster status text:\n%s", out)
	}
	t.Logf("cluster status with %s down:\n%s", other, out)
}

// TestClusterTLSMembership: three hosts with --tls pin each other's
// certificates on the Raft port and replicate. A fourth host added with
// another certificate's fingerprint gets nothing (the leader refuses the
// certificate it presents); added with its own ("cluster add
// --fingerprint"), without restarting the others, it catches up and has
// its writes forwarded.
func TestClusterTLSMembership(t *testing.T) {
	t.Parallel()
	ms := startMembers(t, true)
	leader := leaderOf(t, ms["a"])
	follower := followerOf(leader)
	ms[follower].mustCLI(t, "write", "over TLS")
	for n, m := range ms {
		shmtest.CheckFor(t, 30*time.Second, "not replicated to "+n, func() bool {
			out, _, code := m.cli(t, "read")
			return code == 0 && out == "over TLS"
		})
	}
	st := ms["a"].status(t)
	for _, n := range st.Nodes {
		want, _ := certs.NormalizeFingerprint(ms[n.ID].fp)
		if n.Fingerprint != want {
			t.Errorf("node %s: pinned fingerprint %q, want %q", n.ID, n.Fingerprint, want)
		}
	}
	pids := map[string]int{}
	for n, m := range ms {
		pids[n] = m.h.PID()
	}

	var fps []string
	for _, n := range []string{"a", "b", "c"} {
		fps = append(fps, n+"="+ms[n].fp)
	}
	// Another host's certificate, never given to anyone.
	wrong := certFor(t, filepath.Join(t.TempDir(), "e"))

	dir := filepath.Join(t.TempDir(), "d")
	d := &member{raft: fmt.Sprintf("127.0.0.1:%d", freePort(t)), fp: certFor(t, dir)}
	d.h = startHostAt(t, dir, "--node", "d", "--raft", d.raft, "--join", "--tls", "--peer-fingerprints", strings.Join(fps, ","))
	if _, errOut, code := ms[follower].cli(t, "cluster", "add", "d", d.raft); code == 0 || !strings.Contains(errOut, "fingerprint") {
		t.Errorf("cluster add on a TLS cluster without --fingerprint: exit %d, stderr %q", code, errOut)
	}
	if _, errOut, code := ms[follower].cli(t, "cluster", "add", "d", d.raft, "--fingerprint", "abc"); code == 0 || !strings.Contains(errOut, "fingerprint") {
		t.Errorf("cluster add --fingerprint abc: exit %d, stderr %q", code, errOut)
	}
	// Added with another certificate's fingerprint, d is a member that
	// nobody can talk to: the leader refuses the certificate d presents,
	// so d gets nothing, and status says why.
	ms[follower].mustCLI(t, "cluster", "add", "d", d.raft, "--fingerprint", wrong)
	shmtest.CheckFor(t, 60*time.Second, "status does not show d refused", func() bool {
		for _, n := range ms["a"].status(t).Nodes {
			if n.ID == "d" {
				return !n.Reachable && strings.Contains(n.Error, "not the one the cluster's configuration pins")
			}
		}
		return false
	})
	if ds := d.status(t); ds.Leader != "" || ds.Applied != 0 {
		t.Errorf("d, pinned to another certificate, follows %q at applied index %d", ds.Leader, ds.Applied)
	}
	if out, _, _ := d.cli(t, "read"); out != "" {
		t.Errorf("d, pinned to another certificate, holds %q", out)
	}
	if _, _, code := d.cli(t, "write", "--timeout", "5s", "from d, refused"); code == 0 {
		t.Error("d, pinned to another certificate, had a write acknowledged")
	}
	// Added again with its own fingerprint (the address's pin changes),
	// it catches up: nobody restarts.
	ms[follower].mustCLI(t, "cluster", "add", "d", d.raft, "--fingerprint", d.fp)
	shmtest.CheckFor(t, 60*time.Second, "d did not catch up over TLS", func() bool {
		out, _, code := d.cli(t, "read")
		return code == 0 && out == "over TLS"
	})
	d.mustCLI(t, "write", "through d")
	for n, m := range ms {
		shmtest.CheckFor(t, 30*time.Second, "d's write not on "+n, func() bool {
			out, _, code := m.cli(t, "read")
			return code == 0 && out == "through d"
		})
		if m.h.PID() != pids[n] {
			t.Errorf("host %s restarted", n)
		}
	}
	st = ms["a"].status(t)
	if len(st.Members) != 4 || len(st.Nodes) != 4 {
		t.Errorf("after the add: members %+v, nodes %+v; want a, b, c, d", st.Members, st.Nodes)
	}
	for _, n := range st.Nodes {
		if !n.Reachable {
			t.Errorf("node %s unreachable: %s", n.ID, n.Error)
		}
	}
}

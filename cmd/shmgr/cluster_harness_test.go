package main_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// testCluster is three "shmgr host" processes forming one cluster, for the
// fault tests (cluster_faults_test.go). With proxies, every node's Raft
// traffic from the others goes through a fault proxy in front of it.
type testCluster struct {
	names []string
	hosts map[string]*shmtest.Host
	// proxies[n] stands in front of node n's Raft port: every --peers
	// entry for n is the proxy's address (nil without proxies).
	proxies map[string]*shmtest.FaultProxy
}

// startProxiedCluster is startCluster with a fault proxy in front of each
// node's Raft port. All nodes get the same --peers, naming the proxies;
// each binds its real port with --raft. So the traffic Raft sends to node
// n (AppendEntries, votes) crosses n's proxy, and cutting that proxy cuts
// n off from the others' Raft. (A node still reaches the others through
// their proxies, and a follower forwards requests to the address the
// leader announces, its real port.)
func startProxiedCluster(t *testing.T) *testCluster {
	t.Helper()
	c := &testCluster{names: []string{"a", "b", "c"}, hosts: map[string]*shmtest.Host{}, proxies: map[string]*shmtest.FaultProxy{}}
	real := map[string]string{}
	var peers []string
	for _, n := range c.names {
		real[n] = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		c.proxies[n] = shmtest.StartFaultProxy(t, real[n])
		peers = append(peers, n+"="+c.proxies[n].Addr())
	}
	for _, n := range c.names {
		c.hosts[n] = startHostAt(t, filepath.Join(t.TempDir(), n), "--node", n, "--raft", real[n], "--peers", strings.Join(peers, ","))
	}
	logOnFailure(t, c.hosts)
	return c
}

// newCluster wraps startCluster.
func newCluster(t *testing.T) *testCluster {
	t.Helper()
	return &testCluster{names: []string{"a", "b", "c"}, hosts: startCluster(t)}
}

// up reports whether node n's process runs.
func (c *testCluster) up(n string) bool { return c.hosts[n].PID() != 0 }

// tryStatus is status without failing the test: ok is false if the host
// does not answer (it is down, or its answer is not JSON).
func tryStatus(t testing.TB, h *shmtest.Host) (st clusterStatus, ok bool) {
	t.Helper()
	if h.PID() == 0 {
		return st, false
	}
	out, _, code := h.CLI(t, nil, "cluster", "status", "--json")
	if code != 0 {
		return st, false
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, false
	}
	return st, true
}

// leader waits until every running node except those in skip names the
// same leader, itself running and not skipped, and says it leads; it
// returns that leader.
func (c *testCluster) leader(t testing.TB, skip ...string) string {
	t.Helper()
	skipped := func(n string) bool {
		for _, s := range skip {
			if s == n {
				return true
			}
		}
		return false
	}
	var leader string
	shmtest.CheckFor(t, 60*time.Second, "the nodes agree on no leader", func() bool {
		leader = ""
		for _, n := range c.names {
			if skipped(n) || !c.up(n) {
				continue
			}
			st, ok := tryStatus(t, c.hosts[n])
			if !ok {
				return false
			}
			if st.Leader == "" || leader != "" && st.Leader != leader {
				return false
			}
			leader = st.Leader
		}
		if leader == "" || skipped(leader) || !c.up(leader) {
			return false
		}
		st, ok := tryStatus(t, c.hosts[leader])
		return ok && st.State == "Leader"
	})
	return leader
}

// followers returns the nodes other than leader, in name order.
func (c *testCluster) followers(leader string) []string {
	var out []string
	for _, n := range c.names {
		if n != leader {
			out = append(out, n)
		}
	}
	return out
}

// cut partitions node n from the others' Raft traffic: its proxy drops
// every byte both ways and its links are closed, so the connections made
// afterwards carry nothing either.
func (c *testCluster) cut(n string) {
	p := c.proxies[n]
	p.Blackhole(shmtest.ToHost, true)
	p.Blackhole(shmtest.ToClient, true)
	p.Reset()
}

// heal undoes cut: faults cleared, and the links that lost bytes closed so
// that Raft dials afresh.
func (c *testCluster) heal(n string) {
	p := c.proxies[n]
	p.Heal()
	p.Reset()
}

// dialRegion opens region id on h in mode and closes it when the test
// ends.
func dialRegion(t testing.TB, h *shmtest.Host, id string, mode client.Mode) *client.Region {
	t.Helper()
	o := client.DefaultOptions()
	o.Mode = mode
	o.RequestTimeout = 2 * time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		r, err := client.Dial(ctx, h.Addr, id, o)
		if err == nil {
			t.Cleanup(func() { r.Close() })
			return r
		}
		// A node that restarts with a log and no snapshot replays the log
		// onto an emptied host: the region is back once the node has
		// caught up (docs/CLUSTER.md, "Restart").
		if !errors.Is(err, client.ErrNotFound) || ctx.Err() != nil {
			t.Fatalf("dial %s region %q (%v): %v", h.Addr, id, mode, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// readOn reads region id on h over TCP, without failing the test (the
// host may be down).
func readOn(h *shmtest.Host, id string) ([]byte, uint64, error) {
	o := client.DefaultOptions()
	o.Mode = client.ModeTCP
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := client.Dial(ctx, h.Addr, id, o)
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	return r.ReadVersion(ctx)
}

// converge waits until region id reads, on every node, want at version
// ver, and fails the test with what each node holds if it does not.
func (c *testCluster) converge(t testing.TB, id string, want []byte, ver uint64, timeout time.Duration) {
	t.Helper()
	for _, n := range c.names {
		var got []byte
		var v uint64
		var err error
		ok := shmtest.Poll(timeout, func() bool {
			got, v, err = readOn(c.hosts[n], id)
			return err == nil && v == ver && string(got) == string(want)
		})
		if !ok {
			t.Errorf("node %s region %q: %q at version %d (err %v), want %q at version %d", n, id, trim(string(got)), v, err, trim(string(want)), ver)
		}
	}
}

// rawClient speaks the text protocol on one connection, for requests the
// client library makes on its own: a keyed SET with a client id and
// sequence number the test chooses, sent again to another host.
type rawClient struct {
	nc net.Conn
	br *bufio.Reader
}

// dialHost connects to addr and reads the metadata line.
func dialHost(addr string) (*rawClient, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c := &rawClient{nc: nc, br: bufio.NewReader(nc)}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.br.ReadString('\n'); err != nil {
		nc.Close()
		return nil, fmt.Errorf("%s: metadata line: %w", addr, err)
	}
	return c, nil
}

func (c *rawClient) Close() error { return c.nc.Close() }

// reply is one parsed reply line: OK <version>, ERROR <code> <text>, or
// VALUE <version> <len> with its payload.
type reply struct {
	kind    string // "OK", "ERROR", "VALUE"
	version uint64
	code    string
	text    string
	payload []byte
}

// do sends req and reads one reply, all within timeout. An error means
// the connection failed: the request may or may not have been applied.
func (c *rawClient) do(req []byte, timeout time.Duration) (reply, error) {
	c.nc.SetDeadline(time.Now().Add(timeout))
	if _, err := c.nc.Write(req); err != nil {
		return reply{}, err
	}
	line, err := c.br.ReadString('\n')
	if err != nil {
		return reply{}, err
	}
	line = strings.TrimSuffix(line, "\n")
	f := strings.Fields(line)
	var r reply
	if len(f) > 0 {
		r.kind = f[0]
	}
	switch {
	case r.kind == "OK" && len(f) >= 2:
		r.version, err = strconv.ParseUint(f[1], 10, 64)
	case r.kind == "ERROR" && len(f) >= 2:
		r.code, r.text = f[1], line
	case r.kind == "VALUE" && len(f) == 3:
		if r.version, err = strconv.ParseUint(f[1], 10, 64); err != nil {
			break
		}
		var n int
		if n, err = strconv.Atoi(f[2]); err != nil {
			break
		}
		r.payload = make([]byte, n+1)
		if _, err = io.ReadFull(c.br, r.payload); err == nil {
			r.payload = r.payload[:n]
		}
	default:
		err = fmt.Errorf("unexpected reply %q", trim(line))
	}
	return r, err
}

// keyedSet is "SET id len cid=cid seq=seq\npayload\n": a write with an
// idempotency key of the test's choosing.
func keyedSet(id, cid string, seq uint64, payload []byte) []byte {
	b := fmt.Appendf(nil, "SET %s %d cid=%s seq=%d\n", id, len(payload), cid, seq)
	b = append(b, payload...)
	return append(b, '\n')
}

// hashRegion reads region r (mapped, or over TCP) in pieces and returns
// the SHA-256 of its content with the version it was read at; ok is false
// if the version moved between pieces, or a read failed (a restarting
// host may replace the region under it).
func hashRegion(t testing.TB, r *client.Region, size int64) (sum string, ver uint64, ok bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := sha256.New()
	const piece = 16 << 20
	first := true
	for off := int64(0); off < size; off += piece {
		b, v, err := r.ReadAt(ctx, off, min(piece, size-off))
		if err != nil {
			// A restarting host may replace the region under the read.
			t.Logf("read region %q at %d: %v", r.ID(), off, err)
			return "", v, false
		}
		if first {
			ver, first = v, false
		} else if v != ver {
			return "", v, false
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), ver, true
}

// sum is the hex SHA-256 of b.
func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

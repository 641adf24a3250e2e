package main_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/shmtest"
)

// clusterStatus is the part of "shmgr cluster status --json" the tests
// read.
type clusterStatus struct {
	ID      string `json:"id"`
	State   string `json:"state"`
	Leader  string `json:"leader"`
	Applied uint64 `json:"applied_index"`
	Commit  uint64 `json:"commit_index"`
	Lag     uint64 `json:"lag"`
	Members []struct {
		ID      string `json:"id"`
		Address string `json:"address"`
		Voter   bool   `json:"voter"`
		Leader  bool   `json:"leader"`
	} `json:"members"`
}

// readResult is "shmgr read --json".
type readResult struct {
	Content string `json:"content"`
	Version uint64 `json:"version"`
}

// startCluster starts three "shmgr host" processes on loopback, each its
// own data directory (named after its node), forming one cluster, with
// args as further host flags, and returns them by node name.
func startCluster(t *testing.T, args ...string) map[string]*shmtest.Host {
	t.Helper()
	names := []string{"a", "b", "c"}
	var peers []string
	for _, n := range names {
		peers = append(peers, fmt.Sprintf("%s=127.0.0.1:%d", n, freePort(t)))
	}
	hosts := map[string]*shmtest.Host{}
	for _, n := range names {
		hosts[n] = startHostAt(t, filepath.Join(t.TempDir(), n), append([]string{"--node", n, "--peers", strings.Join(peers, ",")}, args...)...)
	}
	logOnFailure(t, hosts)
	return hosts
}

// logOnFailure logs the end of every host's log if the test fails: what
// a host saw is most of what explains a cluster test's failure.
func logOnFailure(t *testing.T, hosts map[string]*shmtest.Host) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		names := make([]string, 0, len(hosts))
		for n := range hosts {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			lines := strings.Split(strings.TrimRight(hosts[n].Stderr(), "\n"), "\n")
			if len(lines) > 60 {
				lines = lines[len(lines)-60:]
			}
			t.Logf("host %s, the end of its log:\n%s", n, strings.Join(lines, "\n"))
		}
	})
}

// status runs cluster status --json against h.
func status(t *testing.T, h *shmtest.Host) clusterStatus {
	t.Helper()
	var st clusterStatus
	cliJSON(t, h, &st, "cluster", "status", "--json")
	return st
}

// clusterLeader waits until host a names a leader and returns its name.
func clusterLeader(t *testing.T, hosts map[string]*shmtest.Host) string {
	t.Helper()
	var leader string
	shmtest.CheckFor(t, 30*time.Second, "no node names a leader", func() bool {
		leader = status(t, hosts["a"]).Leader
		return leader != ""
	})
	return leader
}

// followerOf names a node of a, b and c other than leader.
func followerOf(leader string) string {
	if leader == "a" {
		return "b"
	}
	return "a"
}

// TestClusterWriteThroughFollower: three host processes form a cluster; a
// write sent to a follower is read, at the same content and version, on
// all three, and cluster status names one leader and three nodes.
func TestClusterWriteThroughFollower(t *testing.T) {
	t.Parallel()
	hosts := startCluster(t)
	leader := clusterLeader(t, hosts)
	follower := followerOf(leader)
	for n, h := range hosts {
		st := status(t, h)
		if st.ID != n {
			t.Errorf("host %s: cluster status id = %q", n, st.ID)
		}
		if len(st.Members) != 3 {
			t.Errorf("host %s: %d members, want 3: %+v", n, len(st.Members), st.Members)
		}
		leaders := 0
		for _, m := range st.Members {
			if m.Leader {
				leaders++
				if m.ID != leader {
					t.Errorf("host %s marks %s the leader, a says %s", n, m.ID, leader)
				}
			}
		}
		if leaders > 1 {
			t.Errorf("host %s: %d leaders marked", n, leaders)
		}
	}

	hosts[follower].MustCLI(t, "write", "replicated through "+follower)
	hosts[follower].MustCLI(t, "write", "--offset", "0", "R")
	want := "Replicated through " + follower
	// The follower answered once the write was committed and applied on
	// it; the others apply it a replication lag later.
	for n, h := range hosts {
		var got readResult
		ok := shmtest.Poll(10*time.Second, func() bool {
			cliJSON(t, h, &got, "read", "--json")
			return got.Content == want && got.Version == 2
		})
		if !ok {
			t.Errorf("host %s: read %q at version %d, want %q at version 2", n, got.Content, got.Version, want)
		}
	}
	// The follower had applied its write before it answered.
	var got readResult
	cliJSON(t, hosts[follower], &got, "read", "--json")
	if got.Version != 2 {
		t.Errorf("follower %s: version %d right after its acknowledged writes, want 2", follower, got.Version)
	}

	// A follower stopped and started again rejoins from its data
	// directory, replays the log onto its host and sees a write made
	// while it was down.
	hosts[follower].Stop(t)
	hosts[leader].MustCLI(t, "write", "written while "+follower+" was down")
	hosts[follower].Restart(t)
	shmtest.CheckFor(t, 20*time.Second, "the restarted follower did not catch up", func() bool {
		cliJSON(t, hosts[follower], &got, "read", "--json")
		return got.Content == "written while "+follower+" was down" && got.Version == 3
	})

	// A conditional write on a stale version is refused by the log, on
	// every host alike: nothing changes.
	_, errOut, code := hosts[leader].CLI(t, nil, "write", "--if-version", "1", "stale")
	if code == 0 || !strings.Contains(errOut, "conflict") {
		t.Errorf("write --if-version 1 at version 3: exit %d, stderr %q; want a conflict", code, errOut)
	}

	// CREATE and DELETE through a follower reach every host.
	hosts[follower].MustCLI(t, "create", "shared", "--size", "1024")
	for n, h := range hosts {
		shmtest.CheckFor(t, 10*time.Second, "region shared not created on "+n, func() bool {
			_, ok := listRegions(t, h)["shared"]
			return ok
		})
	}
	hosts[leader].MustCLI(t, "rm", "shared")
	for n, h := range hosts {
		shmtest.CheckFor(t, 10*time.Second, "region shared not deleted on "+n, func() bool {
			_, ok := listRegions(t, h)["shared"]
			return !ok
		})
	}

	// The metadata line tells mapping clients to send their writes to
	// the host; a lease is granted by the log (cluster_lease_test.go).
	nc, br, meta := shmtest.Dial(t, hosts[follower].Addr, 10*time.Second)
	if !strings.Contains(meta, `"replicated"`) {
		t.Errorf("metadata line of a cluster node lacks the replicated feature: %s", meta)
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write([]byte("LOCK default lease=1000\n")); err != nil {
		t.Fatal(err)
	}
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(line, "OK ") {
		t.Errorf("LOCK on a cluster node: %q, want OK <token>", line)
	}
}

// TestClusterFlags: the host refuses cluster flags that cannot form a
// node, saying which flag is wrong, before it touches its data directory.
func TestClusterFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"peers-without-node", []string{"--peers", "a=127.0.0.1:1,b=127.0.0.1:2"}, "--peers needs --node"},
		{"node-without-peers", []string{"--node", "a"}, "need --peers"},
		{"raft-without-peers", []string{"--raft", "127.0.0.1:1"}, "need --peers"},
		{"node-not-a-peer", []string{"--node", "z", "--peers", "a=127.0.0.1:1,b=127.0.0.1:2"}, `node "z" is not among the peers (a, b)`},
		{"peer-without-address", []string{"--node", "a", "--peers", "a=127.0.0.1:1,b"}, `peer "b": write it as NAME=HOST:PORT`},
		{"peer-bad-address", []string{"--node", "a", "--peers", "a=127.0.0.1:1,b=nowhere"}, `peer "b": address "nowhere"`},
		{"peer-twice", []string{"--node", "a", "--peers", "a=127.0.0.1:1,a=127.0.0.1:2"}, `peer "a" is named twice`},
		{"same-address", []string{"--node", "a", "--peers", "a=127.0.0.1:1,b=127.0.0.1:1"}, "have the same address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "host")
			args := append([]string{"host", "--listen", "127.0.0.1:0", "--data-dir", dir}, tt.args...)
			_, errOut, code := shmtest.Run(t, nil, args...)
			if code != 2 || !strings.Contains(errOut, tt.want) {
				t.Errorf("shmgr %v: exit %d, stderr %q; want exit 2 and %q", args, code, errOut, tt.want)
			}
			if exists(t, dir) {
				t.Errorf("shmgr %v made its data directory although it refused to start", args)
			}
		})
	}
}

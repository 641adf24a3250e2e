//go:build linux

package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// stoppedState reads a process's state letter from /proc (T: stopped).
func stoppedState(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces, so look after the last ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] == "T"
}

// TestClusterConsistentReadCLI: a write through the leader is what
// "shmgr read --consistent" prints on each follower at once, with no
// waiting for replication (mapped and over TCP); a follower whose two
// peers are stopped refuses --consistent with an unavailable error that
// names the leader, but still serves a plain read of its copy; once they
// run again it serves the consistent read, with the last write.
func TestClusterConsistentReadCLI(t *testing.T) {
	t.Parallel()
	hosts := startCluster(t)
	leader := clusterLeader(t, hosts)
	var followers []string
	for _, n := range []string{"a", "b", "c"} {
		if n != leader {
			followers = append(followers, n)
		}
	}
	for i := range 3 {
		want := fmt.Sprintf("linearizable %d", i)
		hosts[leader].MustCLI(t, "write", want)
		for _, f := range followers {
			for _, mode := range []string{"local", "tcp"} {
				var got readResult
				cliJSON(t, hosts[f], &got, "read", "--consistent", "--json", "--mode", mode)
				if got.Content != want || got.Version != uint64(i+1) {
					t.Errorf("follower %s (%s): read --consistent = %q at version %d right after the leader acknowledged %q, want version %d", f, mode, got.Content, got.Version, want, i+1)
				}
			}
		}
	}
	// A range, consistently.
	if out := hosts[followers[0]].MustCLI(t, "read", "--consistent", "--offset", "0", "--length", "12"); out != "linearizable" {
		t.Errorf("read --consistent --offset 0 --length 12 = %q, want %q", out, "linearizable")
	}

	// Cut one follower off: both other nodes stopped.
	f := followers[0]
	others := []*shmtest.Host{hosts[leader], hosts[followers[1]]}
	stopped := true
	t.Cleanup(func() {
		if stopped {
			for _, h := range others {
				syscall.Kill(h.PID(), syscall.SIGCONT)
			}
		}
	})
	for _, h := range others {
		if err := syscall.Kill(h.PID(), syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	// kill(2) returns before the target has stopped: wait until both are.
	for _, h := range others {
		shmtest.CheckFor(t, 10*time.Second, "a host did not stop", func() bool { return stoppedState(h.PID()) })
	}
	for _, mode := range []string{"local", "tcp"} {
		out, errOut, code := hosts[f].CLI(t, nil, "read", "--consistent", "--mode", mode)
		if code == 0 {
			t.Errorf("cut-off follower %s (%s): read --consistent printed %q and exit 0; want a refusal", f, mode, out)
		}
		if !strings.Contains(errOut, "unavailable") || !strings.Contains(errOut, "cannot reach the cluster's leader") {
			t.Errorf("cut-off follower %s (%s): read --consistent: stderr %q; want an unavailable error saying the node cannot reach the leader", f, mode, errOut)
		}
	}
	var got readResult
	cliJSON(t, hosts[f], &got, "read", "--json")
	if got.Content != "linearizable 2" || got.Version != 3 {
		t.Errorf("cut-off follower %s: plain read = %q at version %d, want its copy %q at version 3", f, got.Content, got.Version, "linearizable 2")
	}

	for _, h := range others {
		if err := syscall.Kill(h.PID(), syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	}
	stopped = false
	shmtest.CheckFor(t, 60*time.Second, "no consistent read on the healed follower", func() bool {
		_, _, code := hosts[f].CLI(t, nil, "read", "--consistent")
		return code == 0
	})
	var nl string
	shmtest.CheckFor(t, 30*time.Second, "no leader after healing", func() bool {
		nl = status(t, hosts[f]).Leader
		return nl != ""
	})
	hosts[nl].MustCLI(t, "write", "after healing")
	for n, h := range hosts {
		if n == nl {
			continue
		}
		cliJSON(t, h, &got, "read", "--consistent", "--json")
		if got.Content != "after healing" || got.Version != 4 {
			t.Errorf("host %s after healing: read --consistent = %q at version %d, want %q at version 4", n, got.Content, got.Version, "after healing")
		}
	}
}

// BenchmarkClusterRead: a 4 KiB read of a follower's default region and
// of the leader's, plain and consistent, mapped and over TCP, against
// three host processes. A consistent read adds the round trip to the
// leader and the leader's heartbeat to a majority (a mapped one sends only
// the barrier over TCP and still copies from the mapping).
func BenchmarkClusterRead(b *testing.B) {
	names := []string{"a", "b", "c"}
	var peers []string
	for _, n := range names {
		peers = append(peers, n+"="+shmtest.FreeAddr(b))
	}
	hosts := map[string]*shmtest.Host{}
	for _, n := range names {
		hosts[n] = shmtest.StartHostIn(b, filepath.Join(b.TempDir(), n), "--node", n, "--peers", strings.Join(peers, ","))
	}
	ctx := context.Background()
	var leader string
	shmtest.CheckFor(b, 30*time.Second, "no leader", func() bool {
		var st clusterStatus
		out, _, code := hosts["a"].CLI(b, nil, "cluster", "status", "--json")
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
			return false
		}
		leader = st.Leader
		return leader != ""
	})
	follower := followerOf(leader)
	hosts[leader].MustCLI(b, "create", "bench", "--size", "8192")
	hosts[leader].MustCLI(b, "write", "--id", "bench", strings.Repeat("x", 4096))
	for _, role := range []string{"follower", "leader"} {
		addr := hosts[follower].Addr
		if role == "leader" {
			addr = hosts[leader].Addr
		}
		for _, mode := range []client.Mode{client.ModeLocal, client.ModeTCP} {
			o := client.DefaultOptions()
			o.Mode = mode
			r, err := client.Dial(ctx, addr, "bench", o)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { r.Close() })
			for _, consistent := range []bool{false, true} {
				b.Run(fmt.Sprintf("host=%s/mode=%v/consistent=%v", role, mode, consistent), func(b *testing.B) {
					b.SetBytes(4096)
					buf := make([]byte, 0, 8192)
					ro := client.ReadOptions{Consistent: consistent}
					for b.Loop() {
						var err error
						if buf, _, err = r.AppendReadWith(ctx, buf[:0], ro); err != nil || len(buf) != 4096 {
							b.Fatalf("read: %d bytes, %v", len(buf), err)
						}
					}
				})
			}
		}
	}
}

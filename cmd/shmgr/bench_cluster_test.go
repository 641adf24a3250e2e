package main_test

import (
	"testing"
)

// TestBenchCluster runs bench against a cluster of three host processes:
// replicated writes through the leader and through a follower, and the
// lag test (writes through the leader, a mapping of the follower's region
// watching the version). Each write is counted once: the region's
// version on the follower is the number of writes.
func TestBenchCluster(t *testing.T) {
	t.Parallel()
	hosts := startCluster(t)
	leader := clusterLeader(t, hosts)
	follower := followerOf(leader)
	l, f := hosts[leader], hosts[follower]

	res := runBench(t, "-q", "--host", f.Addr, "--id", "cw", "-t", "write", "-c", "4", "-d", "4096", "-n", "40")
	checkResults(t, "through a follower", res, []string{"write"}, 40)
	res = runBench(t, "-q", "--host", l.Addr, "--id", "cw", "-t", "write", "-c", "4", "-d", "4096", "-n", "40")
	checkResults(t, "through the leader", res, []string{"write"}, 40)
	res = runBench(t, "-q", "--host", l.Addr, "--follower", f.Addr, "--id", "cw", "-t", "lag", "-c", "1", "-d", "4096", "-n", "30")
	checkResults(t, "lag", res, []string{"lag"}, 30)

	// prepare's SET, then 40 + 40 writes, prepare's SET again, 30 lag
	// writes (CREATE of an existing region changes nothing).
	var got readResult
	cliJSON(t, f, &got, "read", "--id", "cw", "--json")
	if want := uint64(1 + 40 + 1 + 40 + 1 + 30); got.Version != want {
		t.Errorf("follower's region at version %d after the runs, want %d", got.Version, want)
	}
}

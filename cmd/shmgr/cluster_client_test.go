package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shm"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// mappingPerms returns the permission field ("r--s", "rw-s") of this
// process's mapping of the file path, from /proc/self/maps ("" if it is
// not mapped).
func mappingPerms(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// address perms offset dev inode path
		fs := strings.Fields(sc.Text())
		if len(fs) >= 6 && fs[5] == path {
			return fs[1]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return ""
}

// clientMapping opens the default region of h with a mapping client and
// returns it with the permissions of its data and control mappings.
func clientMapping(t *testing.T, h *shmtest.Host) (r *client.Region, data, ctl string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := client.Dial(ctx, h.Addr, "", client.Options{Mode: client.ModeLocal})
	if err != nil {
		t.Fatalf("Dial(%s) mapped: %v", h.Addr, err)
	}
	t.Cleanup(func() { r.Close() })
	in := r.Info()
	return r, mappingPerms(t, filepath.Join("/dev/shm", in.OSName)), mappingPerms(t, filepath.Join("/dev/shm", in.CtlName))
}

// TestClusterMappingReadOnly: a client on a cluster node maps the region
// with its data object read-only (a stray store faults instead of making
// this replica differ), reads zero-copy from the mapping and writes
// through the host; on a single host the mapping stays read-write.
func TestClusterMappingReadOnly(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/maps")
	}
	t.Parallel()
	hosts := startCluster(t)
	leader := clusterLeader(t, hosts)
	follower := followerOf(leader)
	r, data, ctl := clientMapping(t, hosts[follower])
	if r.Mode() != client.ModeLocal {
		t.Fatalf("mode on a cluster node = %v (%s), want local", r.Mode(), r.WhyNotLocal())
	}
	if data != "r--s" {
		t.Errorf("data object mapped %q on a cluster node, want r--s", data)
	}
	if ctl != "rw-s" {
		t.Errorf("control block mapped %q on a cluster node, want rw-s (owner slots, waiters)", ctl)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := r.Write(ctx, []byte("through the log"))
	if err != nil {
		t.Fatalf("Write on a read-only mapping's region: %v", err)
	}
	// The host answered once the write was applied on this node: the
	// mapping shows it.
	got, gv, err := r.ReadVersion(ctx)
	if err != nil || string(got) != "through the log" || gv != v {
		t.Errorf("ReadVersion = %q, %d, %v; want %q, %d", got, gv, err, "through the log", v)
	}
	if _, err := r.WriteAt(ctx, 0, []byte("T")); err != nil {
		t.Errorf("WriteAt: %v", err)
	}
	if got, err := r.Read(ctx); err != nil || string(got) != "Through the log" {
		t.Errorf("Read after WriteAt = %q, %v", got, err)
	}
	// Another node applied the same writes.
	var rr readResult
	shmtest.CheckFor(t, 10*time.Second, "the leader did not apply the mapped client's writes", func() bool {
		cliJSON(t, hosts[leader], &rr, "read", "--json")
		return rr.Content == "Through the log"
	})

	single := startHost(t)
	r1, data, ctl := clientMapping(t, single)
	if r1.Mode() != client.ModeLocal || data != "rw-s" || ctl != "rw-s" {
		t.Errorf("single host: mode %v, data %q, control %q; want local, rw-s, rw-s", r1.Mode(), data, ctl)
	}
	if _, err := r1.Write(ctx, []byte("local")); err != nil {
		t.Errorf("single host: Write: %v", err)
	}
}

// TestClusterHostList: every client command takes --host as a list of a
// cluster's hosts and uses the first that answers; a malformed list is a
// usage error.
func TestClusterHostList(t *testing.T) {
	t.Parallel()
	hosts := startCluster(t)
	shmtest.CheckFor(t, 30*time.Second, "no node names a leader", func() bool {
		return status(t, hosts["a"]).Leader != ""
	})
	hosts["a"].Kill(t)
	list := hosts["a"].Addr + "," + hosts["b"].Addr + "," + hosts["c"].Addr
	var rr readResult
	shmtest.CheckFor(t, 30*time.Second, "write --host LIST failed with its first host down", func() bool {
		_, _, code := shmtest.Run(t, nil, "write", "--host", list, "through the list")
		return code == 0
	})
	out, errOut, code := shmtest.Run(t, nil, "read", "--json", "--host", list)
	if code != 0 {
		t.Fatalf("read --host %s: exit %d: %s", list, code, errOut)
	}
	if err := json.Unmarshal([]byte(out), &rr); err != nil || rr.Content != "through the list" {
		t.Errorf("read --host LIST = %q (%v), want %q", out, err, "through the list")
	}
	for _, bad := range []string{hosts["b"].Addr + ",", hosts["b"].Addr + ",nowhere:99999"} {
		_, errOut, code := shmtest.Run(t, nil, "read", "--host", bad)
		if code != 2 || !strings.Contains(errOut, "--host") {
			t.Errorf("read --host %q: exit %d, stderr %q; want a usage error about --host", bad, code, errOut)
		}
	}
}

// TestClusterOutsideWriteReported: a program that writes a cluster
// node's region straight into its shared memory (read-write, as the
// documented layout allows) is reported by that node within seconds, in
// cluster status --json; the other nodes, which only the log writes,
// report nothing.
func TestClusterOutsideWriteReported(t *testing.T) {
	t.Parallel()
	hosts := startCluster(t)
	shmtest.CheckFor(t, 30*time.Second, "no node names a leader", func() bool {
		return status(t, hosts["a"]).Leader != ""
	})
	hosts["b"].MustCLI(t, "write", "through the log")
	in := regionInfo(t, hosts["b"], "default")
	data, err := shm.Open(in.OSName, in.Size)
	if err != nil {
		t.Fatal(err)
	}
	defer data.Close()
	// The documented layout: take the offset-0 flag, write, let go.
	b := data.Bytes()
	b[region.LockOffset] = 1
	b[region.DataOffset] = 'T'
	b[region.LockOffset] = 0
	outside := func(h *shmtest.Host) uint64 {
		var st struct {
			OutsideWrites uint64 `json:"outside_writes"`
		}
		cliJSON(t, h, &st, "cluster", "status", "--json")
		return st.OutsideWrites
	}
	shmtest.CheckFor(t, 20*time.Second, "node b did not report the write outside the log", func() bool { return outside(hosts["b"]) == 1 })
	// slog quotes the message: the region's name is escaped in it.
	if !strings.Contains(hosts["b"].Stderr(), `level=ERROR msg="cluster: REGION WRITTEN OUTSIDE THE LOG: region \"default\"`) {
		t.Errorf("node b's log does not name the region in an error:\n%s", hosts["b"].Stderr())
	}
	st := hosts["b"].MustCLI(t, "cluster", "status")
	if !strings.Contains(st, "WARNING: this replica differs from the others: 1 change written outside the log") {
		t.Errorf("cluster status on b does not warn of the write outside the log:\n%s", st)
	}
	for _, n := range []string{"a", "c"} {
		if got := outside(hosts[n]); got != 0 {
			t.Errorf("node %s reports %d writes outside the log, want 0", n, got)
		}
	}
}

package main_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/shmtest"
)

// startRESPCluster is startCluster with --resp-listen on each host; it
// returns the hosts and their RESP addresses by node name.
func startRESPCluster(t *testing.T) (map[string]*shmtest.Host, map[string]string) {
	t.Helper()
	names := []string{"a", "b", "c"}
	var peers []string
	for _, n := range names {
		peers = append(peers, fmt.Sprintf("%s=127.0.0.1:%d", n, freePort(t)))
	}
	hosts, addrs := map[string]*shmtest.Host{}, map[string]string{}
	for _, n := range names {
		hosts[n] = startHostAt(t, filepath.Join(t.TempDir(), n), "--node", n, "--peers", strings.Join(peers, ","), "--resp-listen", "127.0.0.1:0")
		addrs[n], _, _ = strings.Cut(bannerValue(t, hosts[n], "redis"), " ")
	}
	return hosts, addrs
}

// redisCLI runs redis-cli against addr and returns its output, trimmed.
func redisCLI(t *testing.T, bin, addr string, args ...string) string {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	out, err := exec.Command(bin, append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli -p %s %v: %v\n%s", port, args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestClusterRESP: three hosts with --resp-listen form a cluster; a SET
// through one host's Redis listener is read by GET on the others (writes
// go through the log, reads are each host's copy), and a RESP client
// subscribed on one host is told of writes made through another, for a
// key that existed and for one a write creates.
func TestClusterRESP(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli is not installed (apt-get install redis-tools; .ci/run installs it)")
	}
	hosts, addrs := startRESPCluster(t)
	clusterLeader(t, hosts)

	if got := redisCLI(t, bin, addrs["b"], "SET", "k", "v"); got != "OK" {
		t.Fatalf("redis-cli SET k v on b = %q, want OK", got)
	}
	for _, n := range []string{"a", "c"} {
		var got string
		ok := shmtest.Poll(10*time.Second, func() bool {
			got = redisCLI(t, bin, addrs[n], "GET", "k")
			return got == "v"
		})
		if !ok {
			t.Errorf("redis-cli GET k on %s = %q, want v", n, got)
		}
	}
	// The shmgr protocol sees the same region, at the same version, on
	// every host.
	for n, h := range hosts {
		var got readResult
		ok := shmtest.Poll(10*time.Second, func() bool {
			cliJSON(t, h, &got, "read", "--id", "k", "--json")
			return got.Content == "v"
		})
		if !ok || got.Version != 1 {
			t.Errorf("host %s: shmgr read --id k = %q at version %d, want v at version 1", n, got.Content, got.Version)
		}
	}

	sub := dialRESP(t, addrs["c"])
	if r := sub.do("SUBSCRIBE", "__keyspace@0__:k"); len(r.Elems) != 3 {
		t.Fatalf("SUBSCRIBE on c = %s", r)
	}
	if r := sub.do("PSUBSCRIBE", "__keyspace@0__:new*"); len(r.Elems) != 3 {
		t.Fatalf("PSUBSCRIBE on c = %s", r)
	}
	w := dialRESP(t, addrs["a"])
	if r := w.do("SET", "k", "from a"); r.String() != "OK" {
		t.Fatalf("SET k on a = %s", r)
	}
	if r := sub.read(); r.String()[1:] != `["message" "__keyspace@0__:k" "set"]` {
		t.Errorf("subscriber on c after SET k on a: %s", r)
	}
	if r := w.do("SET", "newkey", "made on a"); r.String() != "OK" {
		t.Fatalf("SET newkey on a = %s", r)
	}
	if r := sub.read(); r.String()[1:] != `["pmessage" "__keyspace@0__:new*" "__keyspace@0__:newkey" "set"]` {
		t.Errorf("subscriber on c after SET of a new key on a: %s", r)
	}
	if r := w.do("DEL", "newkey"); r.String() != "(integer 1)" {
		t.Fatalf("DEL newkey on a = %s", r)
	}
	if r := sub.read(); r.String()[1:] != `["pmessage" "__keyspace@0__:new*" "__keyspace@0__:newkey" "del"]` {
		t.Errorf("subscriber on c after DEL on a: %s", r)
	}
	// A transaction on a follower's listener commits through the log too.
	tx := dialRESP(t, addrs["b"])
	tx.send([]string{"MULTI"}, []string{"SET", "k", "in a transaction"}, []string{"GET", "k"}, []string{"EXEC"})
	for _, want := range []string{"OK", "QUEUED", "QUEUED", `*["OK" "in a transaction"]`} {
		if r := tx.read(); r.String() != want && r.String() != strings.ReplaceAll(want, `"OK"`, "OK") {
			t.Errorf("transaction on b: %s, want %s", r, want)
		}
	}
	if r := sub.read(); r.String()[1:] != `["message" "__keyspace@0__:k" "set"]` {
		t.Errorf("subscriber on c after the transaction on b: %s", r)
	}
}

package daemon

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/certs"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// clusterConfig is testConfig as the one node of a one-node cluster on a
// free loopback Raft port.
func clusterConfig(t *testing.T, dir string) (Config, string) {
	t.Helper()
	cfg := testConfig(t, dir, &shmtest.Buffer{})
	raft := freePort(t)
	cfg.Cluster = &ClusterConfig{Node: "a", Peers: map[string]string{"a": raft}}
	return cfg, raft
}

// writeDefault writes p to the default region of the host at addr and
// returns the new version.
func writeDefault(t *testing.T, addr string, p string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), ioTimeout)
	defer cancel()
	r, err := client.Dial(ctx, addr, "", client.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	v, err := r.Write(ctx, []byte(p))
	if err != nil {
		t.Fatalf("write %q: %v", p, err)
	}
	return v
}

// noRaftGoroutines fails the test unless every goroutine of Raft has
// ended: the daemon closed its node.
func noRaftGoroutines(t *testing.T) {
	t.Helper()
	var stacks string
	ok := shmtest.Poll(ioTimeout, func() bool {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		return !strings.Contains(stacks, "hashicorp/raft") && !strings.Contains(stacks, "shmgr/internal/cluster.")
	})
	if !ok {
		t.Fatalf("Raft goroutines still run after Close:\n%s", stacks)
	}
}

// TestClusterNode: a daemon with Config.Cluster runs a node over its
// host, writes go through its log, and Close closes the node (its port
// is free, its goroutines ended).
func TestClusterNode(t *testing.T) {
	dir := t.TempDir()
	cleanShm(t, dir)
	cfg, raft := clusterConfig(t, dir)
	d := start(t, cfg)
	if d.Node() == nil {
		t.Fatal("Node() is nil with Config.Cluster set")
	}
	shmtest.CheckFor(t, ioTimeout, "the one node never led", d.Node().IsLeader)
	before := d.Node().Status().AppliedIndex
	if v := writeDefault(t, d.Addr().String(), "through the log"); v != 1 {
		t.Errorf("first write: version %d, want 1", v)
	}
	if after := d.Node().Status().AppliedIndex; after <= before {
		t.Errorf("applied index %d after a write, %d before: the write did not go through the log", after, before)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	released(t, raft)
	noRaftGoroutines(t)
	checkNoGoroutines(t)

	// A restart in the same process is not tested here: raft-wal v0.4.0
	// leaves its meta database's flock held after Close, so a second
	// Start in one process would block on it. cmd/shmgr restarts a node
	// as a new process.
}

// TestClusterNodeTLS: a cluster host with TLS runs its Raft port on the
// host's certificate: a node that presents the host's own certificate (a
// member's) is answered, a program with another certificate, or plain
// TCP, is not; Members carries the host's pinned fingerprint.
func TestClusterNodeTLS(t *testing.T) {
	dir := t.TempDir()
	cleanShm(t, dir)
	cfg, raft := clusterConfig(t, dir)
	cfg.TLS = true
	d := start(t, cfg)
	shmtest.CheckFor(t, ioTimeout, "the one node never led", d.Node().IsLeader)
	ms, err := d.Node().Members()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := certs.NormalizeFingerprint(d.Fingerprint())
	if len(ms) != 1 || ms[0].Fingerprint != want || ms[0].Address != raft {
		t.Fatalf("members %+v, want a at %s pinned to %s", ms, raft, want)
	}
	own, err := certs.LoadOrCreate(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := certs.LoadOrCreate(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// fwdMagic, fwdStatus, an empty body: a status request. The answer:
	// uvarints (number, code, message length), then the message (the
	// node's status as JSON); the node keeps the connection for more.
	ask := func(c net.Conn) (int, error) {
		c.SetDeadline(time.Now().Add(ioTimeout))
		if _, err := c.Write([]byte{'F', 'S', 0}); err != nil {
			return 0, err
		}
		r := bufio.NewReader(c)
		var l uint64
		var err error
		for range 3 {
			if l, err = binary.ReadUvarint(r); err != nil {
				return 0, err
			}
		}
		b := make([]byte, l)
		n, err := io.ReadFull(r, b)
		return n, err
	}
	dial := func(cert tls.Certificate) (net.Conn, error) {
		return tls.Dial("tcp", raft, &tls.Config{Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	}
	c, err := dial(own)
	if err != nil {
		t.Fatalf("the host's own certificate: %v", err)
	}
	if n, err := ask(c); err != nil || n < 10 {
		t.Errorf("status with the host's own certificate: %d bytes, %v", n, err)
	}
	c.Close()
	if c, err := dial(other); err == nil {
		if n, err := ask(c); err == nil && n > 0 {
			t.Errorf("a stranger's certificate was answered: %d bytes", n)
		}
		c.Close()
	}
	if c, err := net.Dial("tcp", raft); err == nil {
		if n, err := ask(c); err == nil && n > 0 {
			t.Errorf("plain TCP was answered: %d bytes", n)
		}
		c.Close()
	}
}

// TestClusterRefusesPlainRaftBeyondLoopback: without TLS, a Raft port
// beyond loopback is refused (unless InsecureRaft), before the node
// starts.
func TestClusterRefusesPlainRaftBeyondLoopback(t *testing.T) {
	dir := t.TempDir()
	cleanShm(t, dir)
	cfg, _ := clusterConfig(t, dir)
	cfg.Cluster.Raft = "0.0.0.0:0"
	if _, err := Start(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "add --tls") {
		t.Fatalf("Start with a plain Raft port on 0.0.0.0: %v, want a refusal saying to add --tls", err)
	}
}

// TestParseFingerprints: --peer-fingerprints, inline or from a file,
// normalized; bad entries say which and why.
func TestParseFingerprints(t *testing.T) {
	fp := strings.Repeat("AB:", 31) + "AB"
	norm := strings.Repeat("ab", 32)
	file := filepath.Join(t.TempDir(), "fps")
	if err := os.WriteFile(file, []byte("# the members\na="+fp+"\n\nb="+norm+", c="+norm+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{"a=" + fp + ",b=" + norm + ",c=" + norm, "@" + file} {
		got, err := ParseFingerprints(in)
		if err != nil || len(got) != 3 || got["a"] != norm || got["b"] != norm || got["c"] != norm {
			t.Errorf("ParseFingerprints(%q) = %v, %v; want a, b and c normalized", in, got, err)
		}
	}
	for _, tt := range []struct{ in, want string }{
		{"a", "write it as NAME=FINGERPRINT"},
		{"a=" + fp + ",a=" + fp, `node "a"'s fingerprint is given twice`},
		{"a=12", `node "a": fingerprint "12"`},
		{",", "no fingerprints"},
		{"@" + filepath.Join(t.TempDir(), "none"), "fingerprint file"},
	} {
		if _, err := ParseFingerprints(tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseFingerprints(%q) = %v, want an error with %q", tt.in, err, tt.want)
		}
	}
}

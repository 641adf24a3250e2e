package cluster

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/certs"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shmerr"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// TestTLSMembersOnly: three nodes on mutually authenticated TLS replicate
// and forward as on plain TCP; a program with a certificate that is not a
// member's, or with none, gets nothing written, through a forwarded write
// or otherwise.
func TestTLSMembersOnly(t *testing.T) {
	const n = 3
	var cs []tls.Certificate
	var fps []string
	for i := 0; i < n; i++ {
		c, err := certs.LoadOrCreate(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		cs, fps = append(cs, c), append(fps, certs.Fingerprint(c.Certificate[0]))
	}
	l := startLocal(t, n, func(c *Config) { c.TLS = &TLS{Certificate: cs[c.ID[0]-'a'], Members: fps} })
	nodes, hosts := l.nodes, l.hosts
	peers := map[string]string{}
	for _, nd := range nodes {
		peers[nd.cfg.ID] = nd.cfg.Bind
	}
	li := l.leader(t)
	ctx := context.Background()
	if _, err := nodes[li].Apply(ctx, Command{Op: OpCreate, ID: "s", Size: 4096}); err != nil {
		t.Fatal(err)
	}
	f := (li + 1) % n
	knowsLeader(t, l.nodes[f])
	v, err := nodes[f].Apply(ctx, Command{Op: OpWrite, ID: "s", Data: []byte("members only")})
	if err != nil || v != 1 {
		t.Fatalf("a write forwarded over TLS: %d, %v", v, err)
	}
	for _, h := range hosts {
		shmtest.CheckFor(t, 30*time.Second, "not replicated over TLS", func() bool { return version(h, "s") == 1 })
	}

	stranger, err := certs.LoadOrCreate(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	write := (&Command{Op: OpWrite, ID: "s", Data: []byte("intruder")}).Append(nil)
	req := append([]byte{fwdMagic, fwdApply}, binary.AppendUvarint(nil, uint64(len(write)))...)
	req = append(req, write...)
	for _, tc := range []struct {
		name string
		dial func() (net.Conn, error)
	}{
		{"stranger's certificate", func() (net.Conn, error) {
			return tls.Dial("tcp", peers[nodes[li].cfg.ID], &tls.Config{Certificates: []tls.Certificate{stranger}, InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
		}},
		{"no certificate", func() (net.Conn, error) {
			return tls.Dial("tcp", peers[nodes[li].cfg.ID], &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
		}},
		{"plain TCP", func() (net.Conn, error) { return net.Dial("tcp", peers[nodes[li].cfg.ID]) }},
	} {
		c, err := tc.dial()
		if err != nil {
			t.Logf("%s: refused at the handshake: %v", tc.name, err)
			continue
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write(req)
		got, err := io.ReadAll(bufio.NewReader(c))
		c.Close()
		if err == nil && len(got) >= 2 && got[1] == 0 { // version, then code 0: applied
			t.Fatalf("%s: the node answered a forwarded write: %x", tc.name, got)
		}
		t.Logf("%s: %v (%d bytes back)", tc.name, err, len(got))
	}
	if err := nodes[li].Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	if got := version(hosts[li], "s"); got != 1 {
		t.Fatalf("region s at version %d after the strangers, want 1", got)
	}
	var b []byte
	r, _ := hosts[li].Get("s")
	r.Do(func(rr *region.Region) (err error) { b, _, err = rr.AppendContent(nil); return err })
	if string(b) != "members only" {
		t.Fatalf("region s holds %q", b)
	}
}

// TestTLSPinsInTheLog: a cluster bootstrapped with each node's fingerprint
// pins them in its configuration. A fourth node, whose certificate no
// running node was told about, is added through a follower with its
// fingerprint: it catches up and forwards writes, and no node restarted.
// Another certificate at the same address would not have been accepted
// (the stranger's forwarded write fails); once d is removed, its own
// certificate is refused too.
func TestTLSPinsInTheLog(t *testing.T) {
	const n = 3
	var cs []tls.Certificate
	fps := map[string]string{}
	for i := 0; i < n+1; i++ {
		c, err := certs.LoadOrCreate(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
		fps[string(rune('a'+i))] = certs.Fingerprint(c.Certificate[0])
	}
	boot := map[string]string{"a": fps["a"], "b": fps["b"], "c": fps["c"]}
	l := startLocal(t, n, func(c *Config) { c.TLS = &TLS{Certificate: cs[c.ID[0]-'a'], Fingerprints: boot} })
	nodes := l.nodes
	peers := map[string]string{}
	for _, nd := range nodes {
		peers[nd.cfg.ID] = nd.cfg.Bind
	}
	li := l.leader(t)
	ctx := context.Background()
	if _, err := nodes[li].Apply(ctx, Command{Op: OpCreate, ID: "p", Size: 4096}); err != nil {
		t.Fatal(err)
	}
	ms, err := nodes[li].Members()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		want, _ := certs.NormalizeFingerprint(fps[m.ID])
		if m.Fingerprint != want || m.Address != peers[m.ID] {
			t.Errorf("member %s: address %q fingerprint %q, want %q %q", m.ID, m.Address, m.Fingerprint, peers[m.ID], want)
		}
	}

	daddr := shmtest.FreeAddr(t)
	dh := openHost(t)
	d, err := Start(Config{ID: "d", Bind: daddr, DataDir: t.TempDir(), Host: dh, TLS: &TLS{Certificate: cs[n], Fingerprints: boot}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	f := nodes[(li+1)%n]
	knowsLeader(t, l.nodes[(li+1)%n])
	if err := f.AddMember(ctx, "d", daddr, ""); !errors.Is(err, ErrFingerprint) {
		t.Fatalf("AddMember without a fingerprint on a TLS cluster: %v, want ErrFingerprint", err)
	}
	if err := f.AddMember(ctx, "d", daddr, fps["d"]); err != nil {
		t.Fatalf("AddMember through a follower: %v", err)
	}
	v, err := nodes[li].Apply(ctx, Command{Op: OpWrite, ID: "p", Data: []byte("pinned in the log")})
	if err != nil {
		t.Fatal(err)
	}
	shmtest.CheckFor(t, 30*time.Second, "the added node did not catch up", func() bool { return version(dh, "p") == int64(v) })
	shmtest.CheckFor(t, 30*time.Second, "the added node's forwarded write failed", func() bool {
		_, err := d.Apply(ctx, Command{Op: OpWrite, ID: "p", Data: []byte("from d")})
		return err == nil
	})
	sts, err := f.NodeStatuses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sts) != 4 {
		t.Fatalf("NodeStatuses: %d nodes, want 4: %+v", len(sts), sts)
	}
	for _, s := range sts {
		if !s.Reachable || s.AppliedIndex == 0 {
			t.Errorf("node %s: %+v, want reachable with an applied index", s.ID, s)
		}
	}

	// A certificate nobody pinned still gets nothing forwarded.
	stranger, err := certs.LoadOrCreate(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	write := (&Command{Op: OpWrite, ID: "p", Data: []byte("intruder")}).Append(nil)
	req := append([]byte{fwdMagic, fwdApply}, binary.AppendUvarint(nil, uint64(len(write)))...)
	req = append(req, write...)
	tryAs := func(cert tls.Certificate) bool {
		lead, _ := nodes[li].Leader()
		c, err := tls.Dial("tcp", peers[lead], &tls.Config{Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write(req)
		got, err := io.ReadAll(bufio.NewReader(c))
		return err == nil && len(got) >= 2 && got[1] == 0
	}
	if tryAs(stranger) {
		t.Fatal("a stranger's certificate had a write forwarded")
	}
	if err := f.RemoveServer(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	// Forwarded from a follower, the error keeps its kind.
	if err := f.RemoveServer(ctx, "d"); !errors.Is(err, shmerr.ErrNotFound) {
		t.Fatalf("removing d twice: %v, want a not-found error", err)
	}
	shmtest.CheckFor(t, 30*time.Second, "the leader did not drop d's pin", func() bool {
		lead, _ := nodes[li].Leader()
		for _, nd := range nodes {
			if nd.cfg.ID == lead {
				_, err := nd.Apply(ctx, Command{Op: OpWrite, ID: "p", Data: []byte("after d")})
				return err == nil && !tryAs(cs[n])
			}
		}
		return false
	})
}

package cluster

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/certs"
	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/region"
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
	peers := map[string]string{}
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		peers[string(rune('a'+i))] = ln.Addr().String()
		ln.Close()
	}
	var nodes []*Node
	var hosts []*host.Host
	for i := 0; i < n; i++ {
		id := string(rune('a' + i))
		h := openHost(t)
		nd, err := Start(Config{ID: id, Bind: peers[id], Peers: peers, DataDir: t.TempDir(), Host: h, TLS: &TLS{Certificate: cs[i], Members: fps}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nd.Close() })
		nodes, hosts = append(nodes, nd), append(hosts, h)
	}
	l := &local{nodes: nodes, hosts: hosts}
	li := l.leader(t)
	ctx := context.Background()
	if _, err := nodes[li].Apply(ctx, Command{Op: OpCreate, ID: "s", Size: 4096}); err != nil {
		t.Fatal(err)
	}
	f := (li + 1) % n
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

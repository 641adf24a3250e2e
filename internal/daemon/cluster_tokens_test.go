package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/shmgr/shmgr/internal/auth"
	"github.com/shmgr/shmgr/internal/cluster"
	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// TestTokenSync: a one-node cluster over a real host. The tokens file
// the node starts with is proposed once (it leads a new cluster); a file
// the log wrote, or already holds, is not proposed again; a changed file
// is; a file that would not load is not; a file another node proposed
// lands in this node's data directory and is not sent back.
func TestTokenSync(t *testing.T) {
	dir := t.TempDir()
	cleanShm(t, dir)
	h, _, err := host.Open(host.DefaultConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	raft := freePort(t)
	n, err := cluster.Start(cluster.Config{ID: "a", Bind: raft, Peers: map[string]string{"a": raft}, DataDir: filepath.Join(dir, "raft"), Host: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	shmtest.CheckFor(t, ioTimeout, "the one node never led", n.IsLeader)
	store, err := auth.Open(dir) // makes the admin token
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, auth.FileName)
	inLog := func() []byte {
		b, _, _ := n.Tokens()
		return b
	}
	onDisk := func() []byte {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	s := &tokenSync{n: n, path: path, log: slog.New(slog.DiscardHandler)}
	if !s.step() {
		t.Fatal("a new cluster's leader did not propose its tokens file")
	}
	if !bytes.Equal(inLog(), onDisk()) {
		t.Fatalf("the log holds %q, the file is %q", inLog(), onDisk())
	}
	if s.step() {
		t.Fatal("the log's own file was proposed again")
	}
	if _, err := store.Add(auth.Token{Name: "x", Secret: "0123456789abcdef-x"}); err != nil {
		t.Fatal(err)
	}
	if !s.step() || !bytes.Equal(inLog(), onDisk()) {
		t.Fatal("a changed file was not proposed")
	}
	if s.step() {
		t.Fatal("the changed file was proposed twice")
	}
	good := onDisk()
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s.step() || !bytes.Equal(inLog(), good) {
		t.Fatal("a file that would not load was proposed")
	}
	other := []byte(`{"tokens": [{"name": "y", "token": "0123456789abcdef-y", "access": "ro", "created": "2026-01-01T00:00:00Z"}]}` + "\n")
	if err := n.ProposeTokens(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk(), other) {
		t.Fatalf("after another node's tokens: file %q", onDisk())
	}
	if s.step() {
		t.Fatal("the file the log just wrote was sent back")
	}
	if g, err := store.Check("0123456789abcdef-y"); err != nil || g.Name != "y" {
		t.Fatalf("the host's store after the log wrote the file: %+v, %v", g, err)
	}
}

package cluster

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/auth"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shmerr"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// TestLeaseAcrossLeaderChange: three node processes. A lease granted by
// one leader is honoured through a follower (a forwarded fenced write
// applies, a forwarded LOCK is refused); the leader is SIGKILLed; the
// lease outlives it, and once it has run out on the new leader's log
// time a LOCK gets a larger fencing token (the index of its entry), the
// old token's write is fenced and the new one's applies. The old leader
// rejoins and every node has the same bytes at the same version, and the
// access tokens file committed while it was down.
func TestLeaseAcrossLeaderChange(t *testing.T) {
	procs := startCluster(t, 3, nil)
	if _, err := applyRetry(t, procs, Command{Op: OpCreate, ID: "r", Size: 4096, Layout: region.Raw, Request: rand.Uint64() | 1}); err != nil {
		t.Fatal(err)
	}
	lock := Command{Op: OpLock, ID: "r", Lease: 3000, Request: rand.Uint64() | 1}
	tok1, err := applyRetry(t, procs, lock)
	if err != nil {
		t.Fatal(err)
	}
	old := leader(t, procs)
	var f *proc
	for _, p := range procs {
		if p != old {
			f = p
			break
		}
	}
	if _, err := f.apply(Command{Op: OpWrite, ID: "r", Data: []byte("under lease 1"), Fenced: true, Token: tok1}); err != nil {
		t.Fatalf("fenced write through follower %s: %v", f.spec.ID, err)
	}
	if _, err := f.apply(Command{Op: OpLock, ID: "r", Lease: 1000}); !errors.Is(err, shmerr.ErrLockTimeout) {
		t.Fatalf("a second LOCK through %s: %v, want lock_timeout", f.spec.ID, err)
	}
	if _, err := applyRetry(t, procs, Command{Op: OpTokens, Data: []byte(`{"tokens": []}`)}); err != nil {
		t.Fatal(err)
	}
	old.kill(t)

	var tok2 uint64
	shmtest.CheckFor(t, 60*time.Second, "no new lease after the leader's death", func() bool {
		tok2, err = applyRetry(t, procs, Command{Op: OpLock, ID: "r", Lease: 10000, Request: rand.Uint64() | 1})
		if err != nil && !errors.Is(err, shmerr.ErrLockTimeout) {
			t.Fatal(err)
		}
		return err == nil
	})
	nl := leader(t, procs)
	if nl == old {
		t.Fatal("the killed node is the leader")
	}
	if tok2 <= tok1 {
		t.Fatalf("token %d from leader %s is not above %d from the killed leader %s", tok2, nl.spec.ID, tok1, old.spec.ID)
	}
	if _, err := applyRetry(t, procs, Command{Op: OpWrite, ID: "r", Data: []byte("stale"), Fenced: true, Token: tok1}); !errors.Is(err, shmerr.ErrFenced) {
		t.Fatalf("write with the old token: %v, want fenced", err)
	}
	v, err := applyRetry(t, procs, Command{Op: OpWrite, ID: "r", Data: []byte("under lease 2"), Fenced: true, Token: tok2})
	if err != nil || v != 2 {
		t.Fatalf("write with the new token: version %d, %v; want 2", v, err)
	}
	// Access tokens changed while the old leader is down reach it when
	// it rejoins.
	tokens := []byte(`{"tokens": [{"name": "x", "token": "0123456789abcdef-x", "access": "rw", "created": "2026-01-01T00:00:00Z"}]}` + "\n")
	if _, err := applyRetry(t, procs, Command{Op: OpTokens, Data: tokens}); err != nil {
		t.Fatal(err)
	}
	old.start(t)
	for _, p := range procs {
		path := filepath.Join(p.spec.Dir, "host", auth.FileName)
		shmtest.CheckFor(t, 60*time.Second, "tokens file not replicated to "+p.spec.ID, func() bool {
			b, err := os.ReadFile(path)
			return err == nil && bytes.Equal(b, tokens)
		})
	}
	content, version := converged(t, procs, "r", 60*time.Second)
	if string(content[:13]) != "under lease 2" || version != 2 {
		t.Fatalf("converged on %q at version %d", content[:13], version)
	}
	noDivergence(t, procs)
	t.Logf("tokens %d (leader %s) then %d (leader %s)", tok1, old.spec.ID, tok2, nl.spec.ID)
}

package main_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// wire is a raw protocol connection to a host, for requests through a
// host other than the one a client library lease was taken on.
type wire struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dialWire(t *testing.T, h *shmtest.Host, token string) *wire {
	t.Helper()
	nc, br, _ := shmtest.Dial(t, h.Addr, 10*time.Second)
	w := &wire{t: t, nc: nc, br: br}
	if token != "" {
		if got := w.do("AUTH " + token); !strings.HasPrefix(got, "OK") {
			t.Fatalf("AUTH on %s: %q", h.Addr, got)
		}
	}
	return w
}

// do sends one request (its lines) and returns the reply line. Replies
// may take a LOCK's wait: the deadline is generous.
func (w *wire) do(lines ...string) string {
	w.t.Helper()
	line, err := w.try(lines...)
	if err != nil {
		w.t.Fatal(err)
	}
	return line
}

// try is do for another goroutine than the test's: it returns the error.
func (w *wire) try(lines ...string) (string, error) {
	w.nc.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := w.nc.Write([]byte(strings.Join(lines, "\n") + "\n")); err != nil {
		return "", err
	}
	line, err := w.br.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("reply to %q: %w", lines[0], err)
	}
	return strings.TrimSuffix(line, "\n"), nil
}

// set writes p to region default with fence=token (0: none).
func (w *wire) set(p string, token uint64) string {
	w.t.Helper()
	cmd := fmt.Sprintf("SET default %d", len(p))
	if token != 0 {
		cmd += fmt.Sprintf(" fence=%d", token)
	}
	return w.do(cmd, p)
}

// tokenOf reads the token of an "OK <token>" reply to LOCK.
func tokenOf(t *testing.T, reply string) uint64 {
	t.Helper()
	s, ok := strings.CutPrefix(reply, "OK ")
	n, err := strconv.ParseUint(s, 10, 64)
	if !ok || err != nil {
		t.Fatalf("LOCK: %q, want OK <token>", reply)
	}
	return n
}

// newLeader waits until host ask names a leader other than not, and
// returns it.
func newLeader(t *testing.T, hosts map[string]*shmtest.Host, token, ask, not string) string {
	t.Helper()
	var leader string
	shmtest.CheckFor(t, 60*time.Second, "no leader named", func() bool {
		var st clusterStatus
		cliJSON(t, hosts[ask], &st, "cluster", "status", "--json", "--token", token)
		leader = st.Leader
		return leader != "" && leader != not
	})
	return leader
}

// TestClusterLeases: three host processes with tokens. A lease taken on
// one host (the client library's Lock) is honoured through another: a
// write with its token succeeds there, a LOCK on a third host is refused
// (wait=0) or waits until UNLOCK, an unfenced write fails with
// lock_timeout. The leader is SIGKILLed while a lease is held: after the
// election a new LOCK waits for that lease to run out, gets a larger
// token, and a write with the old token is fenced. A token added with
// "shmgr token add --data-dir" on one node authenticates on the others
// within seconds.
func TestClusterLeases(t *testing.T) {
	t.Parallel()
	const admin = "cluster-admin-secret-0123"
	hosts := startCluster(t, "--token", admin, "--lock-timeout", "1s")
	leader := newLeader(t, hosts, admin, "a", "")
	var f1, f2 string
	for _, n := range []string{"a", "b", "c"} {
		if n == leader {
			continue
		}
		if f1 == "" {
			f1 = n
		} else {
			f2 = n
		}
	}
	ctx := context.Background()
	o := client.DefaultOptions()
	o.Token = admin
	r, err := client.Dial(ctx, hosts[f1].Addr, "", o)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	// A lease on f1, written under through f1 (client) and f2 (wire).
	l, err := r.Lock(ctx, client.LockOptions{Lease: 20 * time.Second, Wait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tok1 := l.Token()
	if _, err := l.Write(ctx, []byte("under lease")); err != nil {
		t.Fatalf("write under the lease on %s: %v", f1, err)
	}
	w2, wl := dialWire(t, hosts[f2], admin), dialWire(t, hosts[leader], admin)
	if got := w2.set("through f2", tok1); !strings.HasPrefix(got, "OK ") {
		t.Fatalf("fenced SET through %s with the lease's token: %q", f2, got)
	}
	if got := w2.set("wrong token", tok1+1); !strings.HasPrefix(got, "ERROR fenced") {
		t.Errorf("SET with another token: %q, want fenced", got)
	}
	if got := wl.do("LOCK default wait=0"); !strings.HasPrefix(got, "ERROR lock_timeout") {
		t.Errorf("LOCK wait=0 on %s while %s holds the lease: %q, want lock_timeout", leader, f1, got)
	}
	if got := wl.set("unfenced", 0); !strings.HasPrefix(got, "ERROR lock_timeout") {
		t.Errorf("unfenced SET while a lease is held: %q, want lock_timeout", got)
	}
	// A LOCK that waits gets the lock once the holder unlocks. While it
	// waits it tries again: refused entries move the commit index.
	commit := func() uint64 {
		var st clusterStatus
		cliJSON(t, hosts[leader], &st, "cluster", "status", "--json", "--token", admin)
		return st.Commit
	}
	c0 := commit()
	waited := make(chan string, 1)
	go func() {
		line, err := wl.try("LOCK default lease=5000 wait=30000")
		if err != nil {
			line = err.Error()
		}
		waited <- line
	}()
	shmtest.CheckFor(t, 20*time.Second, "the waiting LOCK does not try again", func() bool { return commit() >= c0+3 })
	if err := l.Unlock(ctx); err != nil {
		t.Fatalf("UNLOCK: %v", err)
	}
	tok2 := tokenOf(t, <-waited)
	if tok2 <= tok1 {
		t.Fatalf("token after UNLOCK %d, not above %d", tok2, tok1)
	}
	if got := w2.set("stale", tok1); !strings.HasPrefix(got, "ERROR fenced") {
		t.Errorf("SET with the released token: %q, want fenced", got)
	}
	if got := wl.do(fmt.Sprintf("UNLOCK default %d", tok2)); got != "OK" {
		t.Fatalf("UNLOCK %d: %q", tok2, got)
	}

	// RENEW through another host than the LOCK's; a connection that
	// closes ends the lease it took (a minute long: only the release
	// frees it within the test).
	w3 := dialWire(t, hosts[f2], admin)
	tok := tokenOf(t, w3.do("LOCK default lease=60000 wait=5000"))
	if got := w2.do(fmt.Sprintf("RENEW default %d lease=60000", tok)); got != "OK" {
		t.Errorf("RENEW through %s: %q", f2, got)
	}
	if got := wl.do(fmt.Sprintf("RENEW default %d", tok+1)); !strings.HasPrefix(got, "ERROR fenced") {
		t.Errorf("RENEW with another token: %q, want fenced", got)
	}
	w3.nc.Close()
	var tok5 uint64
	shmtest.CheckFor(t, 20*time.Second, "the closed connection's lease was not released", func() bool {
		got := wl.do("LOCK default lease=1000 wait=0")
		if strings.HasPrefix(got, "OK ") {
			tok5 = tokenOf(t, got)
			return true
		}
		return false
	})
	if got := wl.do(fmt.Sprintf("UNLOCK default %d", tok5)); got != "OK" {
		t.Fatalf("UNLOCK %d: %q", tok5, got)
	}

	// The leader dies while f1 holds a lease.
	l3, err := r.Lock(ctx, client.LockOptions{Lease: 3 * time.Second, Wait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tok3 := l3.Token()
	wl.nc.Close()
	hosts[leader].Kill(t)
	next := newLeader(t, hosts, admin, f1, leader)
	t.Logf("leader %s killed; %s leads now", leader, next)
	// The lease outlives its leader; once it runs out (log time, plus the
	// skew allowance) a LOCK gets a larger token.
	tok4 := tokenOf(t, w2.do("LOCK default lease=10000 wait=30000"))
	if tok4 <= tok3 {
		t.Fatalf("token after the leader's death %d, not above the old lease's %d", tok4, tok3)
	}
	if _, err := l3.Write(ctx, []byte("too late")); !errors.Is(err, client.ErrFenced) {
		t.Errorf("write under the expired lease: %v, want ErrFenced", err)
	}
	if got := w2.set("fenced", tok4); !strings.HasPrefix(got, "OK ") {
		t.Errorf("SET under the new lease: %q", got)
	}
	hosts[leader].Restart(t)

	// A token added on one node's data directory reaches the others.
	const secret = "added-on-one-node-0123456"
	if out, errOut, code := shmtest.Run(t, nil, "token", "add", "x", "--secret", secret, "--data-dir", hosts[f1].DataDir); code != 0 || strings.TrimSpace(out) != secret {
		t.Fatalf("token add: exit %d, %q, %q", code, out, errOut)
	}
	for _, n := range []string{f2, leader} {
		shmtest.CheckFor(t, 30*time.Second, "token x not accepted on "+n, func() bool {
			w := dialWire(t, hosts[n], "")
			defer w.nc.Close()
			return strings.HasPrefix(w.do("AUTH "+secret), "OK")
		})
		w := dialWire(t, hosts[n], "")
		if got := w.do("AUTH not-a-token-of-this-cluster"); !strings.HasPrefix(got, "ERROR unauthorized") {
			t.Errorf("AUTH with a made-up token on %s: %q, want unauthorized", n, got)
		}
		w.nc.Close()
	}
	w2.nc.Close()
}

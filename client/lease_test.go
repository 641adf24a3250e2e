package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// startLeaseHost starts a host whose remote writers wait up to 20 s for a
// lock, so that a TCP writer blocked by a lease waits for as long as the
// tests need (they bound the wait themselves).
func startLeaseHost(t *testing.T) *shmtest.Host {
	t.Helper()
	return shmtest.StartHost(t, "--lock-timeout", "20s")
}

// quickLocal opens the default region locally with a short lock timeout:
// its writes fail fast with ErrLockTimeout while someone holds the lock.
func quickLocal(t *testing.T, addr string) *client.Region {
	t.Helper()
	o := options(client.ModeLocal)
	o.LockTimeout = 200 * time.Millisecond
	return dialWith(t, addr, "", o)
}

// mustLock takes r's lock as a lease, failing the test on error. Tests unlock
// or lose it on purpose; when the test ends it is unlocked anyway (before
// r is closed: a local lease keeps its mapping until Unlock, see
// TestLocalLeaseCloseWithoutUnlock).
func mustLock(t *testing.T, r *client.Region, o client.LockOptions) *client.Lease {
	t.Helper()
	l, err := r.Lock(ctxFor(t, 20*time.Second), o)
	if err != nil {
		t.Fatalf("Lock(%q, mode=%v, %+v): %v", r.ID(), r.Mode(), o, err)
	}
	t.Cleanup(func() { l.Unlock(context.Background()) })
	return l
}

// writeAsync writes p to r in a goroutine; the channel gets the outcome.
func writeAsync(t *testing.T, r *client.Region, p []byte) <-chan error {
	ctx := ctxFor(t, 30*time.Second)
	done := make(chan error, 1)
	go func() {
		_, err := r.Write(ctx, p)
		done <- err
	}()
	return done
}

// waitResult returns the outcome of an asynchronous write, failing the test if
// it has not come within d.
func waitResult(t *testing.T, done <-chan error, d time.Duration, what string) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("%s: no result within %v", what, d)
		return nil
	}
}

// notDoneYet fails the test if the asynchronous write has already finished.
func notDoneYet(t *testing.T, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("%s finished (%v) while the lease was held", what, err)
	default:
	}
}

func mustRead(t *testing.T, r *client.Region) string {
	t.Helper()
	b, _ := readVersion(t, r)
	return string(b)
}

// TestLeaseExcludesWriters takes a lease, writes under it, and checks that
// other writers, local and remote, wait until Unlock and then proceed.
func TestLeaseExcludesWriters(t *testing.T) {
	h := startLeaseHost(t)
	for _, mode := range modes {
		t.Run("mode="+mode.String(), func(t *testing.T) {
			holder := dial(t, h.Addr, "", mode)
			l := mustLock(t, holder, client.LockOptions{Lease: 20 * time.Second})
			v, err := l.Write(t.Context(), []byte("under the lease"))
			if err != nil {
				t.Fatalf("Lease.Write: %v", err)
			}
			if _, err := quickLocal(t, h.Addr).Write(t.Context(), []byte("barging in")); !errors.Is(err, client.ErrLockTimeout) {
				t.Fatalf("local Write while the lease is held = %v, want ErrLockTimeout", err)
			}
			if got := mustRead(t, holder); got != "under the lease" {
				t.Fatalf("content under the lease = %q, want %q (reads never wait)", got, "under the lease")
			}
			localWait := options(client.ModeLocal)
			localWait.LockTimeout = 20 * time.Second
			waiters := map[string]<-chan error{
				"local":  writeAsync(t, dialWith(t, h.Addr, "", localWait), []byte("local, after the unlock")),
				"remote": writeAsync(t, dial(t, h.Addr, "", client.ModeTCP), []byte("remote, after the unlock")),
			}
			for name, done := range waiters {
				notDoneYet(t, done, name+" Write")
			}
			if err := l.Unlock(t.Context()); err != nil {
				t.Fatalf("Unlock: %v", err)
			}
			for name, done := range waiters {
				if err := waitResult(t, done, 20*time.Second, name+" Write after Unlock"); err != nil {
					t.Errorf("%s Write after Unlock: %v", name, err)
				}
			}
			got, v2 := readVersion(t, holder)
			if v2 != v+2 || !strings.HasSuffix(string(got), ", after the unlock") {
				t.Errorf("after the unlock: %q at version %d, want one of the waiters' writes at version %d", got, v2, v+2)
			}
			if _, err := l.Write(t.Context(), []byte("after unlock")); !errors.Is(err, client.ErrFenced) {
				t.Errorf("Lease.Write after Unlock = %v, want ErrFenced", err)
			}
			if err := l.Unlock(t.Context()); !errors.Is(err, client.ErrFenced) {
				t.Errorf("second Unlock = %v, want ErrFenced", err)
			}
		})
	}
}

// TestLeaseExpiry lets a short lease run out while another writer waits:
// the writer takes over, and the old lease can no longer write, renew or
// unlock.
func TestLeaseExpiry(t *testing.T) {
	const lease = 200 * time.Millisecond
	h := startLeaseHost(t)
	tests := []struct {
		holder, next client.Mode
		takeover     string // "write" or "lock"
	}{
		{client.ModeLocal, client.ModeLocal, "write"},
		{client.ModeLocal, client.ModeTCP, "write"},
		{client.ModeTCP, client.ModeTCP, "write"},
		{client.ModeTCP, client.ModeLocal, "write"},
		{client.ModeLocal, client.ModeLocal, "lock"},
		{client.ModeTCP, client.ModeTCP, "lock"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("holder=%v/next=%v/takeover=%s", tt.holder, tt.next, tt.takeover), func(t *testing.T) {
			holder := dial(t, h.Addr, "", tt.holder)
			o := options(tt.next)
			o.LockTimeout = 20 * time.Second
			next := dialWith(t, h.Addr, "", o)
			old := mustLock(t, holder, client.LockOptions{Lease: lease})
			start := time.Now()
			want := "taken over after the lease ran out"
			switch tt.takeover {
			case "write":
				if _, err := next.Write(ctxFor(t, 20*time.Second), []byte(want)); err != nil {
					t.Fatalf("Write by the next writer: %v", err)
				}
			case "lock":
				l := mustLock(t, next, client.LockOptions{Lease: 20 * time.Second})
				t.Cleanup(func() { l.Unlock(context.Background()) })
				if l.Token() <= old.Token() {
					t.Errorf("new lease's token %d, want more than the expired one's, %d", l.Token(), old.Token())
				}
				if _, err := l.Write(t.Context(), []byte(want)); err != nil {
					t.Fatalf("Write under the new lease: %v", err)
				}
			}
			t.Logf("taken over %v after the lock", time.Since(start))
			if _, err := old.Write(t.Context(), []byte("stale holder")); !errors.Is(err, client.ErrFenced) {
				t.Errorf("Write under the expired lease = %v, want ErrFenced", err)
			}
			if err := old.Renew(t.Context(), time.Second); !errors.Is(err, client.ErrFenced) {
				t.Errorf("Renew of the expired lease = %v, want ErrFenced", err)
			}
			if err := old.Unlock(t.Context()); !errors.Is(err, client.ErrFenced) {
				t.Errorf("Unlock of the expired lease = %v, want ErrFenced", err)
			}
			if got := mustRead(t, holder); got != want {
				t.Errorf("content = %q, want %q", got, want)
			}
		})
	}
}

// TestExpiredLeaseFencedDuringTakeover lets a local lease run out and has
// another Region of the same process take the lock over with Update; while
// that writer holds the lock, the expired lease tries to use it. Every
// attempt must fail with ErrFenced and leave the new holder's lock alone.
func TestExpiredLeaseFencedDuringTakeover(t *testing.T) {
	h := startLeaseHost(t)
	ops := []struct {
		name string
		op   func(ctx context.Context, l *client.Lease) error
	}{
		{"Write", func(ctx context.Context, l *client.Lease) error {
			_, err := l.Write(ctx, []byte("stale holder"))
			return err
		}},
		{"Renew", func(ctx context.Context, l *client.Lease) error { return l.Renew(ctx, 20*time.Second) }},
		{"Unlock", func(ctx context.Context, l *client.Lease) error { return l.Unlock(ctx) }},
	}
	for _, op := range ops {
		t.Run("op="+op.name, func(t *testing.T) {
			holder := dial(t, h.Addr, "", client.ModeLocal)
			o := options(client.ModeLocal)
			o.LockTimeout = 20 * time.Second
			next := dialWith(t, h.Addr, "", o)
			old := mustLock(t, holder, client.LockOptions{Lease: 200 * time.Millisecond})
			var opErr, thirdErr error
			want := "written by the new holder"
			_, err := next.Update(ctxFor(t, 20*time.Second), func([]byte) ([]byte, error) {
				// next holds the lock now, taken from the expired lease.
				opErr = op.op(t.Context(), old)
				_, thirdErr = quickLocal(t, h.Addr).Write(t.Context(), []byte("third writer"))
				return []byte(want), nil
			})
			if err != nil {
				t.Fatalf("Update by the next writer: %v", err)
			}
			if !errors.Is(opErr, client.ErrFenced) {
				t.Errorf("BUG: %s under an expired lease, while another Region of the same process held the lock, = %v, want ErrFenced. internal/region/lock.go: enter (and Holds, Release) accept the stale token because the lock word names the same pid, breakExpired cleared the lease end to 0 (read as \"no expiry\") and a plain lock never bumps the fence; the same holds for all TCP leases, which the host process holds under its one pid", op.name, opErr)
			}
			if !errors.Is(thirdErr, client.ErrLockTimeout) {
				t.Errorf("BUG: a third writer during the new holder's Update = %v, want ErrLockTimeout: the stale lease's %s broke the new holder's lock", thirdErr, op.name)
			}
			if got := mustRead(t, holder); got != want {
				t.Errorf("content = %q, want %q", got, want)
			}
		})
	}
}

// TestLocalLeaseCloseWithoutUnlock closes a local Region whose lease was
// never unlocked, still held or already run out (a holder that got
// ErrFenced is told to start over, not to Unlock): Close must return.
func TestLocalLeaseCloseWithoutUnlock(t *testing.T) {
	const bound = 2 * time.Second // Close should be immediate
	h := startLeaseHost(t)
	for _, state := range []string{"held", "expired"} {
		t.Run("lease="+state, func(t *testing.T) {
			o := options(client.ModeLocal)
			r, err := client.Dial(t.Context(), h.Addr, "", o)
			if err != nil {
				t.Fatal(err)
			}
			lease := 20 * time.Second
			if state == "expired" {
				lease = time.Millisecond
			}
			l, err := r.Lock(t.Context(), client.LockOptions{Lease: lease})
			if err != nil {
				t.Fatal(err)
			}
			if state == "expired" {
				shmtest.CheckFor(t, 10*time.Second, "the lease did not run out", func() bool {
					_, err := l.Write(t.Context(), []byte("x"))
					return errors.Is(err, client.ErrFenced)
				})
			}
			done := make(chan error, 1)
			go func() { done <- r.Close() }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Close: %v", err)
				}
				if state == "held" {
					// The lock must not outlive the Region.
					if _, err := quickLocal(t, h.Addr).Write(t.Context(), []byte("after Close")); err != nil {
						t.Errorf("Write after the holder's Region was closed = %v, want success", err)
					}
				}
				return
			case <-time.After(bound):
			}
			t.Errorf("BUG: Region.Close with a local lease never unlocked (lease %s) did not return within %v: client/lease.go Region.Lock keeps the mapping acquired (refs) until Unlock, and client/region.go localMap.close spins on runtime.Gosched until refs is 0, burning a CPU forever", state, bound)
			l.Unlock(context.Background()) // lets Close finish
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Close did not return even after Unlock")
			}
		})
	}
}

// TestLeaseRenew renews a short lease for several times its length: it
// stays held (other writers time out) and writes under it succeed.
func TestLeaseRenew(t *testing.T) {
	const lease = 600 * time.Millisecond
	const renewEvery = 100 * time.Millisecond
	const hold = 1300 * time.Millisecond // more than twice the lease
	h := startLeaseHost(t)
	for _, mode := range modes {
		t.Run("mode="+mode.String(), func(t *testing.T) {
			holder := dial(t, h.Addr, "", mode)
			l := mustLock(t, holder, client.LockOptions{Lease: lease})
			start := time.Now()
			tick := time.NewTicker(renewEvery)
			defer tick.Stop()
			end := time.NewTimer(hold)
			defer end.Stop()
			renewals := 0
		renew:
			for {
				select {
				case <-tick.C:
					if err := l.Renew(t.Context(), lease); err != nil {
						t.Fatalf("Renew #%d, %v after Lock: %v", renewals+1, time.Since(start), err)
					}
					renewals++
				case <-end.C:
					break renew
				case <-t.Context().Done():
					t.Fatal("test ended")
				}
			}
			if _, err := quickLocal(t, h.Addr).Write(t.Context(), []byte("barging in")); !errors.Is(err, client.ErrLockTimeout) {
				t.Errorf("other Write %v after Lock (lease %v, renewed) = %v, want ErrLockTimeout", time.Since(start), lease, err)
			}
			want := fmt.Sprintf("written %d renewals later", renewals)
			if _, err := l.Write(t.Context(), []byte(want)); err != nil {
				t.Errorf("Lease.Write %v after Lock (lease %v, renewed %d times) = %v, want success", time.Since(start), lease, renewals, err)
			}
			if err := l.Unlock(t.Context()); err != nil {
				t.Errorf("Unlock: %v", err)
			}
			if got := mustRead(t, holder); got != want {
				t.Errorf("content = %q, want %q", got, want)
			}
		})
	}
}

// TestLeaseReleasedWithConnection takes a long TCP lease and ends the
// holder's connection: the host releases the lock at once, long before
// the lease would run out, and the lease is lost for good.
func TestLeaseReleasedWithConnection(t *testing.T) {
	const lease = 30 * time.Second
	const bound = 10 * time.Second // "at once", on a slow machine
	h := startLeaseHost(t)
	tests := []struct {
		name string
		end  func(r *client.Region, p *shmtest.FaultProxy)
	}{
		{"end=Close", func(r *client.Region, _ *shmtest.FaultProxy) { r.Close() }},
		{"end=network-cut", func(_ *client.Region, p *shmtest.FaultProxy) { p.Reset() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := shmtest.StartFaultProxy(t, h.Addr)
			holder := dialWith(t, p.Addr(), "", tcpOptions(nil))
			l := mustLock(t, holder, client.LockOptions{Lease: lease})
			if _, err := l.Write(t.Context(), []byte("holder")); err != nil {
				t.Fatalf("Lease.Write: %v", err)
			}
			want := "next writer"
			done := writeAsync(t, dial(t, h.Addr, "", client.ModeTCP), []byte(want))
			notDoneYet(t, done, "other Write")
			start := time.Now()
			tt.end(holder, p)
			if err := waitResult(t, done, bound, "Write after the holder's connection ended"); err != nil {
				t.Fatalf("Write after the holder's connection ended: %v", err)
			}
			t.Logf("lock released %v after the connection ended (lease %v)", time.Since(start), lease)
			if got := mustRead(t, dial(t, h.Addr, "", client.ModeTCP)); got != want {
				t.Errorf("content = %q, want %q", got, want)
			}
			if tt.name == "end=network-cut" {
				// The Region reconnects, but the lease went with the old
				// connection.
				if _, err := l.Write(ctxFor(t, 20*time.Second), []byte("stale holder")); !errors.Is(err, client.ErrFenced) {
					t.Errorf("Lease.Write after the connection was cut = %v, want ErrFenced", err)
				}
			}
		})
	}
}

// TestUnlockReplyLost loses the reply to a TCP UNLOCK: the host released
// the lock (by the UNLOCK, or with the connection the proxy cut), so
// Unlock has done its job and must not report that the lease had been
// lost.
func TestUnlockReplyLost(t *testing.T) {
	h := startLeaseHost(t)
	p := shmtest.StartFaultProxy(t, h.Addr)
	holder := dialWith(t, p.Addr(), "", tcpOptions(nil))
	l := mustLock(t, holder, client.LockOptions{Lease: 30 * time.Second})
	p.CutAfter(shmtest.ToClient, 0)
	err := l.Unlock(ctxFor(t, 20*time.Second))
	if _, werr := quickLocal(t, h.Addr).Write(t.Context(), []byte("after the unlock")); werr != nil {
		t.Fatalf("Write after Unlock = %v, want success (the lock is free)", werr)
	}
	if errors.Is(err, client.ErrFenced) {
		t.Errorf("BUG: Unlock whose reply was lost = %v, want nil: the lease was held and is now released, but client/lease.go Unlock sends UNLOCK as retrySafe, so Conn.do repeats it on a new connection, which holds no lock, and the host answers fenced; Unlock's check for ErrUnknownOutcome never matches (do only returns it for writes)", err)
	} else if err != nil {
		t.Errorf("Unlock whose reply was lost = %v, want nil", err)
	}
}

// The helper process of TestLeaseHolderKilled: its role (in helperEnv)
// and the content it writes under the lease.
const (
	leaseHolderRole = "lease-holder"
	leaseContentEnv = "SHMGR_CLIENT_TEST_CONTENT"
)

// TestLeaseHolderProcess is not a test: it is the body of the helper
// process TestLeaseHolderKilled starts. It maps the region, takes its lock
// for a long lease, commits a write under it, prints "locked", and waits
// to be killed.
func TestLeaseHolderProcess(t *testing.T) {
	if os.Getenv(helperEnv) != leaseHolderRole {
		t.Skip("helper process for TestLeaseHolderKilled")
	}
	ctx := t.Context()
	r, err := client.Dial(ctx, os.Getenv(helperAddr), os.Getenv(helperID), options(client.ModeLocal))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	l, err := r.Lock(ctx, client.LockOptions{Lease: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Write(ctx, []byte(os.Getenv(leaseContentEnv))); err != nil {
		t.Fatal(err)
	}
	fmt.Println("locked")
	io.Copy(io.Discard, os.Stdin) // until killed (or the test binary's stdin closes)
}

// TestLeaseHolderKilled kills a process holding a local lease with
// SIGKILL: the next writer, local or remote, takes the lock back at once
// (the holder's pid is gone), long before the lease would end, and finds
// the last content the holder committed.
func TestLeaseHolderKilled(t *testing.T) {
	const bound = 10 * time.Second // the lease is 60 s
	h := startLeaseHost(t)
	c := connect(t, h.Addr, client.ModeTCP)
	for _, next := range modes {
		t.Run("next="+next.String(), func(t *testing.T) {
			committed := "committed by the killed holder, next=" + next.String()
			lh := startLeaseHolder(t, h.Addr, committed)
			in, err := c.Info(t.Context(), "default")
			if err != nil {
				t.Fatal(err)
			}
			if pid := lh.cmd.Process.Pid; !in.Locked || int(in.LockPID) != pid {
				t.Fatalf("Info while the helper holds the lease: locked=%v pid=%d, want locked by pid %d", in.Locked, in.LockPID, pid)
			}
			lh.kill()

			o := options(next)
			o.LockTimeout = 20 * time.Second
			r := dialWith(t, h.Addr, "", o)
			if got := mustRead(t, r); got != committed {
				t.Errorf("content after the holder died = %q, want %q (its last commit)", got, committed)
			}
			start := time.Now()
			want := "written after the holder died"
			if _, err := r.Write(ctxFor(t, 30*time.Second), []byte(want)); err != nil {
				t.Fatalf("Write after the holder died: %v", err)
			}
			if took := time.Since(start); took > bound {
				t.Errorf("Write after the holder died took %v, want under %v (the lease was 60 s: liveness, not expiry, should free it)", took, bound)
			}
			if got := mustRead(t, r); got != want {
				t.Errorf("content = %q, want %q", got, want)
			}
		})
	}
}

// leaseHolder is the helper process of TestLeaseHolderKilled.
type leaseHolder struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has been reaped
}

// kill kills the process with SIGKILL and waits until it has been reaped
// (a zombie would still count as alive).
func (lh *leaseHolder) kill() {
	lh.cmd.Process.Kill()
	<-lh.exited
}

// lineSignal closes ch when a line equal to want has been written to it.
type lineSignal struct {
	want string
	ch   chan struct{}
	buf  []byte
	seen bool
}

func (w *lineSignal) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for !w.seen {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			break
		}
		if string(w.buf[:i]) == w.want {
			w.seen = true
			close(w.ch)
		}
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

// startLeaseHolder starts the helper process that holds the default
// region's lock after writing content, and returns it once it has. It is
// killed when the test ends, if the test has not done it.
func startLeaseHolder(t *testing.T, addr, content string) *leaseHolder {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestLeaseHolderProcess$", "-test.count=1", "-test.timeout=45s")
	cmd.Env = append(os.Environ(), helperEnv+"="+leaseHolderRole, helperAddr+"="+addr, helperID+"=", leaseContentEnv+"="+content)
	locked := &lineSignal{want: "locked", ch: make(chan struct{})}
	cmd.Stdout = locked
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe() // the helper reads it until it is killed
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lh := &leaseHolder{cmd: cmd, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(lh.exited)
	}()
	t.Cleanup(func() {
		stdin.Close()
		lh.kill()
	})
	select {
	case <-locked.ch:
	case <-lh.exited:
		t.Fatalf("lease holder exited before it reported its lock: %v; stderr:\n%s", cmd.ProcessState, stderr.String())
	case <-ctx.Done():
		t.Fatalf("lease holder did not report its lock; stderr:\n%s", stderr.String())
	}
	return lh
}

package region_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/region"
)

// wholeRaw reports whether b is one crashValue of a raw region: the same
// nonzero 8-byte word throughout. It returns the value's id.
func wholeRaw(b []byte) (uint64, bool) {
	if len(b) < 8 {
		return 0, false
	}
	w := binary.LittleEndian.Uint64(b)
	if w == 0 {
		return 0, false
	}
	for i := 8; i+8 <= len(b); i += 8 {
		if binary.LittleEndian.Uint64(b[i:]) != w {
			return 0, false
		}
	}
	return w - 1, true
}

// startWithPID starts cmd so that it gets pid: it sets the kernel's last
// pid to pid-1 (/proc/sys/kernel/ns_last_pid, root only) just before the
// fork, and retries while other processes of the machine take the pid
// first. It reports false if it could not arrange it.
func startWithPID(t *testing.T, pid int, mk func() *exec.Cmd) (*exec.Cmd, bool) {
	t.Helper()
	for try := 0; try < 200; try++ {
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0); err != nil {
			t.Logf("cannot arrange a pid: %v", err)
			return nil, false
		}
		cmd := mk()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if cmd.Process.Pid == pid {
			return cmd, true
		}
		cmd.Process.Kill()
		cmd.Wait()
	}
	return nil, false
}

// newRawRegion is a raw region holding one whole value to start with.
func newRawRegion(t *testing.T, size int64) *namedRegion {
	t.Helper()
	nr := newNamedRegion(t, region.Raw, size)
	if _, err := nr.r.Write(crashValue(make([]byte, size), region.Raw, 1<<39), region.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return nr
}

// sleeper is an unrelated process, as pid reuse would start one.
func sleeper() *exec.Cmd { return exec.Command("sleep", "60") }

// killHolding starts crash helpers and kills them until one dies holding
// the lock (at most 50 tries), and returns its pid.
func killHolding(t *testing.T, nr *namedRegion, k0 uint64, lease bool, wrap []string) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		h, err := launchHelper(t, nr, k0+uint64(try)*1e6, lease, "loop", wrap, nil)
		if err != nil {
			t.Fatal(err)
		}
		// A random moment, as in TestCrashLoop.
		time.Sleep(mrand.N(5*time.Millisecond + 1))
		h.kill()
		if binary.LittleEndian.Uint64(nr.ctl[ctlLock:])&0xff != 0 {
			return h.cmd.Process.Pid
		}
	}
	t.Fatal("no helper of 50 died holding the lock")
	return 0
}

// recoverWithin checks that a writer of this process gets the lock within
// the lock timeout after its holder died, that the region then held one
// whole value (old or new), and that the write lands.
func recoverWithin(t *testing.T, nr *namedRegion, id uint64) {
	t.Helper()
	buf := make([]byte, nr.r.MaxContent())
	start := time.Now()
	var seen []byte
	_, err := nr.r.Update(region.WriteOptions{Timeout: region.DefaultTimeout}, func(cur []byte) ([]byte, error) {
		seen = append(seen[:0], cur...)
		return crashValue(buf, region.Raw, id), nil
	})
	if err != nil {
		t.Fatalf("write after the holder died (its pid reused): %v after %v", err, time.Since(start).Round(time.Millisecond))
	}
	if _, ok := wholeRaw(seen); !ok {
		t.Fatalf("the region held a mix of values after recovery: %s", describeValue(seen, crashValue(make([]byte, len(seen)), region.Raw, 0)))
	}
	got, _, err := nr.r.AppendContent(nil)
	if k, ok := wholeRaw(got); err != nil || !ok || k != id {
		t.Fatalf("read after the write = value %d (whole %v), %v; want value %d", k, ok, err, id)
	}
	t.Logf("lock taken back in %v", time.Since(start).Round(time.Microsecond))
}

// TestPIDReuse kills the lock's holder and gives its pid to another
// process: an unrelated one (after a lease holder, after a plain writer
// killed mid-write) or the same program restarted. The owner is its slot,
// not its pid, so the next writer gets the lock at once and finds old or
// new content. (Format 1 waited out the lease, or for ever.)
func TestPIDReuse(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("running as a crash helper")
	}
	if os.Geteuid() != 0 {
		t.Skip("arranging a pid needs root (/proc/sys/kernel/ns_last_pid)")
	}
	t.Run("holder=lease/reuser=unrelated", func(t *testing.T) {
		nr := newRawRegion(t, 1<<20)
		pid := killHolding(t, nr, 0, true, nil)
		cmd, ok := startWithPID(t, pid, sleeper)
		if !ok {
			t.Skipf("could not give pid %d to another process (the machine forks too much)", pid)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		if ls := nr.r.LockState(); !ls.Held || ls.PID != uint32(pid) {
			t.Fatalf("LockState = %+v, want held, naming pid %d", ls, pid)
		}
		recoverWithin(t, nr, 1<<40)
	})
	t.Run("holder=plain/reuser=unrelated", func(t *testing.T) {
		nr := newRawRegion(t, 1<<20)
		pid := killHolding(t, nr, 0, false, nil)
		cmd, ok := startWithPID(t, pid, sleeper)
		if !ok {
			t.Skipf("could not give pid %d to another process", pid)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		recoverWithin(t, nr, 1<<40)
	})
	t.Run("holder=plain/reuser=restarted", func(t *testing.T) {
		nr := newRawRegion(t, 1<<20)
		pid := killHolding(t, nr, 0, false, nil)
		var out, stderr bytes.Buffer
		cmd, ok := startWithPID(t, pid, func() *exec.Cmd {
			out.Reset()
			stderr.Reset()
			c := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1", "-test.timeout=60s")
			c.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d,0,once", crashEnv, nr.name, uint64(1<<41)))
			c.Stdout, c.Stderr = &out, &stderr
			return c
		})
		if !ok {
			t.Skipf("could not give pid %d to the restarted program", pid)
		}
		if err := cmd.Wait(); err != nil || !strings.Contains(out.String(), "wrote") {
			t.Fatalf("the restarted program (pid %d again) did not write: %v\n%s%s", pid, err, out.String(), stderr.String())
		}
		got, _, err := nr.r.AppendContent(nil)
		if k, ok := wholeRaw(got); err != nil || !ok || k != 1<<41 {
			t.Fatalf("content after the restarted program's write = value %d (whole %v), %v; want %d", k, ok, err, uint64(1<<41))
		}
		recoverWithin(t, nr, 1<<40)
	})
}

// unshareCmd is the prefix that runs a helper in a new pid namespace (and
// kills it when the prefix dies).
func unshareCmd(t *testing.T) []string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a new pid namespace needs root")
	}
	path, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("no unshare(1):", err)
	}
	if out, err := exec.Command(path, "-p", "-f", "--mount-proc", "--kill-child", "true").CombinedOutput(); err != nil {
		t.Skipf("unshare -p -f --mount-proc --kill-child does not work here: %v: %s", err, out)
	}
	return []string{path, "-p", "-f", "--mount-proc", "--kill-child"}
}

// TestPIDNamespaces races a writer inside its own pid namespace (as in
// another container sharing /dev/shm) against writers outside it on a
// large raw region: a reader outside must never see a mix of two writes
// (format 1 judged the inside writer dead by its pid and rolled it back
// mid-write). Then a writer inside is killed holding the lock, and a
// writer outside takes it back.
func TestPIDNamespaces(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("running as a crash helper")
	}
	wrap := unshareCmd(t)
	size := int64(4 << 20)
	if raceEnabled {
		size = 256 << 10
	}
	reads, budget := 3000, 20*time.Second
	if testing.Short() {
		reads, budget = 500, 5*time.Second
	}
	t.Run("race", func(t *testing.T) {
		nr := newNamedRegion(t, region.Raw, size)
		if _, err := nr.r.Write(crashValue(make([]byte, size), region.Raw, 1<<40), region.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		inside, err := launchHelper(t, nr, 0, false, "loop", wrap, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer inside.kill()
		// A writer outside, in another mapping of its own (as another
		// process would have), flat out.
		outside := nr.attach(t)
		var stop atomic.Bool
		var wg sync.WaitGroup
		var werr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, size)
			for i := uint64(1 << 40); !stop.Load(); i++ {
				if _, err := outside.Write(crashValue(buf, region.Raw, i), region.WriteOptions{}); err != nil {
					werr = err
					return
				}
			}
		}()
		buf := make([]byte, 0, size)
		mixed, fromInside, fromOutside, n := 0, 0, 0, 0
		// Reads for budget, or up to ten times as long on a machine too
		// slow (or too busy, or emulated) for a tenth of them in budget:
		// how fast this machine copies is not what the test checks.
		minReads := reads / 10
		start := time.Now()
		deadline, hardStop := start.Add(budget), start.Add(10*budget)
		for ; n < reads && (time.Now().Before(deadline) || n < minReads && time.Now().Before(hardStop)); n++ {
			b, _, err := nr.r.AppendContent(buf[:0])
			if err != nil {
				t.Fatalf("read %d: %v", n, err)
			}
			k, ok := wholeRaw(b)
			switch {
			case !ok:
				mixed++
			case k >= 1<<40:
				fromOutside++
			default:
				fromInside++
			}
		}
		stop.Store(true)
		wg.Wait()
		if werr != nil {
			t.Fatalf("outside writer: %v", werr)
		}
		t.Logf("%d reads: %d of the inside writer's values, %d of the outside's, %d mixed", n, fromInside, fromOutside, mixed)
		if mixed != 0 {
			t.Errorf("%d of %d reads mixed two writes", mixed, n)
		}
		if fromInside == 0 {
			t.Errorf("no read of %d saw a value of the writer inside the namespace: the race did not happen", n)
		}
		if n < minReads {
			t.Errorf("only %d reads in %v", n, time.Since(start).Round(time.Second))
		}
	})
	t.Run("killed-inside", func(t *testing.T) {
		nr := newRawRegion(t, 1<<20)
		killHolding(t, nr, 0, false, wrap)
		recoverWithin(t, nr, 1<<40)
		killHolding(t, nr, 1<<30, true, wrap)
		recoverWithin(t, nr, 1<<40+1)
	})
}

// TestReleaseBreakRace releases leases at the moment they expire while
// another mapping's writer waits to break them, round after round: a
// release must never free or clobber the lock a breaker has taken, so a
// writer's hold never overlaps another's.
func TestReleaseBreakRace(t *testing.T) {
	nr := newNamedRegion(t, region.Raw, 4096)
	holder, breaker := nr.r, nr.attach(t)
	third := nr.attach(t)
	rounds := 2000
	if testing.Short() {
		rounds = 300
	}
	var inside atomic.Int32
	check := func(who *region.Region, what string) error {
		if n := inside.Add(1); n != 1 {
			return fmt.Errorf("%s: %d holders at once", what, n)
		}
		defer inside.Add(-1)
		w := binary.LittleEndian.Uint64(nr.ctl[ctlLock:])
		if int(w&0xff)-1 != who.Slot() {
			return fmt.Errorf("%s: the lock word names slot %d, the writer holds slot %d", what, int(w&0xff)-1, who.Slot())
		}
		return nil
	}
	var fenced, released, renewed, broken, thirdIn atomic.Int64
	errc := make(chan error, 3)
	for i := 0; i < rounds; i++ {
		lease := time.Duration(1+i%3) * time.Millisecond
		tok, err := holder.Acquire(time.Second, lease, nil, nil)
		if err != nil {
			t.Fatalf("round %d: Acquire: %v", i, err)
		}
		var wg sync.WaitGroup
		wg.Add(2)
		// The breaker waits for the lease to run out, then writes under the
		// lock it took, checking nobody else holds it meanwhile.
		go func() {
			defer wg.Done()
			_, err := breaker.Update(region.WriteOptions{Timeout: time.Second}, func(cur []byte) ([]byte, error) {
				if err := check(breaker, "breaker"); err != nil {
					return nil, err
				}
				broken.Add(1)
				return []byte("breaker"), nil
			})
			if err != nil {
				errc <- fmt.Errorf("round %d: breaker: %w", i, err)
			}
		}()
		// A third writer tries to slip in while the others race.
		go func() {
			defer wg.Done()
			_, err := third.Update(region.WriteOptions{Timeout: time.Second}, func(cur []byte) ([]byte, error) {
				if err := check(third, "third writer"); err != nil {
					return nil, err
				}
				thirdIn.Add(1)
				return []byte("third"), nil
			})
			if err != nil {
				errc <- fmt.Errorf("round %d: third writer: %w", i, err)
			}
		}()
		// The holder writes under its lease until about its end, then
		// releases right at the edge.
		end := time.Now().Add(lease)
		for time.Until(end) > 200*time.Microsecond {
			_, err := holder.Update(region.WriteOptions{Fenced: true, Fence: tok}, func(cur []byte) ([]byte, error) {
				if err := check(holder, "lease holder"); err != nil {
					return nil, err
				}
				return []byte("holder"), nil
			})
			if err == nil {
				fenced.Add(1)
			} else if !errors.Is(err, region.ErrFenced) {
				t.Fatalf("round %d: fenced write: %v", i, err)
			}
		}
		for time.Now().Before(end) {
		}
		if i%2 == 1 {
			// Renew at the edge: it either extends the lease still held or
			// fails; a renewal landing on the breaker's hold would make
			// that hold breakable, and the third writer's check would see
			// two holders.
			if err := holder.Renew(tok, lease); err == nil {
				renewed.Add(1)
			} else if !errors.Is(err, region.ErrFenced) {
				t.Fatalf("round %d: Renew: %v", i, err)
			}
		}
		switch err := holder.Release(tok); {
		case err == nil:
			released.Add(1)
		case !errors.Is(err, region.ErrFenced):
			t.Fatalf("round %d: Release: %v", i, err)
		}
		wg.Wait()
		select {
		case err := <-errc:
			t.Fatal(err)
		default:
		}
		if holder.Holds(tok) {
			t.Fatalf("round %d: the old lease still holds after Release and a break", i)
		}
	}
	t.Logf("%d rounds: %d releases won, %d lost to a break; %d renewals at the edge won; %d fenced writes, %d breaker and %d third writes", rounds, released.Load(), int64(rounds)-released.Load(), renewed.Load(), fenced.Load(), broken.Load(), thirdIn.Load())
	if ls := holder.LockState(); ls.Held {
		t.Fatalf("lock held after the rounds: %+v", ls)
	}
}

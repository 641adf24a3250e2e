//go:build unix

package region_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shm"
)

// crashEnv, when set, makes this test binary a crash helper (see
// TestCrashHelper). Its value is "<data object>,<k0>,<lease 0|1>".
const crashEnv = "SHMGR_REGION_CRASH_HELPER"

// lockOwnerPID returns the pid recorded in the owner slot that the lock
// word names, or 0 if the lock is free.
func lockOwnerPID(ctl []byte) uint32 {
	w := binary.LittleEndian.Uint64(ctl[ctlLock:])
	s := int(w & 0xff)
	if s == 0 {
		return 0
	}
	return binary.LittleEndian.Uint32(ctl[ctlSlots+(s-1)*ctlSlotSize+4:])
}

// TestCrashHelper is not a test: it is the body of the processes
// TestCrashLoop starts and kills. It attaches to the region named by
// crashEnv, optionally takes a lease, prints "writing" and then writes
// values k0, k0+1, ... flat out until it is killed (or, as a safety net,
// until its parent goes away or 30 s pass).
func TestCrashHelper(t *testing.T) {
	spec := os.Getenv(crashEnv)
	if spec == "" {
		t.Skip("helper process for TestCrashLoop")
	}
	parts := strings.Split(spec, ",")
	if len(parts) != 4 {
		t.Fatalf("%s=%q: want <name>,<k0>,<lease>,<mode>", crashEnv, spec)
	}
	k0, err := strconv.ParseUint(parts[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	data, err := shm.Open(parts[0], 0)
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := shm.Open(parts[0]+"-c", 0)
	if err != nil {
		t.Fatal(err)
	}
	r, err := region.Attach(data.Bytes(), ctl.Bytes(), ctl.Path())
	if err != nil {
		t.Fatal(err)
	}
	r.SetLabel("crash helper")
	buf := make([]byte, r.MaxContent())
	if parts[3] == "range" {
		rangeHelper(t, r, k0, parts[2] == "1")
		return
	}
	if parts[3] == "once" {
		// A restarted program: one write, within the lock timeout.
		if _, err := r.Write(crashValue(buf, r.Layout(), k0), region.WriteOptions{Timeout: 5 * time.Second}); err != nil {
			t.Fatalf("write %d: %v", k0, err)
		}
		fmt.Println("wrote")
		return
	}
	o := helperOptions(t, r, parts[2] == "1")
	ppid := os.Getppid()
	stop := time.Now().Add(30 * time.Second)
	fmt.Println("writing")
	for j := uint64(0); ; j++ {
		if _, err := r.Write(crashValue(buf, r.Layout(), k0+j), o); err != nil {
			t.Fatalf("write %d: %v", k0+j, err)
		}
		if j%64 == 0 && (os.Getppid() != ppid || time.Now().After(stop)) {
			return
		}
	}
}

// helper is a running crash helper.
type helper struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stderr bytes.Buffer
	waited bool
}

// startHelper starts a crash helper on nr writing values from k0 and
// returns once it has printed "writing". The test's cleanup kills it if
// it is still running.
func startHelper(t *testing.T, nr *namedRegion, k0 uint64, lease bool) *helper {
	t.Helper()
	h, err := launchHelper(t, nr, k0, lease, "loop", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// launchHelper starts a crash helper in mode ("loop": write flat out;
// "once": one write, then exit), under the command prefix wrap if any
// (such as unshare), and waits for its first line ("writing" or "wrote").
// start, if not nil, starts the command (to arrange its pid).
func launchHelper(t *testing.T, nr *namedRegion, k0 uint64, lease bool, mode string, wrap []string, start func(*exec.Cmd) error) (*helper, error) {
	t.Helper()
	for try := 1; ; try++ {
		h, stuck, err := launchHelperOnce(t, nr, k0, lease, mode, wrap, start)
		if !stuck || try == 3 {
			return h, err
		}
		t.Logf("a crash helper's fork did not reach exec within %v (qemu-user does this now and then): killed it, starting again", forkTimeout)
	}
}

// forkTimeout bounds how long starting a crash helper may take before
// the fork is presumed stuck. Under qemu-user, a fork of this
// multithreaded test binary now and then never reaches exec, and the
// parent waits in exec.Cmd.Start for it forever. A variable for
// TestLaunchHelperStuckFork.
var forkTimeout = 30 * time.Second

// launchHelperOnce is one try of launchHelper; stuck reports a fork that
// never reached exec, and was killed.
func launchHelperOnce(t *testing.T, nr *namedRegion, k0 uint64, lease bool, mode string, wrap []string, start func(*exec.Cmd) error) (_ *helper, stuck bool, _ error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	h := &helper{cancel: cancel}
	args := append(append([]string{}, wrap...), os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1", "-test.timeout=60s")
	h.cmd = exec.CommandContext(ctx, args[0], args[1:]...)
	l := "0"
	if lease {
		l = "1"
	}
	h.cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d,%s,%s", crashEnv, nr.name, k0, l, mode))
	h.cmd.Stderr = &h.stderr
	out, err := h.cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, false, err
	}
	if start == nil {
		start = (*exec.Cmd).Start
	}
	started := make(chan error, 1)
	go func() { started <- start(h.cmd) }()
	select {
	case err = <-started:
	case <-time.After(forkTimeout):
		// The child that has not exec'd yet still has this process's
		// environment, without crashEnv.
		killed := killUnexecedChildren(crashEnv)
		select {
		case err = <-started:
		case <-time.After(10 * time.Second):
			t.Fatalf("starting a crash helper has hung for %v (%d stuck children killed)", forkTimeout+10*time.Second, killed)
		}
		if killed > 0 {
			stuck = true
		}
	}
	if err != nil {
		cancel()
		return nil, stuck, err
	}
	t.Cleanup(h.kill)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if line := sc.Text(); line == "writing" || line == "wrote" {
			return h, false, nil
		}
	}
	h.kill()
	return nil, stuck, fmt.Errorf("crash helper did not start writing: %v\nstderr:\n%s", h.cmd.ProcessState, h.stderr.String())
}

// kill sends SIGKILL and reaps the process, so that its pid is dead (a
// zombie still answers kill(pid, 0)).
func (h *helper) kill() {
	if h.waited {
		return
	}
	h.waited = true
	h.cmd.Process.Kill()
	h.cmd.Wait()
	h.cancel()
}

// crashState is what a killed helper left in the control block.
type crashState struct {
	seq    uint64
	pid    uint32 // lock owner, 0 if free
	commit bool   // the lease commit bit
	undo   uint32
	fence  uint64
	flag   byte // utf8: the offset-0 flag
	helper uint32
}

func (s crashState) String() string {
	return fmt.Sprintf("seq=%d lock pid=%d (helper %d) commit=%v undo=%d flag=%d", s.seq, s.pid, s.helper, s.commit, s.undo, s.flag)
}

// TestCrashLoop kills a writing process at random moments, again and
// again, and checks after each kill that the survivor takes the lock back
// and finds one whole value (the last committed one, or the one before if
// the write was interrupted), that versions never go back, and that the
// lock is free afterwards.
func TestCrashLoop(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("running as a crash helper")
	}
	tests := []struct {
		name   string
		layout region.Layout
		size   int64
		lease  bool
	}{
		{"writer=plain/layout=utf8", region.UTF8, region.DefaultSize, false},
		{"writer=plain/layout=raw", region.Raw, 1 << 20, false},
		{"writer=lease/layout=utf8", region.UTF8, region.DefaultSize, true},
		{"writer=lease/layout=raw", region.Raw, 1 << 20, true},
	}
	// Each case runs at most maxIters kills, and stops early when its share
	// of the time budget is spent, so a slow machine (or -race) stays
	// bounded.
	maxIters, budget := 300, 10*time.Second
	if testing.Short() {
		maxIters, budget = 40, 4*time.Second
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			crashLoop(t, tt.layout, tt.size, tt.lease, maxIters, budget/time.Duration(len(tests)))
		})
	}
}

func crashLoop(t *testing.T, l region.Layout, size int64, lease bool, maxIters int, budget time.Duration) {
	nr := newNamedRegion(t, l, size)
	r := nr.r
	buf := make([]byte, r.MaxContent())
	wantBuf := make([]byte, r.MaxContent())

	// Value ids: the test's own writes and the helpers' share one sequence,
	// so every value ever written is distinct.
	var next uint64
	if _, err := r.Write(crashValue(buf, l, next), region.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	last := next // id of the last committed value
	next++
	lastVersion := r.Version()

	methods := []string{"Recover", "Update", "read+Write"}
	start := time.Now()
	iters, held, midWrite, rolledBack := 0, 0, 0, 0
	for ; iters < maxIters && time.Since(start) < budget; iters++ {
		method := methods[iters%len(methods)]
		v0 := r.Version()
		k0 := next
		h := startHelper(t, nr, k0, lease)
		time.Sleep(mrand.N(5*time.Millisecond + 1))
		h.kill()

		st := crashState{
			seq:    binary.LittleEndian.Uint64(nr.ctl[ctlSeq:]),
			undo:   binary.LittleEndian.Uint32(nr.ctl[ctlUndoState:]),
			fence:  binary.LittleEndian.Uint64(nr.ctl[ctlFence:]),
			helper: uint32(h.cmd.Process.Pid),
		}
		w := binary.LittleEndian.Uint64(nr.ctl[ctlLock:])
		st.pid, st.commit = lockOwnerPID(nr.ctl), w>>63 != 0
		if l == region.UTF8 {
			st.flag = nr.data[0]
		}
		if st.pid != 0 {
			held++
			if st.pid != st.helper {
				t.Fatalf("iteration %d: lock held by pid %d, not the helper: %v", iters, st.pid, st)
			}
		}
		odd := st.seq%2 == 1
		if odd {
			midWrite++
			if st.pid == 0 {
				t.Fatalf("iteration %d: a write in progress (odd seq) without the lock held: %v", iters, st)
			}
			if st.undo != 1 {
				t.Fatalf("iteration %d: a write in progress without a valid undo log: %v", iters, st)
			}
		}
		if lease && st.pid == 0 {
			t.Fatalf("iteration %d: the helper held a lease, yet the lock is free: %v", iters, st)
		}

		// What the region must hold once recovered: the helper's writes
		// that committed are versions v0+1 .. seq/2, with values k0, k0+1,
		// ...; an interrupted one is rolled back, and the version moves on
		// past it.
		committed := st.seq/2 - v0
		if st.seq/2 < v0 {
			t.Fatalf("iteration %d: version went back from %d to %d: %v", iters, v0, st.seq/2, st)
		}
		if committed > 0 {
			last = k0 + committed - 1
		}
		next = k0 + committed + 1 // skip the id of an interrupted write
		wantVersion := (st.seq + 1) / 2
		want := crashValue(wantBuf, l, last)

		check := func(what string, got []byte, v uint64) {
			t.Helper()
			if v != wantVersion {
				t.Errorf("iteration %d (%s): %s: version %d, want %d (state at kill: %v)", iters, method, what, v, wantVersion, st)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("iteration %d (%s): %s: content is not value %d (the last committed): %s (state at kill: %v)", iters, method, what, last, describeValue(got, want), st)
			}
		}

		switch method {
		case "Recover":
			ok, err := r.Recover()
			if err != nil || ok != (st.pid != 0) {
				t.Errorf("iteration %d: Recover() = %v, %v; want %v (state at kill: %v)", iters, ok, err, st.pid != 0, st)
			}
			if ok && odd {
				rolledBack++
			}
			got, v, err := r.AppendContent(buf[:0])
			if err != nil {
				t.Fatalf("iteration %d: read after Recover: %v", iters, err)
			}
			check("after Recover", got, v)
		case "Update":
			id := next
			next++
			var seen []byte
			v, err := r.Update(region.WriteOptions{Timeout: 5 * time.Second}, func(cur []byte) ([]byte, error) {
				seen = append(seen[:0], cur...)
				return crashValue(buf, l, id), nil
			})
			if err != nil {
				t.Fatalf("iteration %d: Update after a kill (%v): %v", iters, st, err)
			}
			if odd {
				rolledBack++
			}
			check("content Update saw", seen, v-1)
			last, wantVersion = id, wantVersion+1
		case "read+Write":
			// A reader alone takes the lock back only when it has to (a
			// write in progress, or the utf8 flag): read, then write.
			got, v, err := r.AppendContent(buf[:0])
			if err != nil {
				t.Fatalf("iteration %d: read after a kill (%v): %v", iters, st, err)
			}
			check("read", got, v)
			if odd {
				rolledBack++
			}
		}
		if t.Failed() {
			return
		}

		// A write by this process takes the lock back (if still held), and
		// leaves it free.
		id := next
		next++
		v, err := r.Write(crashValue(buf, l, id), region.WriteOptions{Timeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("iteration %d (%s): write after a kill (%v): %v", iters, method, st, err)
		}
		last = id
		if v != wantVersion+1 {
			t.Errorf("iteration %d (%s): write after recovery gave version %d, want %d", iters, method, v, wantVersion+1)
		}
		if v <= lastVersion {
			t.Errorf("iteration %d: version went back: %d after %d", iters, v, lastVersion)
		}
		lastVersion = v
		if ls := r.LockState(); ls.Held {
			t.Fatalf("iteration %d (%s): lock still held after recovery and a write: %+v", iters, method, ls)
		}
		if l == region.UTF8 && nr.data[0] != 0 {
			t.Fatalf("iteration %d (%s): offset-0 flag = %d after recovery and a write, want 0", iters, method, nr.data[0])
		}
		if lease {
			// A new lease's token is above the dead holder's.
			token, err := r.Acquire(time.Second, time.Second, nil, nil)
			if err != nil {
				t.Fatalf("iteration %d: Acquire after a dead lease holder: %v", iters, err)
			}
			if token <= st.fence {
				t.Errorf("iteration %d: new lease token %d, want more than the dead holder's %d", iters, token, st.fence)
			}
			if err := r.Release(token); err != nil {
				t.Fatalf("iteration %d: Release: %v", iters, err)
			}
		}
		got, v, err := r.AppendContent(buf[:0])
		if err != nil || v != lastVersion || !bytes.Equal(got, crashValue(wantBuf, l, last)) {
			t.Fatalf("iteration %d: read after own write: version %d (want %d), %v, %s", iters, v, lastVersion, err, describeValue(got, crashValue(wantBuf, l, last)))
		}
	}
	t.Logf("%d kills in %v: %d with the lock held, %d mid-write (odd seq; %d rolled back)", iters, time.Since(start).Round(time.Millisecond), held, midWrite, rolledBack)
	if held == 0 && iters > 100 {
		t.Errorf("none of %d kills landed while the helper held the lock: the test does not exercise recovery", iters)
	}
}

// TestRecoverLeavesLiveOwner checks that Recover never breaks a lock held
// by a live owner in another process, and that writers wait for it.
func TestRecoverLeavesLiveOwner(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("running as a crash helper")
	}
	nr := newNamedRegion(t, region.Raw, 4096)
	h := startHelper(t, nr, 0, true)
	defer h.kill()
	ok, err := nr.r.Recover()
	if err != nil || ok {
		t.Fatalf("Recover with a live lease holder = %v, %v; want false, nil", ok, err)
	}
	_, err = nr.r.Write([]byte("x"), region.WriteOptions{Timeout: 20 * time.Millisecond})
	if !errors.Is(err, region.ErrLockTimeout) {
		t.Fatalf("Write while a live process holds a lease: err = %v, want ErrLockTimeout", err)
	}
}

// TestReadDuringLease reads a region while a lease on it is held: reads
// must not wait for a lease (client.Lease: "Reads do not wait for it
// (they never block)"; PROTOCOL.md shows a GET answered during a lease).
func TestReadDuringLease(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("running as a crash helper")
	}
	t.Run("holder=idle", func(t *testing.T) {
		for _, l := range []region.Layout{region.Raw, region.UTF8} {
			t.Run("layout="+l.String(), func(t *testing.T) { readDuringIdleLease(t, l) })
		}
	})
	t.Run("holder=writing/layout=raw", readDuringWritingLease)
}

// readDuringIdleLease holds a lease in this process and reads once.
func readDuringIdleLease(t *testing.T, l region.Layout) {
	nr := newNamedRegion(t, l, region.DefaultSize)
	if _, err := nr.r.Write([]byte("before"), region.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	token, err := nr.r.Acquire(time.Second, 10*time.Second, []byte("lease holder"), nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := nr.r.AppendContent(nil)
		done <- err
	}()
	tm := time.NewTimer(500 * time.Millisecond)
	defer tm.Stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("read during a lease: %v", err)
		}
		if err := nr.r.Release(token); err != nil {
			t.Fatal(err)
		}
		return
	case <-tm.C:
	}
	if err := nr.r.Release(token); err != nil {
		t.Fatal(err)
	}
	err = <-done
	t.Errorf("BUG: a read of a %s region waited for an idle lease (still blocked after 500ms; it returned %v once the lease was released): "+
		"Acquire holds the offset-0 flag for the whole lease, so every optimistic read in AppendRange sees busy() and it falls back to "+
		"r.lock, which waits for the lease (up to DefaultTimeout, then ErrLockTimeout)", l, err)
}

// readDuringWritingLease reads flat out for a second while another
// process holds a lease and writes under it flat out. A reader that loses
// the seqlock race 64 times takes the lock; that must not mean waiting for
// the lease.
func readDuringWritingLease(t *testing.T) {
	const window = time.Second
	nr := newNamedRegion(t, region.Raw, region.DefaultSize)
	h := startHelper(t, nr, 0, true)
	type result struct {
		reads   int
		slowest time.Duration
		err     error
	}
	done := make(chan result, 1)
	go func() {
		var res result
		buf := make([]byte, 0, region.DefaultSize)
		for end := time.Now().Add(window); time.Now().Before(end); res.reads++ {
			s := time.Now()
			_, _, err := nr.r.AppendContent(buf[:0])
			res.slowest = max(res.slowest, time.Since(s))
			if err != nil {
				res.err = err
				break
			}
		}
		done <- res
	}()
	tm := time.NewTimer(window + time.Second)
	defer tm.Stop()
	select {
	case res := <-done:
		h.kill()
		if res.err != nil {
			t.Errorf("read %d during a lease: %v", res.reads, res.err)
		}
		t.Logf("%d reads racing a lease holder's writes, the slowest %v", res.reads, res.slowest)
		return
	case <-tm.C:
	}
	// The reader waits for the lease: killing its holder frees it.
	h.kill()
	res := <-done
	t.Errorf("BUG: a read racing a lease holder's writes blocked for over a second (after %d reads; it returned %v once the holder was killed): "+
		"after maxOptimistic failed attempts AppendRange takes the lock, which a lease holds until it ends (up to DefaultTimeout, then ErrLockTimeout)",
		res.reads, res.err)
}

// TestCorruptLengthField leaves a utf8 length field past the region's end,
// as a crashed or buggy program outside shmgr might (the documented layout
// is theirs to write). Reads report ErrBadControl; WriteAt and Update must
// fail (or repair) the same way rather than panic: in the host a panic
// takes down every connection.
func TestCorruptLengthField(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("running as a crash helper")
	}
	nr := newNamedRegion(t, region.UTF8, region.DefaultSize)
	tests := []struct {
		name string
		op   func() error
	}{
		{"WriteAt", func() error {
			_, err := nr.r.WriteAt(0, []byte("x"), region.WriteOptions{Timeout: time.Second})
			return err
		}},
		{"Update", func() error {
			_, err := nr.r.Update(region.WriteOptions{Timeout: time.Second}, func(cur []byte) ([]byte, error) {
				return []byte("x"), nil
			})
			return err
		}},
		{"AppendContent", func() error {
			_, _, err := nr.r.AppendContent(nil)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run("op="+tt.name, func(t *testing.T) {
			if _, err := nr.r.Write([]byte("valid"), region.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			binary.LittleEndian.PutUint32(nr.data[region.LenOffset:], 1<<31)
			var err error
			panicked := func() (p any) {
				defer func() { p = recover() }()
				err = tt.op()
				return nil
			}()
			if panicked != nil {
				t.Fatalf("BUG: %s with a length field past the region's end panicked: %v "+
					"(read.go slices r.data[DataOffset:DataOffset+contentLen()] without the check appendLocked makes)", tt.name, panicked)
			}
			t.Logf("%s: err = %v", tt.name, err)
			if ls := nr.r.LockState(); ls.Held {
				t.Errorf("lock held after %s: %+v", tt.name, ls)
			}
		})
	}
}

// rangeChunk returns the chunk of a bounded region that write id goes to
// (there are n chunks) and fills buf with id's value: id+1 in every
// 8-byte word, so a torn chunk shows.
func rangeChunk(buf []byte, id uint64, n int64) (int64, []byte) {
	for i := 0; i+8 <= len(buf); i += 8 {
		binary.LittleEndian.PutUint64(buf[i:], id+1)
	}
	return int64(id % uint64(n)), buf
}

// rangeHelper is the crash helper's "range" mode: WriteAt of exactly the
// region's max write, id k0+j to chunk (k0+j) mod n, flat out.
func rangeHelper(t *testing.T, r *region.Region, k0 uint64, lease bool) {
	chunk := r.MaxWrite()
	n := r.Size() / chunk
	buf := make([]byte, chunk)
	o := helperOptions(t, r, lease)
	ppid := os.Getppid()
	stop := time.Now().Add(30 * time.Second)
	fmt.Println("writing")
	for j := uint64(0); ; j++ {
		c, p := rangeChunk(buf, k0+j, n)
		if _, err := r.WriteAt(c*chunk, p, o); err != nil {
			t.Fatalf("write %d: %v", k0+j, err)
		}
		if j%64 == 0 && (os.Getppid() != ppid || time.Now().After(stop)) {
			return
		}
	}
}

// TestCrashLoopBoundedUndo is TestCrashLoop for a raw region whose undo
// area holds only its max write (4 KiB of a 64 KiB region): a helper
// writes whole 4 KiB chunks with WriteAt, is killed at random moments,
// and after each kill the region must hold, chunk by chunk, exactly the
// writes that committed (an interrupted one rolled back from the small
// undo area), with no chunk torn.
func TestCrashLoopBoundedUndo(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("running as a crash helper")
	}
	// As TestCrashLoop: bounded in kills and in time (the budget is shared
	// by the two cases), so an emulated arm64 run stays short.
	maxIters, budget := 200, 4*time.Second
	if testing.Short() {
		maxIters, budget = 40, 2*time.Second
	}
	for _, lease := range []bool{false, true} {
		t.Run(fmt.Sprintf("lease=%v", lease), func(t *testing.T) {
			crashLoopBounded(t, lease, maxIters, budget/2)
		})
	}
}

func crashLoopBounded(t *testing.T, lease bool, maxIters int, budget time.Duration) {
	const size, maxWrite = 64 << 10, 4 << 10
	const n = size / maxWrite
	nr := newBoundedRegion(t, region.Raw, size, maxWrite)
	r := nr.r
	if r.MaxWrite() != maxWrite {
		t.Fatalf("MaxWrite = %d, want %d", r.MaxWrite(), maxWrite)
	}
	// model[c] is the value id+1 chunk c must hold (0: never written).
	var model [n]uint64
	want := make([]byte, size)
	buf := make([]byte, maxWrite)
	var next uint64
	start := time.Now()
	iters, held, midWrite := 0, 0, 0
	for ; iters < maxIters && time.Since(start) < budget; iters++ {
		v0 := r.Version()
		k0 := next
		h, err := launchHelper(t, nr, k0, lease, "range", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(mrand.N(3*time.Millisecond + 1))
		h.kill()
		seq := binary.LittleEndian.Uint64(nr.ctl[ctlSeq:])
		if lockOwnerPID(nr.ctl) != 0 {
			held++
		}
		if seq%2 == 1 {
			midWrite++
		}
		committed := seq/2 - v0
		for id := k0; id < k0+committed; id++ {
			model[id%n] = id + 1
		}
		next = k0 + committed + 1 // skip the id of an interrupted write
		if _, err := r.Recover(); err != nil {
			t.Fatalf("iteration %d: Recover: %v", iters, err)
		}
		// This process's own range write, through the same bounded undo area.
		c, p := rangeChunk(buf, next, n)
		if _, err := r.WriteAt(c*maxWrite, p, region.WriteOptions{Timeout: 5 * time.Second}); err != nil {
			t.Fatalf("iteration %d: write after a kill: %v", iters, err)
		}
		model[c] = next + 1
		next++

		for c := range model {
			rangeChunk(want[c*maxWrite:(c+1)*maxWrite], model[c]-1, n)
			if model[c] == 0 {
				clear(want[c*maxWrite : (c+1)*maxWrite])
			}
		}
		got, _, err := r.AppendContent(nil)
		if err != nil {
			t.Fatalf("iteration %d: read: %v", iters, err)
		}
		if !bytes.Equal(got, want) {
			for c := 0; c < n; c++ {
				if g, w := got[c*maxWrite:(c+1)*maxWrite], want[c*maxWrite:(c+1)*maxWrite]; !bytes.Equal(g, w) {
					t.Fatalf("iteration %d: chunk %d: %s (seq at kill %d, %d committed)", iters, c, describeValue(g, w), seq, committed)
				}
			}
		}
		if ls := r.LockState(); ls.Held {
			t.Fatalf("iteration %d: lock still held after recovery and a write: %+v", iters, ls)
		}
	}
	t.Logf("%d kills in %v: %d with the lock held, %d mid-write", iters, time.Since(start).Round(time.Millisecond), held, midWrite)
	if held == 0 && iters > 50 {
		t.Errorf("none of %d kills landed while the helper held the lock: the test does not exercise recovery", iters)
	}
}

// helperOptions are a crash helper's write options: under a lease it
// takes first (fenced writes), or plain.
func helperOptions(t *testing.T, r *region.Region, lease bool) region.WriteOptions {
	t.Helper()
	if !lease {
		return region.WriteOptions{}
	}
	token, err := r.Acquire(2*time.Second, time.Minute, []byte("crash helper lease"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return region.WriteOptions{Fenced: true, Fence: token}
}

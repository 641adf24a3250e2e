package client_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// Environment of a helper process (besides helperEnv, which names its
// role).
const (
	helperAddr = "SHMGR_CLIENT_TEST_ADDR"
	helperID   = "SHMGR_CLIENT_TEST_ID"
	helperMode = "SHMGR_CLIENT_TEST_MODE"
	helperN    = "SHMGR_CLIENT_TEST_N"
)

// TestHelperProcess is not a test: it is the body of the child processes
// the tests below start by re-running this test binary. It dials the
// region, prints "ready", waits for its standard input to close (so
// several children start together), does its work and exits.
func TestHelperProcess(t *testing.T) {
	role := os.Getenv(helperEnv)
	if role == "" {
		t.Skip("helper process for other tests")
	}
	mode, err := client.ParseMode(os.Getenv(helperMode))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(os.Getenv(helperN))
	if err != nil {
		t.Fatalf("%s: %v", helperN, err)
	}
	ctx := t.Context()
	r, err := client.Dial(ctx, os.Getenv(helperAddr), os.Getenv(helperID), options(mode))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Mode() != mode {
		t.Fatalf("helper: Mode() = %v, want %v: %s", r.Mode(), mode, r.WhyNotLocal())
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)

	switch role {
	case "increment":
		// Add 1 to the little-endian uint64 at offset 0, n times. After the
		// first increment, wait for the other process's (the counter
		// reaches 2), so that the two loops surely overlap. Report how often
		// the other process committed between two of ours.
		inc := func() uint64 {
			v, err := r.Update(ctx, func(cur []byte) ([]byte, error) {
				if len(cur) != 8 {
					return nil, fmt.Errorf("counter region holds %d bytes, want 8", len(cur))
				}
				return binary.LittleEndian.AppendUint64(nil, binary.LittleEndian.Uint64(cur)+1), nil
			})
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
			return v
		}
		inc()
		for {
			b, err := r.Read(ctx)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if binary.LittleEndian.Uint64(b) >= 2 {
				break
			}
			runtime.Gosched()
		}
		last := inc()
		interleaved := 0
		for range n - 2 {
			v := inc()
			if v != last+1 {
				interleaved++
			}
			last = v
		}
		fmt.Println("interleaved", interleaved)
	case "write-uniform":
		for i := range n {
			if _, err := r.Write(ctx, uniform(i)); err != nil {
				t.Fatalf("Write #%d: %v", i, err)
			}
		}
	case "close-while-reading":
		// n times: open the region, read it in a loop in two goroutines
		// and Close it meanwhile. The readers must stop with ErrClosed
		// (and never touch the unmapped memory).
		c, err := client.Connect(ctx, os.Getenv(helperAddr), options(mode))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for i := range n {
			rr, err := c.Open(ctx, os.Getenv(helperID))
			if err != nil {
				t.Fatal(err)
			}
			const readers = 2
			var started, stopped sync.WaitGroup
			errs := make([]error, readers)
			for j := range readers {
				started.Add(1)
				stopped.Go(func() {
					for k := 0; ; k++ {
						_, err := rr.Read(context.Background())
						if k == 0 {
							started.Done()
						}
						if err != nil {
							errs[j] = err
							return
						}
					}
				})
			}
			started.Wait()
			if err := rr.Close(); err != nil {
				t.Errorf("round %d: Close: %v", i, err)
			}
			stopped.Wait()
			for _, err := range errs {
				if !errors.Is(err, client.ErrClosed) {
					t.Fatalf("round %d: Read during Close = %v, want ErrClosed", i, err)
				}
			}
		}
	default:
		t.Fatalf("unknown helper role %q", role)
	}
}

// uniform is the content of write number i of the write-uniform helper:
// one letter, repeated 1 to 4091 times.
func uniform(i int) []byte {
	return bytes.Repeat([]byte{byte('a' + i%26)}, 1+(i*7919)%4091)
}

// child is a helper process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
	err   *bytes.Buffer

	once    sync.Once
	waitErr error
	lines   []string // stdout lines after "ready"
}

// startChild starts a helper process with role on region id and waits
// until it is ready. Its standard input stays open until run.
func startChild(t *testing.T, role, addr, id string, mode client.Mode, n int) *child {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1", "-test.timeout=45s")
	cmd.Env = append(os.Environ(),
		helperEnv+"="+role, helperAddr+"="+addr, helperID+"="+id, helperMode+"="+mode.String(), helperN+"="+strconv.Itoa(n))
	c := &child{cmd: cmd, err: &bytes.Buffer{}}
	cmd.Stderr = c.err
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.stdin = stdin
	c.out = bufio.NewScanner(stdout)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A child still running when the test ends (it failed) is killed.
		stdin.Close()
		cancel()
		c.finish()
	})
	ready := false
	for c.out.Scan() {
		if c.out.Text() == "ready" {
			ready = true
			break
		}
	}
	if !ready {
		c.finish()
		t.Fatalf("helper %s did not get ready: %v\nstdout: %s\nstderr: %s", role, cmd.ProcessState, strings.Join(c.lines, "\n"), c.err)
	}
	return c
}

// finish reads the rest of the child's output and waits for it to exit.
func (c *child) finish() error {
	c.once.Do(func() {
		for c.out.Scan() {
			c.lines = append(c.lines, c.out.Text())
		}
		c.waitErr = c.cmd.Wait()
	})
	return c.waitErr
}

// run releases the children and waits for all of them, failing the test
// if one fails.
func run(t *testing.T, children ...*child) {
	t.Helper()
	for _, c := range children {
		c.stdin.Close()
	}
	var wg sync.WaitGroup
	errs := make([]error, len(children))
	for i, c := range children {
		wg.Go(func() { errs[i] = c.finish() })
	}
	wg.Wait()
	for i, c := range children {
		if errs[i] != nil {
			t.Errorf("helper process %d: %v\nstdout:\n%s\nstderr:\n%s", i, errs[i], strings.Join(c.lines, "\n"), firstLines(c.err.String(), 40))
		}
	}
}

// TestLockContention has two processes increment one counter through
// Region.Update at the same time: no increment may be lost.
func TestLockContention(t *testing.T) {
	tests := []struct {
		mode client.Mode
		n    int
	}{
		{client.ModeLocal, 2000},
		{client.ModeTCP, 300},
	}
	h := shmtest.StartHost(t)
	c := connect(t, h.Addr, client.ModeAuto)
	for _, tt := range tests {
		t.Run("mode="+tt.mode.String(), func(t *testing.T) {
			id := "counter-" + tt.mode.String()
			create(t, c, id, client.CreateOptions{Size: 8, Layout: "raw"})
			r := dial(t, h.Addr, id, tt.mode)
			_, v0 := readVersion(t, r)

			a := startChild(t, "increment", h.Addr, id, tt.mode, tt.n)
			b := startChild(t, "increment", h.Addr, id, tt.mode, tt.n)
			run(t, a, b)

			got, v := readVersion(t, r)
			if n := binary.LittleEndian.Uint64(got); n != uint64(2*tt.n) {
				t.Errorf("counter after 2 × %d increments = %d, want %d", tt.n, n, 2*tt.n)
			}
			if v != v0+uint64(2*tt.n) {
				t.Errorf("version after 2 × %d increments = %d, want %d (one commit per increment)", tt.n, v, v0+uint64(2*tt.n))
			}
			// Not asserted: the lock promises exclusion, not fairness.
			t.Logf("commits interleaved with the other child's: %s / %s", report(a, "interleaved"), report(b, "interleaved"))
		})
	}
}

// TestNoTornReads reads a region while another process rewrites it flat
// out: every read must be one whole write, and the content must match the
// version it came with.
func TestNoTornReads(t *testing.T) {
	const writes = 20000
	h := shmtest.StartHost(t)
	c := connect(t, h.Addr, client.ModeAuto)
	create(t, c, "letters", client.CreateOptions{Size: 4096})
	local := dial(t, h.Addr, "letters", client.ModeLocal)
	remote := dial(t, h.Addr, "letters", client.ModeTCP)
	_, v0 := readVersion(t, local)

	// check returns a description of what is wrong with content b at
	// version v, or "".
	check := func(b []byte, v uint64) string {
		if v < v0 || v > v0+writes {
			return fmt.Sprintf("version %d outside [%d, %d]", v, v0, v0+writes)
		}
		if v == v0 {
			if len(b) != 0 {
				return fmt.Sprintf("%d bytes at the initial version, want none", len(b))
			}
			return ""
		}
		want := uniform(int(v - v0 - 1))
		if !bytes.Equal(b, want) {
			return fmt.Sprintf("got %s, want %s", describe(b), describe(want))
		}
		return ""
	}

	w := startChild(t, "write-uniform", h.Addr, "letters", client.ModeLocal, writes)
	done := make(chan struct{})
	go func() {
		defer close(done)
		run(t, w)
	}()

	// TCP reads: bounded, concurrent with the local reader.
	var wg sync.WaitGroup
	var tcpReads int
	var tcpBad []string
	wg.Go(func() {
		for ; tcpReads < 500; tcpReads++ {
			select {
			case <-done:
				return
			default:
			}
			b, v, err := remote.ReadVersion(t.Context())
			if err != nil {
				tcpBad = append(tcpBad, err.Error())
				return
			}
			if msg := check(b, v); msg != "" && len(tcpBad) < 5 {
				tcpBad = append(tcpBad, fmt.Sprintf("read %d: version %d: %s", tcpReads, v, msg))
			}
		}
	})

	buf := make([]byte, 0, 4096)
	reads, bad, lastV, middle := 0, 0, v0, 0
loop:
	for {
		select {
		case <-done:
			break loop
		default:
		}
		var v uint64
		var err error
		buf, v, err = local.AppendRead(t.Context(), buf[:0])
		if err != nil {
			t.Errorf("local read %d: %v", reads, err)
			break
		}
		reads++
		if msg := check(buf, v); msg != "" {
			if bad++; bad <= 5 {
				t.Errorf("local read %d: version %d: %s", reads, v, msg)
			}
		}
		if v < lastV {
			t.Errorf("local read %d: version went back from %d to %d", reads, lastV, v)
		}
		lastV = v
		if v > v0 && v < v0+writes {
			middle++
		}
	}
	<-done // the writer has exited
	wg.Wait()
	for _, msg := range tcpBad {
		t.Errorf("tcp: %s", msg)
	}
	if t.Failed() {
		return
	}
	got, v := readVersion(t, local)
	if want := uniform(writes - 1); !bytes.Equal(got, want) || v != v0+writes {
		t.Errorf("after the writer: %s at version %d, want %s at version %d", describe(got), v, describe(want), v0+writes)
	}
	if middle == 0 {
		t.Errorf("%d local reads saw no write in progress: the test did not race the writer", reads)
	}
	t.Logf("%d local reads (%d mid-run, %d bad), %d TCP reads", reads, middle, bad, tcpReads)
}

// describe summarises content made of repeated letters.
func describe(b []byte) string {
	if len(b) == 0 {
		return "empty"
	}
	first := bytes.IndexFunc(b, func(r rune) bool { return byte(r) != b[0] })
	if first < 0 {
		return fmt.Sprintf("%q × %d", b[0], len(b))
	}
	return fmt.Sprintf("%d bytes: %q × %d then %q (torn)", len(b), b[0], first, b[first])
}

// firstLines returns the first n lines of s, and says how many it left
// out.
func firstLines(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) <= n {
		return s
	}
	return strings.Join(lines[:n], "") + fmt.Sprintf("[... %d more lines]\n", len(lines)-n)
}

// report returns the value of the child's stdout line "<key> <value>".
func report(c *child, key string) string {
	for _, l := range c.lines {
		if v, ok := strings.CutPrefix(l, key+" "); ok {
			return v
		}
	}
	return "?"
}

// Package shmtest helps tests run the real thing: it builds the shmgr
// binary once per test binary, starts hosts as separate processes on
// loopback with their own data directories, runs CLI commands against
// them, and removes every process, directory and shared-memory object it
// made when the test ends.
package shmtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/shm"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildPath string
	buildErr  error
)

// Main runs a package's tests and then removes the binary Binary built.
// Call it from TestMain: os.Exit(shmtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	return code
}

// Binary returns the path of a freshly built shmgr binary (built once per
// test binary; Main removes it).
func Binary(t testing.TB) string {
	t.Helper()
	path, err := Build()
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// Build is Binary for code without a testing.TB, such as TestMain.
func Build() (string, error) {
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "shmgr-bin-")
		if buildErr != nil {
			return
		}
		buildPath = filepath.Join(buildDir, "shmgr")
		if runtime.GOOS == "windows" {
			buildPath += ".exe"
		}
		cmd := exec.Command("go", "build", "-o", buildPath, "github.com/shmgr/shmgr/cmd/shmgr")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	return buildPath, buildErr
}

// Host is a host process started by StartHost.
type Host struct {
	// Addr is the host's TCP address (127.0.0.1:port).
	Addr string
	// DataDir is its data directory.
	DataDir string
	// Banner is what it printed on standard output at start.
	Banner string
	args   []string
	wrap   []string // a command that runs the host (nsenter, prlimit ...)
	cmd    *exec.Cmd
	stderr *Buffer
	done   chan struct{}
}

// Buffer is a bytes.Buffer safe for concurrent use: a child process's
// output, written by exec's copying goroutine and read by the test.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// StartHost starts "shmgr host --listen 127.0.0.1:0 --data-dir <temp>"
// plus args, waits until it listens, and stops it and removes its regions
// when the test ends.
func StartHost(t testing.TB, args ...string) *Host {
	t.Helper()
	return StartHostIn(t, t.TempDir(), args...)
}

// StartHostIn is StartHost with a given data directory (for restarts).
func StartHostIn(t testing.TB, dataDir string, args ...string) *Host {
	t.Helper()
	h := &Host{DataDir: dataDir, args: args}
	h.start(t, "127.0.0.1:0")
	t.Cleanup(func() {
		h.Kill(t)
		RemoveObjects(t, dataDir)
	})
	return h
}

// StartHostWrapped is StartHostIn with the host run by a wrapper
// command, such as {"nsenter", "-t", pid, "-m", "--"} (a private mount
// namespace) or {"prlimit", "--nofile=64:64"}. The wrapper must exec the
// host (not fork it), so that Kill and PID reach the host itself.
func StartHostWrapped(t testing.TB, dataDir string, wrap []string, args ...string) *Host {
	t.Helper()
	h := &Host{DataDir: dataDir, args: args, wrap: wrap}
	h.start(t, "127.0.0.1:0")
	t.Cleanup(func() {
		h.Kill(t)
		RemoveObjects(t, dataDir)
	})
	return h
}

// PID returns the host process's id (0 if it is not running).
func (h *Host) PID() int {
	if h.cmd == nil {
		return 0
	}
	return h.cmd.Process.Pid
}

func (h *Host) start(t testing.TB, listen string) {
	t.Helper()
	name, err := Build()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.launch(name, listen); err != nil {
		t.Fatal(err)
	}
}

// launch starts the host binary at name listening on listen and waits
// until its banner names its address. On an error the host is not
// running.
func (h *Host) launch(name, listen string) error {
	args := append([]string{"host", "--listen", listen, "--data-dir", h.DataDir}, h.args...)
	if len(h.wrap) > 0 {
		name, args = h.wrap[0], append(append(h.wrap[1:len(h.wrap):len(h.wrap)], name), args...)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "SHMGR_HOST=", "SHMGR_DATA_DIR=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	h.stderr = &Buffer{}
	cmd.Stderr = h.stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		var banner strings.Builder
		sent := false
		for sc.Scan() {
			banner.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "connect:") && !sent {
				lines <- banner.String()
				sent = true
			}
		}
		if !sent {
			close(lines)
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() { cmd.Wait(); close(done) }()
	select {
	case banner, ok := <-lines:
		if !ok {
			<-done
			return fmt.Errorf("host exited before it was ready: %v\nstderr:\n%s", cmd.ProcessState, h.stderr.String())
		}
		h.Banner = banner
		for _, l := range strings.Split(banner, "\n") {
			if v, ok := strings.CutPrefix(l, "listening:"); ok {
				h.Addr = strings.TrimSpace(v)
			}
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("host not ready after 30s; stderr:\n%s", h.stderr.String())
	}
	h.cmd, h.done = cmd, done
	if h.Addr == "" {
		h.kill()
		return fmt.Errorf("no listening address in banner:\n%s", h.Banner)
	}
	return nil
}

// StartMainHost is StartHost for TestMain, which has no testing.TB: it
// starts "shmgr host --listen 127.0.0.1:0 --data-dir dataDir" plus args
// with the binary Build makes. The caller ends it with Shutdown.
func StartMainHost(dataDir string, args ...string) (*Host, error) {
	name, err := Build()
	if err != nil {
		return nil, err
	}
	h := &Host{DataDir: dataDir, args: args}
	if err := h.launch(name, "127.0.0.1:0"); err != nil {
		RemoveObjects(nil, dataDir)
		return nil, err
	}
	return h, nil
}

// Shutdown is Stop and RemoveObjects for a host StartMainHost started:
// it sends SIGTERM, waits up to 15 s for a clean exit (then kills it),
// removes the host's shared-memory objects, and says what went wrong.
func (h *Host) Shutdown() error {
	var err error
	if h.cmd != nil {
		h.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-h.done:
			if !h.cmd.ProcessState.Success() {
				err = fmt.Errorf("host exited with %v after SIGTERM; stderr:\n%s", h.cmd.ProcessState, h.Stderr())
			}
		case <-time.After(15 * time.Second):
			h.kill()
			err = fmt.Errorf("host did not stop within 15s of SIGTERM; stderr:\n%s", h.Stderr())
		}
		h.cmd = nil
	}
	RemoveObjects(nil, h.DataDir)
	if inst, ierr := instanceOf(h.DataDir); ierr == nil {
		if left, _ := shm.List("shmgr-" + inst + "-"); len(left) > 0 {
			err = errors.Join(err, fmt.Errorf("shared-memory objects left behind: %v", left))
		}
	}
	return err
}

// Stderr returns what the host has logged so far.
func (h *Host) Stderr() string { return h.stderr.String() }

// Stop sends SIGTERM and waits for a graceful exit; it fails the test if
// the host does not exit cleanly within 15 s.
func (h *Host) Stop(t testing.TB) {
	t.Helper()
	if h.cmd == nil {
		return
	}
	h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.done:
	case <-time.After(15 * time.Second):
		h.cmd.Process.Kill()
		<-h.done
		t.Fatalf("host did not stop within 15s after SIGTERM; stderr:\n%s", h.Stderr())
	}
	if !h.cmd.ProcessState.Success() {
		t.Errorf("host exited with %v after SIGTERM; stderr:\n%s", h.cmd.ProcessState, h.Stderr())
	}
	h.cmd = nil
}

// Kill kills the host with SIGKILL (a crash) and waits for it.
func (h *Host) Kill(t testing.TB) { h.kill() }

func (h *Host) kill() {
	if h.cmd == nil {
		return
	}
	h.cmd.Process.Kill()
	<-h.done
	h.cmd = nil
}

// Restart starts the host again on the same data directory and the same
// address, after Stop or Kill.
func (h *Host) Restart(t testing.TB) {
	t.Helper()
	if h.cmd != nil {
		t.Fatal("Restart: host still running; Stop or Kill it first")
	}
	// The port is free again once the old process is gone; retry briefly in
	// case the kernel has not released it yet.
	deadline := time.Now().Add(5 * time.Second)
	for {
		h.startOnce(t)
		if h.cmd != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if h.cmd == nil {
		t.Fatalf("could not restart host on %s", h.Addr)
	}
}

func (h *Host) startOnce(t testing.TB) {
	t.Helper()
	ft := &failOnce{TB: t}
	func() {
		defer func() { recover() }()
		h.start(ft, h.Addr)
	}()
	if ft.failed {
		h.cmd = nil
	}
}

// failOnce turns Fatal into a panic that startOnce recovers, so Restart
// can retry.
type failOnce struct {
	testing.TB
	failed bool
}

func (f *failOnce) Fatal(args ...any)                 { f.failed = true; panic("retry") }
func (f *failOnce) Fatalf(format string, args ...any) { f.failed = true; panic("retry") }

// Run runs the shmgr CLI with args (add "--host", h.Addr yourself or use
// h.CLI) and returns its stdout, stderr and exit code. stdin may be nil.
func Run(t testing.TB, stdin []byte, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return RunEnv(t, stdin, nil, args...)
}

// RunEnv is Run with env added to the environment (after SHMGR_HOST and
// SHMGR_DATA_DIR are cleared, so that they come only from the test).
func RunEnv(t testing.TB, stdin []byte, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, Binary(t), args...)
	cmd.Env = append(append(os.Environ(), "SHMGR_HOST=", "SHMGR_DATA_DIR="), env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("running shmgr %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

// CLI runs a client command against this host: args then --host h.Addr.
func (h *Host) CLI(t testing.TB, stdin []byte, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return Run(t, stdin, append(args, "--host", h.Addr)...)
}

// MustCLI is CLI that fails the test on a non-zero exit and returns stdout.
func (h *Host) MustCLI(t testing.TB, args ...string) string {
	t.Helper()
	out, errOut, code := h.CLI(t, nil, args...)
	if code != 0 {
		t.Fatalf("shmgr %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
	}
	return out
}

// RemoveObjects removes every shared-memory object named by the registry
// in dataDir, any other object with its host's prefix, and the orphans
// the host quarantined. t is not used (it may be nil).
func RemoveObjects(t testing.TB, dataDir string) {
	inst, err := instanceOf(dataDir)
	if err != nil {
		return
	}
	for _, prefix := range []string{"shmgr-", "orphan-"} { // orphan-: quarantined by the host
		names, _ := shm.List(prefix + inst + "-")
		for _, n := range names {
			shm.Remove(n)
		}
	}
}

// CheckFor polls cond every few milliseconds until it is true or timeout
// passes, then fails the test with msg. It is the one way a test here
// waits for a state; a sleep would pass whether or not the state came.
func CheckFor(t testing.TB, timeout time.Duration, msg string, cond func() bool) {
	t.Helper()
	if !Poll(timeout, cond) {
		t.Fatalf("after %v: %s", timeout, msg)
	}
}

// Poll is CheckFor for a caller that decides itself what a timeout
// means (an Errorf with the figures seen, or nothing when either
// outcome is fine): it reports whether cond became true within timeout.
// cond is called at least once, and once more at the deadline.
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for d := time.Millisecond; !cond(); d = min(2*d, 50*time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(d)
	}
	return true
}

// instanceOf returns the instance id in dataDir's registry.json.
func instanceOf(dataDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "registry.json"))
	if err != nil {
		return "", err
	}
	var reg struct {
		Instance string `json:"instance"`
	}
	if err := json.Unmarshal(b, &reg); err != nil {
		return "", fmt.Errorf("%s: %w", filepath.Join(dataDir, "registry.json"), err)
	}
	if len(reg.Instance) != 8 {
		return "", fmt.Errorf("%s: instance %q, want 8 hex digits", filepath.Join(dataDir, "registry.json"), reg.Instance)
	}
	return reg.Instance, nil
}

// FreeAddr returns a loopback address (127.0.0.1:port) that nothing
// listened on a moment ago, for a process that must be told its address
// before it starts (a Raft node's peers, a second listener). Another
// process may take the port in between; tests that can, listen on port 0.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("FreeAddr: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

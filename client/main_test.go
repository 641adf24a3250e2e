package client_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/shm"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// hostAddr is the address of the host process TestMain starts for the
// examples and benchmarks. Tests start their own hosts with
// shmtest.StartHost.
var hostAddr string

// helperEnv, when set, makes this test binary a helper process (see
// TestHelperProcess): it then starts no host of its own.
const helperEnv = "SHMGR_CLIENT_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(m.Run())
	}
	h, err := startMainHost()
	if err != nil {
		fmt.Fprintf(os.Stderr, "client tests: starting a host for the examples: %v\n", err)
		os.Exit(1)
	}
	hostAddr = h.addr
	code := shmtest.Main(m)
	if err := h.stop(); err != nil {
		fmt.Fprintf(os.Stderr, "client tests: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// mainHost is the host process of TestMain. shmtest.StartHost needs a
// *testing.T, which TestMain does not have, so this builds and starts the
// binary itself.
type mainHost struct {
	addr    string
	tmp     string // holds the binary and the data directory
	dataDir string
	cmd     *exec.Cmd
	stderr  *lockedBuffer
	done    chan struct{}
}

// lockedBuffer collects a child process's output.
type lockedBuffer = shmtest.Buffer

// startMainHost builds ./cmd/shmgr (shmtest.Build) and starts
// "shmgr host --listen 127.0.0.1:0 --data-dir <tmp>/data", returning once
// its banner names the address it listens on.
func startMainHost() (_ *mainHost, err error) {
	tmp, err := os.MkdirTemp("", "shmgr-client-test-")
	if err != nil {
		return nil, err
	}
	h := &mainHost{tmp: tmp, dataDir: filepath.Join(tmp, "data"), stderr: &lockedBuffer{}, done: make(chan struct{})}
	defer func() {
		if err != nil {
			h.stop()
		}
	}()
	bin, err := shmtest.Build() // shmtest.Main removes it
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "host", "--listen", "127.0.0.1:0", "--data-dir", h.dataDir, "--quiet")
	cmd.Env = append(os.Environ(), "SHMGR_HOST=", "SHMGR_DATA_DIR=")
	cmd.Stderr = h.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	h.cmd = cmd

	// The banner ends with the "connect:" line; "listening:" comes before.
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		addr := ""
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "listening:"); ok {
				addr = strings.TrimSpace(v)
			}
			if strings.HasPrefix(sc.Text(), "connect:") {
				addrc <- addr
				break
			}
		}
		close(addrc)
		io.Copy(io.Discard, stdout)
		cmd.Wait()
		close(h.done)
	}()
	select {
	case addr, ok := <-addrc:
		if !ok || addr == "" {
			<-h.done
			return nil, fmt.Errorf("host gave no listening address (exit %v); stderr:\n%s", cmd.ProcessState, h.stderr)
		}
		h.addr = addr
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("host not ready after 30s; stderr:\n%s", h.stderr)
	}
	return h, nil
}

// stop sends SIGTERM, waits for the host to exit, removes the
// shared-memory objects of its data directory and the temp directory.
func (h *mainHost) stop() error {
	var errs []error
	if h.cmd != nil && h.cmd.Process != nil {
		h.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-h.done:
			if !h.cmd.ProcessState.Success() {
				errs = append(errs, fmt.Errorf("host exited with %v after SIGTERM; stderr:\n%s", h.cmd.ProcessState, h.stderr))
			}
		case <-time.After(15 * time.Second):
			h.cmd.Process.Kill()
			<-h.done
			errs = append(errs, fmt.Errorf("host did not stop within 15s of SIGTERM; stderr:\n%s", h.stderr))
		}
	}
	if err := removeHostObjects(h.dataDir); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(h.tmp); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// removeHostObjects removes the shared-memory objects whose names start
// with "shmgr-<instance>-", instance being the one in dataDir's registry.
func removeHostObjects(dataDir string) error {
	b, err := os.ReadFile(filepath.Join(dataDir, "registry.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var reg struct {
		Instance string `json:"instance"`
	}
	if err := json.Unmarshal(b, &reg); err != nil || reg.Instance == "" {
		return fmt.Errorf("registry %s: no instance (%v)", dataDir, err)
	}
	names, err := shm.List("shmgr-" + reg.Instance + "-")
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		errs = append(errs, shm.Remove(n))
	}
	return errors.Join(errs...)
}

// modes are the two ways a Region reaches its memory; tests run in both.
var modes = []client.Mode{client.ModeLocal, client.ModeTCP}

func options(mode client.Mode) client.Options {
	o := client.DefaultOptions()
	o.Mode = mode
	return o
}

// connect connects to addr and closes the connection when the test ends.
func connect(t testing.TB, addr string, mode client.Mode) *client.Conn {
	t.Helper()
	c, err := client.Connect(t.Context(), addr, options(mode))
	if err != nil {
		t.Fatalf("Connect(%s, mode=%v): %v", addr, mode, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dial opens region id on addr in mode and closes it when the test ends.
func dial(t testing.TB, addr, id string, mode client.Mode) *client.Region {
	t.Helper()
	r, err := client.Dial(t.Context(), addr, id, options(mode))
	if err != nil {
		t.Fatalf("Dial(%s, %q, mode=%v): %v", addr, id, mode, err)
	}
	if r.Mode() != mode {
		t.Fatalf("Dial(%s, %q, mode=%v).Mode() = %v, want %v (why not local: %s)", addr, id, mode, r.Mode(), mode, r.WhyNotLocal())
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// create makes region id with c and deletes it when the test ends, over
// a new connection (c's may be gone by then, after a host restart).
func create(t testing.TB, c *client.Conn, id string, o client.CreateOptions) client.Info {
	t.Helper()
	in, err := c.Create(t.Context(), id, o)
	if err != nil {
		t.Fatalf("Create(%q, %+v): %v", id, o, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		dc, err := client.Connect(ctx, c.Addr(), options(client.ModeTCP))
		if err != nil {
			t.Errorf("cleanup: deleting %q: %v", id, err)
			return
		}
		defer dc.Close()
		if err := dc.Delete(ctx, id); err != nil && !errors.Is(err, client.ErrNotFound) {
			t.Errorf("cleanup: Delete(%q): %v", id, err)
		}
	})
	return in
}

// readVersion reads r and fails the test on error.
func readVersion(t testing.TB, r *client.Region) ([]byte, uint64) {
	t.Helper()
	b, v, err := r.ReadVersion(t.Context())
	if err != nil {
		t.Fatalf("ReadVersion(%q, mode=%v): %v", r.ID(), r.Mode(), err)
	}
	return b, v
}

package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shmgr/shmgr/client"
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
	tmp, err := os.MkdirTemp("", "shmgr-client-test-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "client tests: %v\n", err)
		os.Exit(1)
	}
	h, err := shmtest.StartMainHost(filepath.Join(tmp, "data"), "--quiet")
	if err != nil {
		os.RemoveAll(tmp)
		fmt.Fprintf(os.Stderr, "client tests: starting a host for the examples: %v\n", err)
		os.Exit(1)
	}
	hostAddr = h.Addr
	code := shmtest.Main(m)
	if err := errors.Join(h.Shutdown(), os.RemoveAll(tmp)); err != nil {
		fmt.Fprintf(os.Stderr, "client tests: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// lockedBuffer collects a child process's output.
type lockedBuffer = shmtest.Buffer

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

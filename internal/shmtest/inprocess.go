package shmtest

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shm"
)

// OpenHost opens an in-process host with cfg (cfg.DataDir is required:
// usually t.TempDir()) and, when the test ends, closes it (CloseHost)
// and fails the test if a shared-memory object named with the host's
// prefix is left. Tests that need Open's report, or open a host again
// on the same directory, call host.Open themselves and CloseHost at the
// end.
func OpenHost(t testing.TB, cfg host.Config) *host.Host {
	t.Helper()
	h, _, err := host.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	prefix := "shmgr-" + Instance(t, cfg.DataDir) + "-"
	t.Cleanup(func() {
		CloseHost(t, h)
		if left, _ := shm.List(prefix); len(left) > 0 {
			t.Errorf("shared-memory objects left behind: %v", left)
		}
	})
	return h
}

// CloseHost closes an in-process host (a second Close is harmless) and
// removes every shared-memory object it made (RemoveObjects): the
// regions outlive a host by design, but not a test.
func CloseHost(t testing.TB, h *host.Host) {
	t.Helper()
	if err := h.Close(); err != nil {
		t.Errorf("host Close: %v", err)
	}
	RemoveObjects(t, h.DataDir())
}

// Instance returns the instance id a host recorded in dataDir's
// registry.json (OS names start with "shmgr-<instance>-"), failing the
// test unless it is there and 8 characters long.
func Instance(t testing.TB, dataDir string) string {
	t.Helper()
	inst, err := instanceOf(dataDir)
	if err != nil {
		t.Fatalf("registry.json: %v", err)
	}
	return inst
}

// Dial connects to a host's shmgr-protocol listener at addr (within
// timeout), reads the first line (the metadata line, or the ERROR of a
// host that refuses the connection), and closes the connection when the
// test ends.
func Dial(t testing.TB, addr string, timeout time.Duration) (nc net.Conn, br *bufio.Reader, meta string) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	br = bufio.NewReader(nc)
	nc.SetReadDeadline(time.Now().Add(timeout))
	meta, err = br.ReadString('\n')
	nc.SetReadDeadline(time.Time{})
	if err != nil {
		t.Fatalf("dial %s: reading the first line: %v (got %q)", addr, err, meta)
	}
	return nc, br, meta
}

// MapRegion maps a host region's objects a second time, by name and
// read-write with an owner slot of its own, as another process (a local
// client, or a program outside shmgr writing the documented layout) would,
// and unmaps them when the test ends. It returns the region and its data
// mapping.
func MapRegion(t testing.TB, r *host.Region) (*region.Region, []byte) {
	t.Helper()
	in := r.Info()
	data, err := shm.Open(in.OSName, in.Size)
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := shm.Open(in.CtlName, region.CtlSize(in.Size, in.MaxWrite))
	if err != nil {
		data.Close()
		t.Fatal(err)
	}
	rr, err := region.Attach(data.Bytes(), ctl.Bytes(), ctl.Path())
	if err != nil {
		data.Close()
		ctl.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rr.Close()
		data.Close()
		ctl.Close()
	})
	return rr, data.Bytes()
}

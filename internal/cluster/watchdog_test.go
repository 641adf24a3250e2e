package cluster

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// logBook collects a node's log lines.
type logBook struct {
	mu    sync.Mutex
	lines []string
}

func (b *logBook) logf(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lines = append(b.lines, fmt.Sprintf(format, args...))
}

// matching returns the lines that contain s.
func (b *logBook) matching(s string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, l := range b.lines {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// outsider maps region id of the node's host as a program outside shmgr
// would: its objects by name, read-write, with its own owner slot.
func outsider(t *testing.T, n *Node, id string) (*region.Region, []byte) {
	t.Helper()
	r, err := n.cfg.Host.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	return shmtest.MapRegion(t, r)
}

// TestWatchdogFindsOutsideWrites: a stream of writes through the log
// raises nothing; a region written through its own write path by another
// program (the version moves) and one whose bytes are changed in place
// (the version stays) are each reported, loudly and once, within seconds.
func TestWatchdogFindsOutsideWrites(t *testing.T) {
	var book logBook
	l := startLocal(t, 1, func(c *Config) { c.Logf = book.logf })
	n := l.nodes[l.leader(t)]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, id := range []string{"moved", "poked"} {
		if _, err := n.Apply(ctx, Command{Op: OpCreate, ID: id, Size: 4096}); err != nil {
			t.Fatal(err)
		}
	}
	// Writes through the log, spread over several checksum rounds.
	var last uint64
	deadline := time.Now().Add(3 * sumEvery * watchEvery)
	for i := 0; i < 2000 && (i < 100 || time.Now().Before(deadline)); i++ {
		for _, id := range []string{"moved", "poked"} {
			v, err := n.Apply(ctx, Command{Op: OpWrite, ID: id, Data: []byte(fmt.Sprintf("%s %d", id, i))})
			if err != nil {
				t.Fatal(err)
			}
			last = v
		}
	}
	// Two more checksum rounds with the content still.
	r0 := n.dog.rounds.Load()
	shmtest.CheckFor(t, 30*time.Second, "the watchdog did not go round", func() bool { return n.dog.rounds.Load() >= r0+2 })
	if st := n.Status(); st.OutsideWrites != 0 || st.Diverged != 0 {
		t.Fatalf("after %d writes through the log: outside writes %d, diverged %d; want 0: %q", last, st.OutsideWrites, st.Diverged, book.matching("OUTSIDE"))
	}

	// Another program writes "moved" through the region's write path.
	rr, _ := outsider(t, n, "moved")
	if _, err := rr.Write([]byte("behind the log"), region.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	shmtest.CheckFor(t, 10*time.Second, "a version moved outside the log was not reported", func() bool {
		return len(book.matching(`REGION WRITTEN OUTSIDE THE LOG: region "moved"`)) > 0
	})
	if got := n.Status().OutsideWrites; got != 1 {
		t.Errorf("outside writes = %d after one write behind the log, want 1", got)
	}

	// Another program changes bytes of "poked" in place, keeping the
	// version (the documented layout, lock flag and all).
	_, data := outsider(t, n, "poked")
	data[region.LockOffset] = 1
	data[region.DataOffset] = 'P'
	data[region.LockOffset] = 0
	shmtest.CheckFor(t, 10*time.Second, "bytes changed outside the log were not reported", func() bool {
		return len(book.matching(`REGION WRITTEN OUTSIDE THE LOG: region "poked" changed`)) > 0
	})
	if got := n.Status().OutsideWrites; got != 2 {
		t.Errorf("outside writes = %d after two changes behind the log, want 2", got)
	}
	if lines := book.matching("OUTSIDE THE LOG"); len(lines) != 2 {
		t.Errorf("%d reports, want one per change: %q", len(lines), lines)
	}
}

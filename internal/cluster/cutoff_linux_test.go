package cluster

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/shmtest"
)

// TestCutOffFollowerRefusesConsistentRead: a follower that can reach no
// other node (both are stopped with SIGSTOP: to it, a partition) answers
// no linearizable read, though its local copy is there to read; once they
// are back it serves one, and it shows the last write.
func TestCutOffFollowerRefusesConsistentRead(t *testing.T) {
	procs := startCluster(t, 3, nil)
	l := leader(t, procs)
	f := procs[(indexOf(procs, l)+1)%3]
	other := procs[(indexOf(procs, l)+2)%3]
	if _, err := l.apply(Command{Op: OpWrite, ID: "default", Data: []byte("before")}); err != nil {
		t.Fatal(err)
	}
	if err := f.barrier(); err != nil {
		t.Fatal(err)
	}
	l.signal(t, syscall.SIGSTOP)
	other.signal(t, syscall.SIGSTOP)
	stopped := true
	// kill(2) returns before the target has stopped: wait until both are.
	for _, p := range []*proc{l, other} {
		shmtest.CheckFor(t, 10*time.Second, "node "+p.spec.ID+" did not stop", func() bool { return procState(p.pid()) == "T" })
	}
	t.Cleanup(func() {
		if stopped {
			l.signal(t, syscall.SIGCONT)
			other.signal(t, syscall.SIGCONT)
		}
	})
	if err := f.barrier(); err == nil {
		t.Fatal("a follower cut off from every other node answered a linearizable read")
	} else {
		t.Logf("cut off: %v", err)
	}
	if b, _, err := f.read(t, "default"); err != nil || string(b) != "before" {
		t.Fatalf("the local copy: %q, %v", b, err)
	}
	l.signal(t, syscall.SIGCONT)
	other.signal(t, syscall.SIGCONT)
	stopped = false
	// The node that led may step down as it resumes (its lease ran out while
	// it was stopped, or the follower's election reaches it first), after
	// /status has named it: so the write goes to whichever node leads.
	if _, err := applyRetry(t, procs, Command{Op: OpWrite, ID: "default", Data: []byte("after")}); err != nil {
		t.Fatal(err)
	}
	shmtest.CheckFor(t, 30*time.Second, "no linearizable read once healed", func() bool { return f.barrier() == nil })
	if b, _, err := f.read(t, "default"); err != nil || string(b) != "after" {
		t.Fatalf("after healing and a barrier: %q, %v; want the last write", b, err)
	}
}

// procState returns a process's state letter from /proc (T: stopped).
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// pid (comm) state ...: comm may hold spaces, so look after the last ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

package region_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/region"
)

// killUnexecedChildren kills this process's children whose environment
// lacks the variable marker (a fork that has not reached exec: the
// command's environment has it) and returns how many it killed.
func killUnexecedChildren(marker string) int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	me := os.Getpid()
	killed := 0
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(me) {
			continue
		}
		dir := filepath.Dir(p)
		env, err := os.ReadFile(filepath.Join(dir, "environ"))
		if err != nil || bytes.Contains(env, []byte(marker+"=")) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(dir))
		if err == nil && syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed++
		}
	}
	return killed
}

// TestLaunchHelperStuckFork: a helper whose start hangs on a child that
// never reaches exec is started anyway, once that child is killed. The
// stuck child here is a sleep started without the helper's environment,
// which the start waits for, as exec.Cmd.Start waits for a stuck fork.
func TestLaunchHelperStuckFork(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("running as a crash helper")
	}
	old := forkTimeout
	forkTimeout = time.Second
	t.Cleanup(func() { forkTimeout = old })
	nr := newNamedRegion(t, region.Raw, 4096)
	var stuck *exec.Cmd
	start := func(c *exec.Cmd) error {
		stuck = exec.Command("sleep", "60")
		stuck.Env = []string{}
		if err := stuck.Start(); err != nil {
			return err
		}
		stuck.Wait()
		return c.Start()
	}
	h, err := launchHelper(t, nr, 1, false, "loop", nil, start)
	if err != nil {
		t.Fatal(err)
	}
	h.kill()
	if stuck.ProcessState == nil || stuck.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("the stuck child ended with %v, want killed by SIGKILL", stuck.ProcessState)
	}
}

package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/shmtest"
)

// TestREADMECluster runs the README's cluster example as written there:
// three hosts on loopback from the same $P, then the client lines, each
// against the host it names. Ports and data directories are swapped for
// free ones and temporary ones; a client line is tried again until it
// succeeds (the first waits out the election), and the JSON read must hold
// what the example wrote.
func TestREADMECluster(t *testing.T) {
	t.Parallel()
	lines := readmeBlock(t, "## Cluster")
	if len(lines) < 5 || !strings.HasPrefix(lines[0], "P=") {
		t.Fatalf("the README's cluster example does not start with P=...: %q", lines)
	}
	// P=a=127.0.0.1:9420,...: every Raft address gets a free port.
	swap := map[string]string{}
	peers := strings.TrimPrefix(lines[0], "P=")
	for _, item := range strings.Split(peers, ",") {
		_, addr, _ := strings.Cut(item, "=")
		swap[addr] = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	}
	expand := func(s string) string {
		s = strings.ReplaceAll(s, "$P", peers)
		for from, to := range swap {
			s = strings.ReplaceAll(s, from, to)
		}
		return s
	}
	var written string
	var hosts []*shmtest.Host
	var env []string
	for n, line := range lines[1:] {
		cmdline, _, _ := strings.Cut(line, "  # ")
		cmdline = strings.TrimSpace(cmdline)
		if cmdline == "" {
			continue
		}
		f := strings.Fields(cmdline)
		if len(f) > 2 && f[0] == "shmgr" && f[1] == "host" {
			// shmgr host --listen L --data-dir D ... &: the host runs on a
			// free port of its own, in a temporary directory.
			if f[len(f)-1] != "&" {
				t.Fatalf("README cluster line %d, %q: a host line should end with &", n+2, cmdline)
			}
			var listen, dir string
			var args []string
			for i := 2; i < len(f)-1; i++ {
				switch f[i] {
				case "--listen":
					listen, i = f[i+1], i+1
				case "--data-dir":
					dir, i = f[i+1], i+1
				default:
					args = append(args, expand(f[i]))
				}
			}
			if listen == "" || dir == "" {
				t.Fatalf("README cluster line %d, %q: no --listen or --data-dir", n+2, cmdline)
			}
			h := startHostAt(t, filepath.Join(t.TempDir(), filepath.Base(dir)), args...)
			swap[listen] = h.Addr
			hosts = append(hosts, h)
			continue
		}
		if len(hosts) == 0 {
			t.Fatalf("README cluster line %d, %q: a client line before any host", n+2, cmdline)
		}
		if env == nil {
			env = shellEnv(t, hosts[0])
		}
		if len(f) > 2 && f[1] == "write" {
			q := strings.Index(cmdline, `"`)
			if q < 0 {
				t.Fatalf("README cluster line %d, %q: the write's content is not quoted", n+2, cmdline)
			}
			written = strings.Trim(cmdline[q:], `"`)
		}
		var out string
		var err error
		deadline := time.Now().Add(60 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			cmd := exec.CommandContext(ctx, "sh", "-c", expand(cmdline))
			cmd.Env = env
			var b []byte
			b, err = cmd.CombinedOutput()
			cancel()
			out = string(b)
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("README cluster line %d, %q: %v\n%s", n+2, cmdline, err, out)
		}
		switch {
		case strings.Contains(cmdline, "read") && strings.Contains(cmdline, "--json"):
			var r readResult
			if err := json.Unmarshal([]byte(out), &r); err != nil || r.Content != written || r.Version != 1 {
				t.Errorf("README cluster line %d, %q printed %s (%v), want %q at version 1", n+2, cmdline, out, err, written)
			}
		case strings.Contains(cmdline, "read"):
			if strings.TrimSpace(out) != written {
				t.Errorf("README cluster line %d, %q printed %q, want %q", n+2, cmdline, out, written)
			}
		case strings.Contains(cmdline, "cluster status"):
			for _, name := range []string{"a", "b", "c"} {
				if !strings.Contains(out, name) {
					t.Errorf("README cluster line %d, %q does not list node %s:\n%s", n+2, cmdline, name, out)
				}
			}
		}
	}
	if written == "" || len(hosts) != 3 {
		t.Fatalf("the README's cluster example started %d hosts and wrote %q: the parser no longer follows it", len(hosts), written)
	}
}

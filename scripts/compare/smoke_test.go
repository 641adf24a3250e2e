//go:build linux

package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCompareSmoke runs the comparison end to end, as the README's
// command does but short: it builds this program and shmgr, starts Redis,
// the echo server and the hosts, measures every section once, writes
// PERFORMANCE.md, the plots and the JSON, and stops everything it
// started. The figures of so short a run mean nothing; that it runs on a
// fresh machine does.
func TestCompareSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("a 30-second end-to-end run")
	}
	for _, cmd := range []string{"redis-server", "taskset"} {
		if _, err := exec.LookPath(cmd); err != nil {
			t.Skipf("%s is not installed (.ci/run installs redis-server)", cmd)
		}
	}
	dir := t.TempDir()
	build := func(out, pkg string) {
		t.Helper()
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Dir = "../.."
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
	}
	self, shmgr := filepath.Join(dir, "compare"), filepath.Join(dir, "shmgr")
	build(self, "./scripts/compare")
	build(shmgr, "./cmd/shmgr")

	out, jsonOut := filepath.Join(dir, "docs"), filepath.Join(dir, "runs.json")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, self, "--quick", "--no-install", "--shmgr", shmgr,
		"--duration", "60ms", "--sweep-duration", "60ms", "--idle-conns", "300", "--watchers", "30",
		"--large", "1048576", "--out", out, "--json", jsonOut)
	cmd.Dir = "../.."
	stdout, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("compare: %v\n%s", err, stderr)
	}
	if !strings.Contains(string(stdout), "READ vs GET") || !strings.Contains(string(stdout), "WRITE vs SET") {
		t.Errorf("compare printed no table of ratios:\n%s", stdout)
	}

	md, err := os.ReadFile(filepath.Join(out, "PERFORMANCE.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## 4 KiB values, pinned", "## 4 KiB values, one unpinned round", "## The local path", "## Large regions", "## Host memory", "## Targets", "## Plots"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("PERFORMANCE.md lacks %q", want)
		}
	}
	judged := func(section string) int {
		s := string(md)
		i := strings.Index(s, section)
		if i < 0 {
			return 0
		}
		s = s[i+len(section):]
		if j := strings.Index(s, "\n## "); j >= 0 {
			s = s[:j]
		}
		return strings.Count(s, "| met |") + strings.Count(s, "| **missed** |")
	}
	if targets := judged("## Targets"); targets != 16 {
		t.Errorf("PERFORMANCE.md judges %d targets, want the 16 performance targets", targets)
	}
	// The cluster's goals: four against etcd when it is installed, then
	// the lag, the local read and the large write.
	want := 3
	if _, err := exec.LookPath("etcd"); err == nil {
		want = 7
	}
	if goals := judged("## Cluster"); goals != want {
		t.Errorf("PERFORMANCE.md judges %d cluster goals, want %d", goals, want)
	}
	if _, err := exec.LookPath("gnuplot"); err == nil {
		for _, png := range []string{"perf-connections.png", "perf-sizes.png"} {
			if st, err := os.Stat(filepath.Join(out, png)); err != nil || st.Size() < 1000 {
				t.Errorf("plot %s: %v", png, err)
			}
		}
	}

	var runs map[string][]json.RawMessage
	b, err := os.ReadFile(jsonOut)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &runs); err != nil {
		t.Fatalf("--json: %v", err)
	}
	for _, k := range []string{"c=1 P=1|shmgr|read", "c=50 P=1|redis|read", "c=50 P=16|echo|echo", "unpinned|c=50 P=16|shmgr|write"} {
		if len(runs[k]) == 0 {
			t.Errorf("--json has no runs of %q", k)
		}
	}
}

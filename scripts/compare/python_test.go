//go:build linux

package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPythonSection runs the Python client's comparison script as
// compare does, short, and checks that its section has every row.
func TestPythonSection(t *testing.T) {
	if testing.Short() {
		t.Skip("a 15-second end-to-end run")
	}
	py, err := pickPython()
	if err != nil {
		t.Skipf("%v (.ci/run installs python3)", err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "shmgr")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/shmgr")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l := &lab{bin: bin, start: time.Now()}
	sec := l.pythonSection(ctx, root, true)
	want := []string{"## Python", "| local r.read() |", "| bytes(mm[5:5+n]) |", "| original shared_memory + check-then-set |"}
	if exec.Command(py, "-c", "import redis").Run() == nil {
		if _, err := exec.LookPath("redis-server"); err == nil {
			want = append(want, "| redis-py GET |", "| redis-py SET |")
		}
	}
	for _, w := range want {
		if !strings.Contains(sec, w) {
			t.Errorf("the Python section lacks %q:\n%s", w, sec)
		}
	}
}

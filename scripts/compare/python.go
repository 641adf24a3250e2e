//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// pythonSection runs the Python client's side-by-side script,
// python/bench/compare.py, against the lab's shmgr binary, and returns
// its Markdown section of PERFORMANCE.md, or a note saying why there is
// none. The script starts its own host and Redis and removes them; it is
// a separate program because it measures a Python process.
func (l *lab) pythonSection(ctx context.Context, root string, quick bool) string {
	py, err := pickPython()
	if err != nil {
		return "\n## Python\n\nNot measured on this run: " + err.Error() + ".\n"
	}
	args := []string{filepath.Join(root, "python", "bench", "compare.py"), "--shmgr", l.bin, "--markdown"}
	if quick {
		args = append(args, "--rounds", "1", "--local-n", "20000", "--tcp-n", "300")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, args...)
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	l.logf("python: %s %s", py, strings.Join(args, " "))
	out, err := cmd.Output()
	if err != nil {
		return fmt.Sprintf("\n## Python\n\nNot measured on this run: python/bench/compare.py failed: %v\n", err)
	}
	return "\n" + string(out)
}

// pickPython returns the first python3 that can import redis (redis-py,
// Debian's python3-redis, which the Redis rows need), else the first
// python3 at all.
func pickPython() (string, error) {
	var first string
	for _, name := range []string{"python3", "/usr/bin/python3"} {
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		if exec.Command(p, "-c", "import redis").Run() == nil {
			return p, nil
		}
		if first == "" {
			first = p
		}
	}
	if first == "" {
		return "", fmt.Errorf("no python3 on PATH")
	}
	return first, nil
}

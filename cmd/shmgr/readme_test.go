package main_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/shmtest"
)

// readmeBlock returns the lines of the first ```sh block after the
// heading of a README section.
func readmeBlock(t *testing.T, heading string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README.md has no %q section", heading)
	}
	s = s[i:]
	j := strings.Index(s, "\n```sh\n")
	if j < 0 {
		t.Fatalf("README.md: no sh block under %q", heading)
	}
	s = s[j+len("\n```sh\n"):]
	k := strings.Index(s, "\n```")
	if k < 0 {
		t.Fatalf("README.md: the sh block under %q does not end", heading)
	}
	return strings.Split(s[:k], "\n")
}

// shellEnv is the environment of the README's commands: "shmgr" is the
// binary under test, talking to h.
func shellEnv(t *testing.T, h *shmtest.Host) []string {
	t.Helper()
	bin := t.TempDir()
	if err := os.Symlink(shmtest.Binary(t), filepath.Join(bin, "shmgr")); err != nil {
		t.Fatal(err)
	}
	return append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"SHMGR_HOST="+h.Addr, "SHMGR_DATA_DIR="+h.DataDir, "SHMGR_TOKEN=")
}

// TestREADMETour runs every line of the README's CLI tour, in order, as
// written there (the comment after "  # " aside), against a fresh host,
// and checks that each succeeds; where the comment is the JSON the line
// prints, the output must match it.
func TestREADMETour(t *testing.T) {
	t.Parallel()
	lines := readmeBlock(t, "## The CLI")
	if len(lines) < 10 {
		t.Fatalf("the README's CLI tour has %d lines: the parser no longer finds it", len(lines))
	}
	h := startHost(t)
	env := shellEnv(t, h)
	work := t.TempDir()
	for n, line := range lines {
		cmdline, comment, _ := strings.Cut(line, "  # ")
		cmdline, comment = strings.TrimSpace(cmdline), strings.TrimSpace(comment)
		if cmdline == "" {
			continue
		}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		cmd := exec.CommandContext(ctx, "sh", "-c", cmdline)
		cmd.Dir, cmd.Env = work, env
		cmd.WaitDelay = 2 * time.Second // a child left holding the output
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		cancel()
		if err != nil {
			t.Fatalf("README tour line %d, %q: %v (a line that runs until Ctrl-C times out)\nstdout: %s\nstderr: %s", n+1, cmdline, err, stdout.String(), stderr.String())
		}
		if strings.HasPrefix(comment, "{") {
			var want, got map[string]any
			if err := json.Unmarshal([]byte(comment), &want); err != nil {
				t.Fatalf("README tour line %d: the comment looks like JSON and is not: %v", n+1, err)
			}
			if err := json.Unmarshal([]byte(stdout.String()), &got); err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("README tour line %d, %q printed %s, the README says %s", n+1, cmdline, stdout.String(), comment)
			}
		}
	}
}

// TestREADMENetcat runs the README's nc example as printed against the
// README's host command (on a free port instead of 9410) and checks every
// line it prints ("..." in the README stands for any text).
func TestREADMENetcat(t *testing.T) {
	t.Parallel()
	nc, err := exec.LookPath("nc")
	if err != nil {
		t.Skip("no nc (install Debian's netcat-openbsd): cannot run the README's nc example")
	}
	if out, _ := exec.Command(nc, "-h").CombinedOutput(); !strings.Contains(string(out), "-N") {
		t.Skipf("%s is not netcat-openbsd (no -N): the README's example is for that one", nc)
	}
	lines := readmeBlock(t, "## The protocol")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "$ ") {
		t.Fatalf("the README's nc example does not start with \"$ \": %q", lines)
	}
	cmdline, want := strings.TrimPrefix(lines[0], "$ "), lines[1:]
	if !strings.Contains(cmdline, "127.0.0.1 9410") {
		t.Fatalf("the README's nc example %q does not talk to 127.0.0.1 9410", cmdline)
	}
	// The README's host command: shmgr host --listen 127.0.0.1:9410.
	h := startHost(t) // --listen 127.0.0.1:0
	_, port, _ := net.SplitHostPort(h.Addr)
	cmdline = strings.Replace(cmdline, "127.0.0.1 9410", "127.0.0.1 "+port, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", cmdline)
	cmd.Env = shellEnv(t, h)
	cmd.WaitDelay = 2 * time.Second // nc left running: it ignores the end of its input without -N
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v (output %q)", cmdline, err, out)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(got) != len(want) {
		t.Fatalf("%s printed %d lines, the README shows %d:\ngot:\n%s\nREADME:\n%s", cmdline, len(got), len(want), out, strings.Join(want, "\n"))
	}
	for i := range want {
		if !matchDots(got[i], want[i]) {
			t.Errorf("line %d: got %q, the README shows %q", i+1, got[i], want[i])
		}
	}
}

// matchDots reports whether s matches pattern, where each "..." in the
// pattern stands for any text.
func matchDots(s, pattern string) bool {
	parts := strings.Split(pattern, "...")
	if len(parts) == 1 {
		return s == pattern
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSummarize runs a real "go test -json" over a small module with a
// passing, a skipped and a failing test, and checks the report: the
// failure's output, the skip with its reason, and go test's result lines
// last.
func TestSummarize(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs a test module")
	}
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/m\n\ngo 1.22\n",
		"m_test.go": `package m
import "testing"
func TestPass(t *testing.T) { t.Log("quiet") }
func TestSkip(t *testing.T) { t.Skip("no chromium here: skipping the browser tests") }
func TestFail(t *testing.T) { t.Error("got 1, want 2") }
func TestSub(t *testing.T) { t.Run("x=1", func(t *testing.T) { t.Skip("sub skipped: why") }) }
`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "test", "-json", "-count=1", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	in, _ := cmd.Output() // the failing test makes it exit 1
	if !json.Valid(bytes.Split(in, []byte("\n"))[0]) {
		t.Fatalf("go test -json gave no JSON:\n%s", in)
	}
	var out bytes.Buffer
	if err := summarize(bytes.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"got 1, want 2",
		"skipped tests (2):",
		"example.com/m TestSkip: m_test.go:4: no chromium here: skipping the browser tests",
		"example.com/m TestSub/x=1: m_test.go:6: sub skipped: why",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "quiet") || strings.Contains(got, "=== RUN") {
		t.Errorf("report shows a passing test's output or -v lines:\n%s", got)
	}
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "FAIL\texample.com/m") {
		t.Errorf("last line = %q, want go test's FAIL line for the package\n%s", last, got)
	}
}

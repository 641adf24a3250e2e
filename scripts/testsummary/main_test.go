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
	got := summarizeModule(t, `package m
import "testing"
func TestPass(t *testing.T) { t.Log("quiet") }
func TestSkip(t *testing.T) { t.Skip("no chromium here: skipping the browser tests") }
func TestFail(t *testing.T) { t.Error("got 1, want 2") }
func TestSub(t *testing.T) { t.Run("x=1", func(t *testing.T) { t.Skip("sub skipped: why") }) }
`)
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

// TestSummarizeTimeout: a package that hits go test's -timeout ends with
// no result for the tests still running, and go test -json files the
// panic, the list of running tests and every goroutine's stack under one
// of them. The report must show all of it: it is all there is to find
// the hang by.
func TestSummarizeTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs a test module")
	}
	got := summarizeModule(t, `package m
import ("testing"; "time")
func TestDone(t *testing.T) { t.Log("quiet") }
func TestHangA(t *testing.T) { t.Parallel(); hangHere() }
func TestHangB(t *testing.T) { t.Parallel(); hangHere() }
func hangHere() { time.Sleep(time.Hour) }
`, "-timeout", "3s")
	for _, want := range []string{
		"panic: test timed out after 3s",
		"running tests:",
		"TestHangA",
		"TestHangB",
		"example.com/m.hangHere(",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "quiet") {
		t.Errorf("report shows a passing test's output:\n%s", got)
	}
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "FAIL\texample.com/m") {
		t.Errorf("last line = %q, want go test's FAIL line for the package\n%s", last, got)
	}
}

// summarizeModule runs go test -json (with args) over a module holding
// the test file src and returns testsummary's report of it.
func summarizeModule(t *testing.T, src string, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":    "module example.com/m\n\ngo 1.22\n",
		"m_test.go": src,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", append([]string{"test", "-json", "-count=1"}, append(args, "./...")...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	in, _ := cmd.Output() // a failing test makes it exit 1
	if !json.Valid(bytes.Split(in, []byte("\n"))[0]) {
		t.Fatalf("go test -json gave no JSON:\n%s", in)
	}
	var out bytes.Buffer
	if err := summarize(bytes.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// Command testsummary reads "go test -json" on standard input and prints
// what plain "go test" prints (each package's result line, the output of
// the tests that failed, and that of the tests still running when their
// package failed: a timeout's panic and stacks), then a summary of the skipped tests with
// their reasons, then the package result lines again, so that the last
// lines are go test's usual ones. scripts/test.sh pipes the suite through
// it: a test skipped because chromium or redis-server is missing says so
// at the end, instead of passing silently.
//
// Usage: go test -json ./... | go run ./scripts/testsummary
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// event is one line of go test -json (see go doc test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// skip is a skipped test and why.
type skip struct{ pkg, test, reason string }

func main() {
	if err := summarize(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(1)
	}
}

// summarize reads events from r and writes the report to w.
func summarize(r io.Reader, w io.Writer) error {
	out := map[string][]string{}     // package + "\x00" + test -> output lines
	started := map[string][]string{} // package -> its tests' keys, in order of first output
	var skips []skip
	var results []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if err := json.Unmarshal(line, &ev); err != nil {
			// Not an event (go vet or build output before the tests):
			// show it as it is.
			fmt.Fprintf(w, "%s\n", line)
			continue
		}
		key := ev.Package + "\x00" + ev.Test
		switch ev.Action {
		case "output", "build-output":
			if ev.Test != "" {
				if _, ok := out[key]; !ok {
					started[ev.Package] = append(started[ev.Package], key)
				}
				out[key] = append(out[key], ev.Output)
				continue
			}
			if isResult(ev.Output) {
				results = append(results, strings.TrimRight(ev.Output, "\n"))
			}
			if ev.Output != "PASS\n" && !strings.HasPrefix(ev.Output, "=== ") {
				fmt.Fprint(w, ev.Output)
			}
		case "fail":
			if ev.Test != "" {
				printOutput(w, out[key])
				delete(out, key)
				continue
			}
			// A package that failed with tests still running (go test's
			// -timeout, a crash) ends them with no event of their own, and
			// its panic and goroutine stacks are filed under one of them.
			for _, k := range started[ev.Package] {
				printOutput(w, out[k])
				delete(out, k)
			}
			delete(started, ev.Package)
		case "skip":
			if ev.Test != "" {
				skips = append(skips, skip{ev.Package, ev.Test, reason(out[key])})
			}
			delete(out, key)
		case "pass":
			delete(out, key)
			if ev.Test == "" {
				delete(started, ev.Package)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(skips) > 0 {
		fmt.Fprintf(w, "\nskipped tests (%d):\n", len(skips))
		for _, s := range skips {
			fmt.Fprintf(w, "  %s %s: %s\n", s.pkg, s.test, s.reason)
		}
	}
	if len(results) > 0 {
		fmt.Fprintln(w, "\ngo test results:")
		for _, r := range results {
			fmt.Fprintln(w, r)
		}
	}
	return nil
}

// printOutput writes a test's output lines without go test -v's own.
func printOutput(w io.Writer, lines []string) {
	for _, l := range lines {
		if !strings.HasPrefix(l, "=== ") {
			fmt.Fprint(w, l)
		}
	}
}

// isResult reports whether a package's output line is its result line.
func isResult(s string) bool {
	return strings.HasPrefix(s, "ok  \t") || strings.HasPrefix(s, "FAIL\t") || strings.HasPrefix(s, "?   \t") || strings.HasPrefix(s, "--- FAIL")
}

// reason is what a skipped test said, without go test's own lines.
func reason(lines []string) string {
	var parts []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		parts = append(parts, t)
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, " ")
}

//go:build linux

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWithHandWritten: a run keeps the hand-written part of the file it
// rewrites, byte for byte, and only that part.
func TestWithHandWritten(t *testing.T) {
	const gen = "# Performance\n\ngenerated now\n"
	hand := "\n\n## The parser, before and after\n\n| a | b |\n"
	tests := []struct {
		name, old string
		missing   bool
		want      string
	}{
		{"no file", "", true, gen},
		{"no mark", "# Performance\n\nold generated\n", false, gen},
		{"mark", "# Performance\n\nold generated\n\n" + handWrittenMark + hand, false, "# Performance\n\ngenerated now\n\n" + handWrittenMark + hand},
		{"mark at the end", "old\n" + handWrittenMark, false, "# Performance\n\ngenerated now\n\n" + handWrittenMark},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "PERFORMANCE.md")
			if !tt.missing {
				if err := os.WriteFile(path, []byte(tt.old), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := withHandWritten(gen, path)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	// A file that cannot be read is an error, not an empty tail.
	if _, err := withHandWritten(gen, t.TempDir()); err == nil || strings.Contains(err.Error(), "no such file") {
		t.Errorf("reading a directory: err = %v, want a read error", err)
	}
}

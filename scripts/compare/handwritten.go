//go:build linux

package main

import (
	"errors"
	"io/fs"
	"os"
	"strings"
)

// handWrittenMark starts the part of PERFORMANCE.md that this program does
// not generate: figures measured by hand for one change (a split, a new
// table), kept next to the generated ones. A run rewrites everything above
// the mark and keeps the mark and everything below it as they are.
const handWrittenMark = "<!-- Everything below is written by hand: scripts/compare keeps it as it is. -->"

// withHandWritten returns md followed by the hand-written part of the file
// at path, if the file has one. A missing file has none; a file that
// cannot be read is an error, so that a run never drops what it could not
// read.
func withHandWritten(md, path string) (string, error) {
	old, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return md, nil
	}
	if err != nil {
		return "", err
	}
	_, tail, found := strings.Cut(string(old), handWrittenMark)
	if !found {
		return md, nil
	}
	return strings.TrimRight(md, "\n") + "\n\n" + handWrittenMark + tail, nil
}

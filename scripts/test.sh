#!/usr/bin/env bash
# Runs every check CI runs: formatting, vet (for Linux, Windows and macOS),
# cross-compilation, the race-enabled test suite, and a bounded run of
# every fuzz target. Usage: ./scripts/test.sh   (FUZZTIME=30s to fuzz longer than the default 5s,
# FUZZTIME=0 to skip fuzzing; SHORT=1 to skip the slow tests)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "these files need gofmt -w:"; echo "$unformatted"; exit 1
fi

step "go vet (linux, windows, darwin)"
go vet ./...
GOOS=windows go vet ./...
GOOS=darwin go vet ./...

step "cross-compile shmgr for windows/amd64, darwin/arm64, darwin/amd64"
for target in windows/amd64 darwin/arm64 darwin/amd64; do
  GOOS=${target%/*} GOARCH=${target#*/} go build -o /dev/null ./cmd/shmgr
done

step "go test -race"
short=()
[ -n "${SHORT:-}" ] && short=(-short)
go test -race -count=1 -timeout 15m "${short[@]}" ./...

fuzztime=${FUZZTIME:-5s}
if [ "$fuzztime" != "0" ]; then
  step "fuzz every target for $fuzztime"
  for pkg in $(go list ./...); do
    dir=$(go list -f '{{.Dir}}' "$pkg")
    for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
      echo "fuzz $pkg $target"
      go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$pkg" >/tmp/shmgr-fuzz.log 2>&1 || { cat /tmp/shmgr-fuzz.log; exit 1; }
    done
  done
fi

step "all checks passed"

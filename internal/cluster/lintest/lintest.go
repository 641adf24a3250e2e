// Package lintest is the linearizability model of one region, for tests
// that check a history of concurrent operations with porcupine: the
// engine's node-process test (internal/cluster) and the host-process test
// (cmd/shmgr) check their histories against the same model.
//
// A region, to its clients, is a register with a version: a write sets
// the value and adds one to the version; a conditional write does so only
// at its expected version and otherwise conflicts; a read returns the
// value and the version. An operation whose outcome is unknown (the
// connection or the leader was lost) may have applied or not.
package lintest

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// State is the register: a value at a version.
type State struct {
	Val string
	Ver uint64
}

// Op is what an operation does.
type Op byte

// Operations.
const (
	// Write sets Val whatever the version.
	Write Op = 'w'
	// CondWrite sets Val only if the version is IfVer.
	CondWrite Op = 'c'
	// Read returns the state.
	Read Op = 'r'
)

// Input is an operation's request.
type Input struct {
	Op    Op
	Val   string // written (Write, CondWrite)
	IfVer uint64 // expected version (CondWrite)
}

// Output is an operation's answer.
type Output struct {
	Val      string // read (Read)
	Ver      uint64 // the version written, or read
	Conflict bool   // a conditional write refused
	// Unknown: the write may or may not have applied. Give its operation
	// Return: Unknown (math.MaxInt64), since it may apply at any later
	// time.
	Unknown bool
}

// Unknown is the Return time of an operation of unknown outcome.
const Unknown = math.MaxInt64

// Model is porcupine's model of the register.
var Model = porcupine.NondeterministicModel{
	Init: func() []any { return []any{State{}} },
	Step: func(state, input, output any) []any {
		st, in, out := state.(State), input.(Input), output.(Output)
		next := State{Val: in.Val, Ver: st.Ver + 1}
		switch in.Op {
		case Write:
			if out.Unknown {
				return []any{st, next}
			}
			if out.Ver == next.Ver {
				return []any{next}
			}
		case CondWrite:
			switch {
			case out.Unknown && in.IfVer == st.Ver:
				return []any{st, next}
			case out.Unknown:
				return []any{st}
			case out.Conflict && in.IfVer != st.Ver:
				return []any{st}
			case !out.Conflict && in.IfVer == st.Ver && out.Ver == next.Ver:
				return []any{next}
			}
		case Read:
			if out.Val == st.Val && out.Ver == st.Ver {
				return []any{st}
			}
		}
		return nil
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(Input), output.(Output)
		return fmt.Sprintf("%c(%q, if %d) -> %q v%d conflict=%v unknown=%v", in.Op, in.Val, in.IfVer, out.Val, out.Ver, out.Conflict, out.Unknown)
	},
}

// Check checks history against Model within timeout (porcupine is
// exponential in how many operations overlap) and fails the test if it is
// not linearizable, leaving a visualization and the history as text in
// the test's artifact directory (go test -artifacts keeps them). A check
// that runs out of time fails too: it proved nothing.
func Check(t testing.TB, history []porcupine.Operation, timeout time.Duration) {
	t.Helper()
	m := Model.ToModel()
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(m, history, timeout)
	t.Logf("porcupine: %d operations checked in %v: %s", len(history), time.Since(start).Round(time.Millisecond), res)
	if res == porcupine.Ok {
		return
	}
	path := filepath.Join(t.ArtifactDir(), "linearizability.html")
	if err := porcupine.VisualizePath(m, info, path); err != nil {
		t.Log(err)
	}
	var text bytes.Buffer
	sorted := slices.Clone(history)
	slices.SortFunc(sorted, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
	for _, op := range sorted {
		fmt.Fprintf(&text, "%d %d %v client=%d %s\n", op.Call, op.Return, op.Metadata, op.ClientId, Model.DescribeOperation(op.Input, op.Output))
	}
	if err := os.WriteFile(filepath.Join(t.ArtifactDir(), "history.txt"), text.Bytes(), 0o600); err != nil {
		t.Log(err)
	}
	t.Fatalf("history is %s after checking for at most %v (visualized in %s; run with -artifacts to keep it)", res, timeout, path)
}

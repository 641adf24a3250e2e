package cluster

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shmerr"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// A register with a version: what one region is to its clients.
type linState struct {
	val string
	ver uint64
}

type linIn struct {
	op  byte // 'w' write, 'c' conditional write, 'r' barrier + local read
	val string
	ifv uint64
}

type linOut struct {
	val      string
	ver      uint64
	conflict bool
	unknown  bool // the write may or may not have applied
}

// linModel: a write adds one to the version; a conditional write applies
// only at its version and otherwise conflicts; a read sees the state. An
// operation of unknown outcome may have applied or not.
var linModel = porcupine.NondeterministicModel{
	Init: func() []any { return []any{linState{}} },
	Step: func(state, input, output any) []any {
		st, in, out := state.(linState), input.(linIn), output.(linOut)
		next := linState{val: in.val, ver: st.ver + 1}
		switch in.op {
		case 'w':
			if out.unknown {
				return []any{st, next}
			}
			if out.ver == next.ver {
				return []any{next}
			}
		case 'c':
			switch {
			case out.unknown && in.ifv == st.ver:
				return []any{st, next}
			case out.unknown:
				return []any{st}
			case out.conflict && in.ifv != st.ver:
				return []any{st}
			case !out.conflict && in.ifv == st.ver && out.ver == next.ver:
				return []any{next}
			}
		case 'r':
			if out.val == st.val && out.ver == st.ver {
				return []any{st}
			}
		}
		return nil
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(linIn), output.(linOut)
		return fmt.Sprintf("%c(%q, if %d) -> %q v%d conflict=%v unknown=%v", in.op, in.val, in.ifv, out.val, out.ver, out.conflict, out.unknown)
	},
}

// TestLinearizable: clients on all three nodes write, write conditionally
// and read (Barrier, then the node's own mapping) one region at once,
// while the leader is SIGKILLed and restarted; porcupine checks that the
// history is linearizable. Writes whose outcome is unknown may have
// applied or not; reads that failed are left out (they changed nothing).
func TestLinearizable(t *testing.T) {
	procs := startCluster(t, 3, nil)
	if _, err := applyRetry(t, procs, Command{Op: OpCreate, ID: "lin", Size: 4096, Layout: region.UTF8}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	now := func() int64 { return time.Since(start).Nanoseconds() }
	var mu sync.Mutex
	var history []porcupine.Operation
	var wg sync.WaitGroup
	stop := make(chan struct{})
	const clients = 6
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			var lastVer uint64
			for i := 0; i < 20000; i++ { // bounded; stop ends it long before
				select {
				case <-stop:
					return
				default:
				}
				p := procs[rng.IntN(len(procs))]
				if !p.up() {
					continue
				}
				in := linIn{val: fmt.Sprintf("c%d-%d", c, i)}
				var out linOut
				call := now()
				switch k := rng.IntN(3); k {
				case 0:
					in.op = 'w'
					v, err := p.apply(Command{Op: OpWrite, ID: "lin", Data: []byte(in.val)})
					if errors.Is(err, ErrNotLeader) {
						continue // no leader took it: nothing happened
					}
					out = linOut{ver: v, unknown: err != nil}
				case 1:
					in.op, in.ifv = 'c', lastVer
					v, err := p.apply(Command{Op: OpWrite, ID: "lin", Data: []byte(in.val), Conditional: true, IfVersion: in.ifv})
					if errors.Is(err, ErrNotLeader) {
						continue
					}
					out = linOut{ver: v, conflict: errors.Is(err, shmerr.ErrConflict), unknown: err != nil && !errors.Is(err, shmerr.ErrConflict)}
				case 2:
					in.op, in.val = 'r', ""
					if err := p.barrier(); err != nil {
						continue
					}
					b, v, err := p.read(t, "lin")
					if err != nil {
						continue
					}
					out = linOut{val: string(b), ver: v}
					lastVer = v
				}
				ret := now()
				if out.unknown {
					ret = math.MaxInt64
				}
				mu.Lock()
				history = append(history, porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: ret, Metadata: p.spec.ID})
				mu.Unlock()
			}
		}()
	}
	// The fault: the leader killed once the clients are going, restarted
	// once a new one leads.
	waitOps := func(n int) {
		shmtest.CheckFor(t, 60*time.Second, fmt.Sprintf("fewer than %d operations", n), func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(history) >= n
		})
	}
	// A few hundred operations: the check is exponential in how many
	// overlap, and operations overlap a lot on a busy machine.
	waitOps(100)
	old := leader(t, procs)
	old.kill(t)
	leader(t, procs)
	waitOps(250)
	old.start(t)
	waitOps(450)
	close(stop)
	wg.Wait()
	unknown := 0
	for _, op := range history {
		if op.Output.(linOut).unknown {
			unknown++
		}
	}
	t.Logf("%d operations (%d of unknown outcome), leader %s killed and restarted", len(history), unknown, old.spec.ID)
	checked := time.Now()
	res, info := porcupine.CheckOperationsVerbose(linModel.ToModel(), history, 2*time.Minute)
	t.Logf("checked in %v", time.Since(checked).Round(time.Millisecond))
	if res != porcupine.Ok {
		path := filepath.Join(t.ArtifactDir(), "linearizability.html")
		if err := porcupine.VisualizePath(linModel.ToModel(), info, path); err != nil {
			t.Log(err)
		}
		var text bytes.Buffer
		slices.SortFunc(history, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
		for _, op := range history {
			fmt.Fprintf(&text, "%d %d node=%v client=%d %s\n", op.Call, op.Return, op.Metadata, op.ClientId, linModel.DescribeOperation(op.Input, op.Output))
		}
		os.WriteFile(filepath.Join(t.ArtifactDir(), "history.txt"), text.Bytes(), 0o600)
		t.Fatalf("history is %s (visualized in %s; run with -artifacts to keep it)", res, path)
	}
}

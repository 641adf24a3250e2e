package cluster

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/shmgr/shmgr/internal/cluster/lintest"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shmerr"
	"github.com/shmgr/shmgr/internal/shmtest"
)

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
				in := lintest.Input{Val: fmt.Sprintf("c%d-%d", c, i)}
				var out lintest.Output
				call := now()
				switch k := rng.IntN(3); k {
				case 0:
					in.Op = lintest.Write
					v, err := p.apply(Command{Op: OpWrite, ID: "lin", Data: []byte(in.Val)})
					if errors.Is(err, ErrNotLeader) {
						continue // no leader took it: nothing happened
					}
					out = lintest.Output{Ver: v, Unknown: err != nil}
				case 1:
					in.Op, in.IfVer = lintest.CondWrite, lastVer
					v, err := p.apply(Command{Op: OpWrite, ID: "lin", Data: []byte(in.Val), Conditional: true, IfVersion: in.IfVer})
					if errors.Is(err, ErrNotLeader) {
						continue
					}
					out = lintest.Output{Ver: v, Conflict: errors.Is(err, shmerr.ErrConflict), Unknown: err != nil && !errors.Is(err, shmerr.ErrConflict)}
				case 2:
					in.Op, in.Val = lintest.Read, ""
					if err := p.barrier(); err != nil {
						continue
					}
					b, v, err := p.read(t, "lin")
					if err != nil {
						continue
					}
					out = lintest.Output{Val: string(b), Ver: v}
					lastVer = v
				}
				ret := now()
				if out.Unknown {
					ret = lintest.Unknown
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
		if op.Output.(lintest.Output).Unknown {
			unknown++
		}
	}
	t.Logf("%d operations (%d of unknown outcome), leader %s killed and restarted", len(history), unknown, old.spec.ID)
	lintest.Check(t, history, 2*time.Minute)
}

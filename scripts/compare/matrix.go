//go:build linux

package main

// This file is the main comparison: 4 KiB reads and writes against Redis
// and the echo ceiling, per connection count and pipeline depth,
// interleaved, pinned and then once unpinned.

import (
	"context"
	"slices"
	"time"

	"github.com/shmgr/shmgr/internal/bench"
)

// matrix runs the main table: for each round and configuration, shmgr
// read, Redis GET, echo, shmgr write and Redis SET back to back, in
// alternating order, then one unpinned round.
func (l *lab) matrix(ctx context.Context, o options, sv *servers, rep *report) error {
	const size = 4 << 10
	runs := sv.remote("r4096", sys{"echo", "echo", "echo", sv.echo, ""})
	pass := func(prefix string, rounds int) error {
		total := rounds * len(combos) * len(runs)
		n := 0
		for round := range rounds {
			for _, c := range combos {
				order := slices.Clone(runs)
				if round%2 == 1 {
					slices.Reverse(order)
				}
				for _, s := range order {
					cfg := bench.Config{ID: s.valueKey, Conns: c.conns, Pipeline: c.pipeline, Size: size, Duration: o.dur}
					r, err := l.measure(ctx, s.p, s.proto, cfg, s.test)
					if err != nil {
						return err
					}
					n++
					k := prefix + key(c.String(), s.name, s.test)
					rep.res[k] = append(rep.res[k], r)
					l.logf("%s%d/%d round %d %s %-5s %-5s %9s ops/s  p99 %7.0f µs  cpu %5.1f µs/req",
						prefix, n, total, round+1, c, s.name, s.test, fmtRate(r.OpsPerSec), r.P99us, r.CPUus)
				}
			}
		}
		return nil
	}
	if err := pass("", o.rounds); err != nil {
		return err
	}
	if !l.pin {
		return nil
	}
	l.logf("one unpinned round: servers and load generator on any CPU")
	if err := l.pinAll(false); err != nil {
		return err
	}
	time.Sleep(1500 * time.Millisecond) // GOMAXPROCS follows the affinity within a second
	err := pass("unpinned|", 1)
	if perr := l.pinAll(true); err == nil {
		err = perr
	}
	time.Sleep(1500 * time.Millisecond)
	return err
}

//go:build linux

package main

// This file compares the local path (a read of a mapped region) with a
// plain memcpy.

import (
	"context"
	"slices"
	"time"

	"github.com/shmgr/shmgr/internal/bench"
)

// localPath compares a local read through the client library with a plain
// memcpy of the same 4 KiB, interleaved.
func (l *lab) localPath(ctx context.Context, o options, sv *servers, rep *report) error {
	for round := range o.rounds {
		tests := []string{"local-read", "memcpy"}
		if round%2 == 1 {
			slices.Reverse(tests)
		}
		for _, t := range tests {
			cfg := bench.Config{ID: "r4096", Conns: 1, Pipeline: 1, Size: 4 << 10, Duration: max(o.dur/2, 100*time.Millisecond)}
			r, err := l.measure(ctx, sv.host, "shmgr", cfg, t)
			if err != nil {
				return err
			}
			r.CPUus = 0
			rep.res[key("local", t)] = append(rep.res[key("local", t)], r)
			l.logf("local round %d %-10s %9s ops/s (%.1f ns/op)", round+1, t, fmtRate(r.OpsPerSec), 1e9/r.OpsPerSec)
		}
	}
	return nil
}

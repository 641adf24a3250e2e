//go:build linux

package main

// This file measures the two plots' sweeps: throughput against connections
// and against value size.

import (
	"context"
	"slices"
	"strconv"

	"github.com/shmgr/shmgr/internal/bench"
)

// sweeps measures the two plots: throughput against connections (4 KiB,
// P=1) and against value size (c=1, P=1). Each point is the median of
// o.sweepRounds runs, one per pass over the whole sweep, so that a burst
// of load from elsewhere on the machine spoils one run of a point, not the
// point.
func (l *lab) sweeps(ctx context.Context, o options, sv *servers, rep *report) error {
	for round := range o.sweepRounds {
		for i, c := range o.conns {
			runs := sv.remote("r4096", sys{"echo", "echo", "echo", sv.echo, ""})
			if (i+round)%2 == 1 {
				slices.Reverse(runs)
			}
			for _, s := range runs {
				cfg := bench.Config{ID: s.valueKey, Conns: c, Pipeline: 1, Size: 4 << 10, Duration: o.sweepDur}
				r, err := l.measure(ctx, s.p, s.proto, cfg, s.test)
				if err != nil {
					return err
				}
				k := key("conns", strconv.Itoa(c), s.name, s.test)
				rep.res[k] = append(rep.res[k], r)
				l.logf("sweep %d/%d c=%-3d %-5s %-5s %9s ops/s", round+1, o.sweepRounds, c, s.name, s.test, fmtRate(r.OpsPerSec))
			}
		}
	}
	for round := range o.sweepRounds {
		for i, size := range o.sizes {
			id := "r" + strconv.Itoa(size)
			runs := sv.remote(id, sys{"raw", "raw", "read", sv.raw, ""})
			if (i+round)%2 == 1 {
				slices.Reverse(runs)
			}
			for _, s := range runs {
				var r bench.Result
				var err error
				if s.name == "raw" {
					r, err = runRaw(ctx, s.p.addr, 'R', size, o.sweepDur)
				} else {
					cfg := bench.Config{ID: s.valueKey, Conns: 1, Pipeline: 1, Size: size, Duration: o.sweepDur}
					r, err = l.measure(ctx, s.p, s.proto, cfg, s.test)
				}
				if err != nil {
					return err
				}
				k := key("sizes", strconv.Itoa(size), s.name, s.test)
				rep.res[k] = append(rep.res[k], r)
				l.logf("sweep %d/%d %-7s %-5s %-5s %9.1f MB/s", round+1, o.sweepRounds, fmtSize(size), s.name, s.test, r.OpsPerSec*float64(size)/1e6)
			}
		}
	}
	return nil
}

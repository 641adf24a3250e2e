//go:build linux

package main

// This file compares remote reads and writes of a large region with a raw
// one-way TCP transfer of the same bytes, and Redis.

import (
	"context"
	"slices"
	"strconv"

	"github.com/shmgr/shmgr/internal/bench"
)

// large compares remote reads and writes of one large region with a raw
// one-way TCP transfer of the same bytes (and Redis), interleaved.
func (l *lab) large(ctx context.Context, o options, sv *servers, rep *report) error {
	size := o.largeSize
	id := "r" + strconv.Itoa(size)
	for round := range o.rounds {
		steps := []func() error{
			func() error { return l.largeBench(ctx, o, rep, round, sv.host, "shmgr", "read", id, size) },
			func() error { return l.largeRaw(ctx, o, rep, round, sv.raw, 'R', size) },
			func() error { return l.largeBench(ctx, o, rep, round, sv.redis, "redis", "read", id, size) },
			func() error { return l.largeBench(ctx, o, rep, round, sv.host, "shmgr", "write", id, size) },
			func() error { return l.largeRaw(ctx, o, rep, round, sv.raw, 'W', size) },
			func() error { return l.largeBench(ctx, o, rep, round, sv.redis, "redis", "write", id, size) },
		}
		if round%2 == 1 {
			slices.Reverse(steps)
		}
		for _, s := range steps {
			if err := s(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (l *lab) largeBench(ctx context.Context, o options, rep *report, round int, p *proc, proto, test, id string, size int) error {
	cfg := bench.Config{ID: id, Conns: 1, Pipeline: 1, Size: size, Duration: o.dur}
	r, err := l.measure(ctx, p, proto, cfg, test)
	if err != nil {
		return err
	}
	rep.res[key("large", proto, test)] = append(rep.res[key("large", proto, test)], r)
	l.logf("large round %d %-5s %-5s %s: %8.0f MB/s", round+1, proto, test, fmtSize(size), r.OpsPerSec*float64(size)/1e6)
	return nil
}

func (l *lab) largeRaw(ctx context.Context, o options, rep *report, round int, p *proc, op byte, size int) error {
	r, err := runRaw(ctx, p.addr, op, size, o.dur)
	if err != nil {
		return err
	}
	test := rawTest(op)
	rep.res[key("large", "raw", test)] = append(rep.res[key("large", "raw", test)], r)
	l.logf("large round %d raw   %-5s %s: %8.0f MB/s", round+1, test, fmtSize(size), r.OpsPerSec*float64(size)/1e6)
	return nil
}

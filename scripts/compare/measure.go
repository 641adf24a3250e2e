//go:build linux

package main

// This file runs one measured test against one server and names the
// configurations and systems the comparisons iterate over.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/shmgr/shmgr/internal/bench"
)

// measure runs one bench test against p after a warm-up, and fills in the
// server's CPU time per request from its own accounting.
func (l *lab) measure(ctx context.Context, p *proc, protocol string, cfg bench.Config, test string) (bench.Result, error) {
	cfg.Protocol, cfg.Tests, cfg.Requests = protocol, []string{test}, 0
	if p != nil {
		cfg.Addr, cfg.Token = p.addr, p.token
	}
	warm := cfg
	warm.Duration = max(cfg.Duration/5, 100*time.Millisecond)
	if _, err := bench.Run(ctx, warm); err != nil {
		return bench.Result{}, fmt.Errorf("%s %s warm-up: %w", protocol, test, err)
	}
	var before time.Duration
	if p != nil {
		before, _ = cpuTime(p.pid)
	}
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return bench.Result{}, fmt.Errorf("%s %s (c=%d P=%d %s): %w", protocol, test, cfg.Conns, cfg.Pipeline, fmtSize(cfg.Size), err)
	}
	r := res[0]
	if r.Errors > 0 {
		return r, fmt.Errorf("%s %s: %d error replies", protocol, test, r.Errors)
	}
	if p != nil && r.Requests > 0 {
		after, _ := cpuTime(p.pid)
		r.CPUus = float64(after-before) / 1e3 / float64(r.Requests)
	}
	return r, nil
}

// A combo is one configuration of the main table.
type combo struct{ conns, pipeline int }

func (c combo) String() string { return fmt.Sprintf("c=%d P=%d", c.conns, c.pipeline) }

var combos = []combo{{1, 1}, {50, 1}, {50, 16}}

// A sys is one side of a comparison: what runs, against which server.
type sys struct {
	name     string // key in the report: shmgr, redis, echo
	proto    string
	test     string
	p        *proc
	valueKey string // region or key
}

// remote is one pass over the remote systems: shmgr read, Redis GET,
// ceiling, shmgr write, Redis SET, on the region (or key) id.
func (sv *servers) remote(id string, ceiling sys) []sys {
	return []sys{
		{"shmgr", "shmgr", "read", sv.host, id},
		{"redis", "redis", "read", sv.redis, id},
		ceiling,
		{"shmgr", "shmgr", "write", sv.host, id},
		{"redis", "redis", "write", sv.redis, id},
	}
}

func key(parts ...string) string { return strings.Join(parts, "|") }

//go:build linux

package main

// This file measures the host's memory per idle connection and per
// watcher, and Redis's per idle connection.

import (
	"context"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"
)

// A memResult is one memory measurement: the host's RSS before and after
// opening n connections (or watchers).
type memResult struct {
	what          string
	n             int
	before, after int64
}

func (m memResult) perUnit() float64 {
	if m.n == 0 {
		return math.NaN()
	}
	return float64(m.after-m.before) / float64(m.n)
}

// settleRSS waits for the process to settle and returns its RSS.
func settleRSS(ctx context.Context, pid int) (int64, error) {
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return rss(pid)
}

// measureMemory measures, on fresh servers, the host's memory per idle
// connection and per watcher, and Redis's per idle connection.
func (l *lab) measureMemory(ctx context.Context, o options, rep *report) error {
	n := o.idleConns
	if limit := int(rep.env.nofile) - 256; n > limit {
		l.logf("the file limit is %d: %d idle connections instead of %d", rep.env.nofile, limit, n)
		n = max(limit, 1)
	}
	rep.env.idleWanted = o.idleConns

	// idle measures n idle connections to a fresh server p, then stops it.
	idle := func(p *proc, err error, protocol, what, label string) error {
		if err != nil {
			return err
		}
		m, conns, err := l.openIdle(ctx, p, n, protocol, what)
		closeAll(conns)
		p.stop()
		if err != nil {
			return err
		}
		rep.mem = append(rep.mem, m)
		l.logf("%s: %d idle connections: RSS %s -> %s, %.1f KiB each", label, m.n, fmtMiB(m.before), fmtMiB(m.after), m.perUnit()/1024)
		return nil
	}
	h, err := l.startHost(ctx, "mem-host", "--max-connections", strconv.Itoa(n+64), "--idle-timeout", "0")
	if err := idle(h, err, "shmgr", "idle connections", "host"); err != nil {
		return err
	}

	w := o.watchers
	h, err = l.startHost(ctx, "mem-host-w", "--max-connections", strconv.Itoa(w+64), "--idle-timeout", "0")
	if err != nil {
		return err
	}
	mc, conns, err := l.openIdle(ctx, h, w, "shmgr", "connections for the watchers")
	if err == nil {
		var mw memResult
		mw, err = l.watchAll(ctx, h, conns)
		mw.before = mc.before
		rep.mem = append(rep.mem, mc, mw)
		l.logf("host: %d watchers (one a connection): RSS %s -> %s, %.1f KiB each with its connection, %.1f KiB for the watch alone",
			mw.n, fmtMiB(mw.before), fmtMiB(mw.after), mw.perUnit()/1024, float64(mw.after-mc.after)/float64(max(mw.n, 1))/1024)
	}
	closeAll(conns)
	h.stop()
	if err != nil {
		return err
	}

	r, err := l.startRedis(ctx, "mem-redis", "--maxclients", strconv.Itoa(n+64))
	return idle(r, err, "redis", "Redis idle connections", "redis")
}

// openIdle opens n connections to p, each made ready (the shmgr metadata
// line read, or a Redis PING answered), and measures p's RSS before and
// after. The caller closes the connections.
func (l *lab) openIdle(ctx context.Context, p *proc, n int, protocol, what string) (memResult, []net.Conn, error) {
	m := memResult{what: what}
	var err error
	if m.before, err = settleRSS(ctx, p.pid); err != nil {
		return m, nil, err
	}
	conns := make([]net.Conn, 0, n)
	d := net.Dialer{Timeout: 5 * time.Second}
	for i := range n {
		if ctx.Err() != nil {
			return m, conns, ctx.Err()
		}
		nc, err := d.DialContext(ctx, "tcp", p.addr)
		if err != nil {
			return m, conns, fmt.Errorf("%s: connection %d: %w", what, i+1, err)
		}
		conns = append(conns, nc)
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		var line string
		if protocol == "redis" {
			if _, err = nc.Write([]byte("PING\r\n")); err == nil {
				line, err = readLine(nc)
			}
			if err == nil && line != "+PONG" {
				err = fmt.Errorf("PING: %q", line)
			}
		} else {
			line, err = readLine(nc)
			if err == nil && !strings.HasPrefix(line, "{") {
				err = fmt.Errorf("metadata line: %q", line[:min(len(line), 80)])
			}
		}
		if err != nil {
			return m, conns, fmt.Errorf("%s: connection %d: %w", what, i+1, err)
		}
		nc.SetDeadline(time.Time{})
	}
	m.n = len(conns)
	m.after, err = settleRSS(ctx, p.pid)
	return m, conns, err
}

// watchAll sends WATCH default on every connection and measures the RSS
// after.
func (l *lab) watchAll(ctx context.Context, p *proc, conns []net.Conn) (memResult, error) {
	m := memResult{what: "watchers (each on its own connection)"}
	for i, nc := range conns {
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := nc.Write([]byte("WATCH default\n")); err != nil {
			return m, fmt.Errorf("watcher %d: %w", i+1, err)
		}
		line, err := readLine(nc)
		if err != nil {
			return m, fmt.Errorf("watcher %d: %w", i+1, err)
		}
		if !strings.HasPrefix(line, "OK") {
			return m, fmt.Errorf("watcher %d: WATCH: %q", i+1, line)
		}
		nc.SetDeadline(time.Time{})
	}
	m.n = len(conns)
	var err error
	m.after, err = settleRSS(ctx, p.pid)
	return m, err
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

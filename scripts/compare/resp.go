//go:build linux

package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// The Redis protocol section: redis-benchmark itself (Debian's
// redis-tools, a generator nobody here wrote) against redis-server and
// against the host's RESP listener (--resp-listen), interleaved round by
// round and pinned as the main table is: the servers on the first CPU,
// redis-benchmark on the second.

// respCombo is one redis-benchmark configuration.
type respCombo struct {
	conns, pipeline, n int
}

func (c respCombo) String() string { return fmt.Sprintf("-c %d -P %d", c.conns, c.pipeline) }

// respCombos are the configurations of the section, with the requests
// each run makes (about two seconds on a 2-core machine).
func respCombos(quick bool) []respCombo {
	cs := []respCombo{{1, 1, 20000}, {50, 1, 100000}, {50, 16, 400000}}
	if quick {
		for i := range cs {
			cs[i].n /= 20
		}
	}
	return cs
}

// respResult is one redis-benchmark run: requests per second by test.
type respResult map[string]float64

// respRow is one configuration's results, round by round.
type respRow struct {
	combo        respCombo
	redis, shmgr []respResult
}

// respBench runs the section and keeps its rows in rep.
func (l *lab) respBench(ctx context.Context, o options) ([]respRow, error) {
	bin, err := exec.LookPath("redis-benchmark")
	if err != nil {
		l.logf("redis-benchmark is not installed (apt-get install redis-tools): skipping the Redis protocol section")
		return nil, nil
	}
	host, err := l.startHost(ctx, "host-resp", "--resp-listen", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer host.stop()
	v, err := l.waitField(ctx, host, "redis:", 5*time.Second)
	if err != nil {
		return nil, err
	}
	respAddr, _, _ := strings.Cut(strings.TrimSpace(v), " ")
	redis, err := l.startRedis(ctx, "redis-resp")
	if err != nil {
		return nil, err
	}
	defer redis.stop()
	var rows []respRow
	for _, c := range respCombos(o.quick) {
		row := respRow{combo: c}
		for round := range o.rounds {
			order := []bool{false, true} // shmgr first?
			if round%2 == 1 {
				order = []bool{true, false}
			}
			for _, shmgrFirst := range order {
				addr, name := redis.addr, "redis"
				if shmgrFirst {
					addr, name = respAddr, "shmgr"
				}
				r, err := l.redisBenchmark(ctx, bin, addr, c)
				if err != nil {
					return nil, fmt.Errorf("redis-benchmark against %s (%s): %w", name, c, err)
				}
				l.logf("redis-benchmark round %d %s %-5s SET %9s GET %9s", round+1, c, name, fmtRate(r["SET"]), fmtRate(r["GET"]))
				if shmgrFirst {
					row.shmgr = append(row.shmgr, r)
				} else {
					row.redis = append(row.redis, r)
				}
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// redisBenchmark runs "redis-benchmark -t get,set -d 4096" once, pinned to
// the load generator's CPUs, and parses its --csv output.
func (l *lab) redisBenchmark(ctx context.Context, bin, addr string, c respCombo) (respResult, error) {
	h, p, _ := strings.Cut(addr, ":")
	args := []string{bin, "-h", h, "-p", p, "-t", "get,set", "-d", "4096", "-c", strconv.Itoa(c.conns), "-P", strconv.Itoa(c.pipeline), "-n", strconv.Itoa(c.n), "-q", "--csv"}
	if l.pin && l.taskset != "" {
		args = append([]string{l.taskset, "-c", cpuList(l.loadCPUs)}, args...)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(rctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%w: %s", err, out)
	}
	return parseRedisBenchmarkCSV(string(out))
}

// parseRedisBenchmarkCSV reads redis-benchmark's --csv output: a header,
// then "TEST","rps",... a line. An error line (the server refused a
// request) fails the run.
func parseRedisBenchmarkCSV(s string) (respResult, error) {
	if strings.Contains(s, "Error") || strings.Contains(s, "ERR") {
		return nil, fmt.Errorf("redis-benchmark reported an error: %s", s)
	}
	recs, err := csv.NewReader(strings.NewReader(s)).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("redis-benchmark --csv: %w: %q", err, s)
	}
	res := respResult{}
	for _, r := range recs {
		if len(r) < 2 || r[0] == "test" {
			continue
		}
		v, err := strconv.ParseFloat(r[1], 64)
		if err != nil {
			return nil, fmt.Errorf("redis-benchmark --csv: %q: %w", r, err)
		}
		res[r[0]] = v
	}
	if _, ok := res["SET"]; !ok {
		return nil, fmt.Errorf("redis-benchmark --csv: no SET result in %q", s)
	}
	if _, ok := res["GET"]; !ok {
		return nil, fmt.Errorf("redis-benchmark --csv: no GET result in %q", s)
	}
	return res, nil
}

// respRatio summarizes the per-round ratios shmgr/Redis of test.
func respRatio(row respRow, test string) summary {
	var a, b []float64
	for i := range min(len(row.shmgr), len(row.redis)) {
		a = append(a, row.shmgr[i][test])
		b = append(b, row.redis[i][test])
	}
	return summarize(ratios(a, b))
}

func respMedian(rs []respResult, test string) float64 {
	var v []float64
	for _, r := range rs {
		v = append(v, r[test])
	}
	return median(v)
}

// respTable renders the section's table: for each configuration and
// test, both medians and the median (range) of the per-round ratios,
// with the goal (at least 1.0x, 1.1x at -P 16).
func respTable(rows []respRow) string {
	var out [][]string
	for _, row := range rows {
		goal := 1.0
		if row.combo.pipeline >= 16 {
			goal = 1.1
		}
		for _, test := range []string{"GET", "SET"} {
			s := respRatio(row, test)
			met := "no"
			if s.median >= goal {
				met = "yes"
			}
			out = append(out, []string{row.combo.String(), test, fmtRate(respMedian(row.redis, test)), fmtRate(respMedian(row.shmgr, test)),
				s.ratioString(), fmt.Sprintf("≥ %.1f×", goal), met})
		}
	}
	return mdTable([]string{"redis-benchmark -d 4096", "test", "Redis ops/s", "shmgr RESP ops/s", "shmgr / Redis", "goal", "goal met"}, out)
}

// respMarkdown is the section of PERFORMANCE.md.
func respMarkdown(rows []respRow, rounds int) string {
	if len(rows) == 0 {
		return ""
	}
	return fmt.Sprintf(`
## The Redis protocol, measured by redis-benchmark

Debian's `+"`redis-benchmark -t get,set -d 4096`"+` against redis-server and
against the host's RESP listener (`+"`shmgr host --resp-listen`"+`), %s,
interleaved and pinned as above (servers on CPU 0, redis-benchmark on
CPU 1). Ratios are of requests per second, medians (min–max) of the
per-round ratios.

%s`, plural(rounds, "round"), respTable(rows))
}

//go:build linux

package main

// This file holds the results of a comparison and renders its tables.

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/shmgr/shmgr/internal/bench"
)

// report holds every result, keyed by key(group, system, test).
type report struct {
	env  machine
	opts options
	res  map[string][]bench.Result
	mem  []memResult
	resp []respRow // the Redis protocol section (resp.go)
	// cluster is the cluster section (cluster.go), nil if it did not run.
	cluster *clusterResult
}

// field returns one field of the results under k, round by round.
func (r *report) field(f func(bench.Result) float64, k ...string) []float64 {
	var out []float64
	for _, x := range r.res[key(k...)] {
		out = append(out, f(x))
	}
	return out
}

func opsOf(x bench.Result) float64 { return x.OpsPerSec }

func p99Of(x bench.Result) float64 { return x.P99us }

func cpuOf(x bench.Result) float64 { return x.CPUus }

// ops returns the median ops/s under k.
func (r *report) ops(k ...string) float64 { return median(r.field(opsOf, k...)) }

// ratio summarizes the per-round ratios of f between keys a and b.
func (r *report) ratio(f func(bench.Result) float64, a, b []string) summary {
	return summarize(ratios(r.field(f, a...), r.field(f, b...)))
}

func redisName(test string) string {
	if test == "read" {
		return "GET"
	}
	return "SET"
}

// remoteTable renders the 4 KiB table for prefix "" (pinned) or
// "unpinned|".
func (r *report) remoteTable(prefix string) string {
	header := []string{"shmgr vs Redis", "c", "P", "shmgr ops/s", "Redis ops/s", "**shmgr / Redis**", "echo ops/s", "shmgr / echo",
		"p99 µs shmgr · Redis", "p99 shmgr / Redis", "CPU µs/req shmgr · Redis", "CPU shmgr / Redis"}
	var rows [][]string
	for _, test := range []string{"read", "write"} {
		for _, c := range combos {
			cs := c.String()
			s := []string{prefix + cs, "shmgr", test}
			rd := []string{prefix + cs, "redis", test}
			e := []string{prefix + cs, "echo", "echo"}
			rows = append(rows, []string{
				fmt.Sprintf("%s vs %s", strings.ToUpper(test), redisName(test)),
				strconv.Itoa(c.conns), strconv.Itoa(c.pipeline),
				fmtRate(r.ops(s...)), fmtRate(r.ops(rd...)),
				"**" + r.ratio(opsOf, s, rd).ratioString() + "**",
				fmtRate(r.ops(e...)), r.ratio(opsOf, s, e).ratioString(),
				fmt.Sprintf("%.0f · %.0f", median(r.field(p99Of, s...)), median(r.field(p99Of, rd...))),
				r.ratio(p99Of, s, rd).ratioString(),
				fmt.Sprintf("%.2f · %.2f", median(r.field(cpuOf, s...)), median(r.field(cpuOf, rd...))),
				r.ratio(cpuOf, s, rd).ratioString(),
			})
		}
	}
	return mdTable(header, rows)
}

// echoTable renders the echo server's medians per configuration.
func (r *report) echoTable(prefix string) string {
	var rows [][]string
	for _, c := range combos {
		k := []string{prefix + c.String(), "echo", "echo"}
		rows = append(rows, []string{strconv.Itoa(c.conns), strconv.Itoa(c.pipeline), fmtRate(r.ops(k...)),
			fmt.Sprintf("%.0f", median(r.field(p99Of, k...))), fmt.Sprintf("%.2f", median(r.field(cpuOf, k...)))})
	}
	return mdTable([]string{"c", "P", "echo ops/s", "echo p99 µs", "echo CPU µs/req"}, rows)
}

// summaryText is what the command prints at the end.
func (r *report) summaryText() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n4 KiB values, %d interleaved rounds of %v, median (min–max) of per-round ratios:\n\n", r.opts.rounds, r.opts.dur)
	b.WriteString(r.remoteTable(""))
	if r.env.pinned {
		b.WriteString("\nOne unpinned round:\n\n")
		b.WriteString(r.remoteTable("unpinned|"))
	}
	b.WriteString("\nTargets:\n\n")
	var rows [][]string
	for _, t := range r.targets() {
		rows = append(rows, t.row())
	}
	b.WriteString(mdTable([]string{"target", "want", "measured", ""}, rows))
	return b.String()
}

// memIdle returns how many idle connections the host test opened.
func (r *report) memIdle() int {
	for _, m := range r.mem {
		if m.what == "idle connections" {
			return m.n
		}
	}
	return 0
}

//go:build linux

package main

// This file holds the performance targets shmgr is held to and judges
// each against what was measured.

import (
	"fmt"
	"math"
)

// A target is one performance goal shmgr is held to (a throughput, p99
// or CPU ratio against Redis or a TCP ceiling, the local read's cost
// against memcpy, or the host's memory for idle connections) and what was
// measured for it.
type target struct {
	name    string
	got     summary
	want    float64
	atLeast bool   // met when got.median >= want (else <= want)
	unit    string // "×" for ratios, else a unit for got and want
}

// met says whether the median reaches the target; a target with no
// measurement is not met.
func (t target) met() bool {
	if t.got.n == 0 || math.IsNaN(t.got.median) {
		return false
	}
	if t.atLeast {
		return t.got.median >= t.want
	}
	return t.got.median <= t.want
}

func (t target) row() []string {
	op := "≤"
	if t.atLeast {
		op = "≥"
	}
	var want, got string
	if t.unit == "×" {
		want = fmt.Sprintf("%s %.2f×", op, t.want)
		got = t.got.ratioString()
		if fmt.Sprintf("%.2f", t.got.median) == fmt.Sprintf("%.2f", t.want) {
			// Rounded, it would read as the threshold: show why it is met
			// or missed.
			got = t.got.ratioPrec(3)
		}
	} else {
		want = fmt.Sprintf("%s %g %s", op, t.want, t.unit)
		got = fmt.Sprintf("%.1f %s", t.got.median, t.unit)
	}
	verdict := "**missed**"
	if t.met() {
		verdict = "met"
	}
	return []string{t.name, want, got, verdict}
}

// targets lists the 16 performance targets with what was measured: READ
// and WRITE throughput against Redis and the echo ceiling, READ p99 and
// host CPU per request against Redis, the local read against memcpy,
// large transfers against raw TCP, and RSS for 10,000 idle connections.
func (r *report) targets() []target {
	sh := func(c combo, test string) []string { return []string{c.String(), "shmgr", test} }
	rd := func(c combo, test string) []string { return []string{c.String(), "redis", test} }
	ec := func(c combo) []string { return []string{c.String(), "echo", "echo"} }
	c1, c50, c50p := combos[0], combos[1], combos[2]
	large := fmtSize(r.opts.largeSize)
	ts := []target{
		{name: "READ ops/s vs Redis GET, c=50 P=16", got: r.ratio(opsOf, sh(c50p, "read"), rd(c50p, "read")), want: 1.1, atLeast: true, unit: "×"},
		{name: "READ ops/s vs bare echo, c=50 P=16", got: r.ratio(opsOf, sh(c50p, "read"), ec(c50p)), want: 0.9, atLeast: true, unit: "×"},
		{name: "READ ops/s vs Redis GET, c=1 P=1", got: r.ratio(opsOf, sh(c1, "read"), rd(c1, "read")), want: 1.0, atLeast: true, unit: "×"},
		{name: "READ ops/s vs Redis GET, c=50 P=1", got: r.ratio(opsOf, sh(c50, "read"), rd(c50, "read")), want: 1.0, atLeast: true, unit: "×"},
	}
	for _, c := range combos {
		ts = append(ts, target{name: "READ p99 vs Redis GET p99, " + c.String(), got: r.ratio(p99Of, sh(c, "read"), rd(c, "read")), want: 1.0, unit: "×"})
	}
	ts = append(ts,
		target{name: "WRITE ops/s vs Redis SET, c=50 P=16", got: r.ratio(opsOf, sh(c50p, "write"), rd(c50p, "write")), want: 1.1, atLeast: true, unit: "×"},
		target{name: "WRITE ops/s vs Redis SET, c=1 P=1", got: r.ratio(opsOf, sh(c1, "write"), rd(c1, "write")), want: 1.0, atLeast: true, unit: "×"},
		target{name: "WRITE ops/s vs Redis SET, c=50 P=1", got: r.ratio(opsOf, sh(c50, "write"), rd(c50, "write")), want: 1.0, atLeast: true, unit: "×"},
		target{name: "host CPU per READ vs Redis per GET, c=50 P=16", got: r.ratio(cpuOf, sh(c50p, "read"), rd(c50p, "read")), want: 0.8, unit: "×"},
		target{name: "host CPU per WRITE vs Redis per SET, c=50 P=16", got: r.ratio(cpuOf, sh(c50p, "write"), rd(c50p, "write")), want: 0.8, unit: "×"},
		target{name: "local read time vs raw 4 KiB memcpy", got: r.ratio(opsOf, []string{"local", "memcpy"}, []string{"local", "local-read"}), want: 2.0, unit: "×"},
		target{name: "remote READ of " + large + " vs raw TCP bandwidth", got: r.ratio(opsOf, []string{"large", "shmgr", "read"}, []string{"large", "raw", "read"}), want: 0.5, atLeast: true, unit: "×"},
		target{name: "remote WRITE of " + large + " vs raw TCP bandwidth", got: r.ratio(opsOf, []string{"large", "shmgr", "write"}, []string{"large", "raw", "write"}), want: 0.5, atLeast: true, unit: "×"},
	)
	for _, m := range r.mem {
		if m.what == "idle connections" {
			mib := float64(m.after) / (1 << 20)
			name := fmt.Sprintf("host RSS with %d idle connections", m.n)
			if m.n < 10000 {
				// Scaled to 10,000 at the measured cost per connection.
				mib = (float64(m.before) + m.perUnit()*10000) / (1 << 20)
				name = fmt.Sprintf("host RSS with 10,000 idle connections (from %d measured)", m.n)
			}
			ts = append(ts, target{name: name, got: summary{median: mib, min: mib, max: mib, n: 1}, want: 300, unit: "MiB"})
		}
	}
	return ts
}

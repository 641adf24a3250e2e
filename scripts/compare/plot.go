//go:build linux

package main

// This file draws the two plots with gnuplot.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// plot writes the two PNGs with gnuplot.
func (l *lab) plot(ctx context.Context, o options, rep *report) error {
	gp, err := exec.LookPath("gnuplot")
	if err != nil {
		return errors.New("gnuplot is missing (apt-get install gnuplot-nox)")
	}
	var cd, sd bytes.Buffer
	fmt.Fprintln(&cd, "# conns shmgr-read redis-get shmgr-write redis-set echo (ops/s)")
	for _, c := range o.conns {
		cs := strconv.Itoa(c)
		fmt.Fprintf(&cd, "%d %.0f %.0f %.0f %.0f %.0f\n", c,
			rep.ops("conns", cs, "shmgr", "read"), rep.ops("conns", cs, "redis", "read"),
			rep.ops("conns", cs, "shmgr", "write"), rep.ops("conns", cs, "redis", "write"),
			rep.ops("conns", cs, "echo", "echo"))
	}
	fmt.Fprintln(&sd, "# size shmgr-read redis-get shmgr-write redis-set raw-read (MB/s)")
	for _, s := range o.sizes {
		ss := strconv.Itoa(s)
		mb := func(x float64) float64 { return x * float64(s) / 1e6 }
		fmt.Fprintf(&sd, "%d %.3f %.3f %.3f %.3f %.3f\n", s,
			mb(rep.ops("sizes", ss, "shmgr", "read")), mb(rep.ops("sizes", ss, "redis", "read")),
			mb(rep.ops("sizes", ss, "shmgr", "write")), mb(rep.ops("sizes", ss, "redis", "write")),
			mb(rep.ops("sizes", ss, "raw", "read")))
	}
	cpath, spath := filepath.Join(l.dir, "conns.dat"), filepath.Join(l.dir, "sizes.dat")
	if err := os.WriteFile(cpath, cd.Bytes(), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(spath, sd.Bytes(), 0o644); err != nil {
		return err
	}
	var tics []string
	for _, s := range o.sizes {
		tics = append(tics, fmt.Sprintf("%q %d", fmtSize(s), s))
	}
	pin := "servers and load generator pinned to different CPUs"
	if !l.pin {
		pin = "unpinned"
	}
	script := fmt.Sprintf(`
set terminal %s
set encoding utf8
set grid
set key outside right center box
set style data linespoints
set output %q
set title "Throughput against connections: 4 KiB values, pipeline 1, loopback\n(%s)"
set xlabel "connections"
set ylabel "requests per second"
set logscale x 2
set logscale y 10
set format y "%%.0s%%c"
set xrange [%s]
set xtics (%s)
plot %q using 1:2 title "shmgr READ (GET)" lw 2 pt 7 lc rgb "#1f77b4", \
     '' using 1:3 title "Redis GET" lw 2 pt 5 lc rgb "#d62728", \
     '' using 1:4 title "shmgr WRITE (SET)" lw 2 pt 7 dt 2 lc rgb "#1f77b4", \
     '' using 1:5 title "Redis SET" lw 2 pt 5 dt 2 lc rgb "#d62728", \
     '' using 1:6 title "bare TCP echo (ceiling)" lw 1 pt 1 lc rgb "#7f7f7f"
set output %q
set title "Throughput against value size: 1 connection, pipeline 1, loopback\n(%s)"
set xlabel "value size"
set ylabel "MB/s (10^6 bytes of values per second)"
set format y "%%g"
set xrange [%s]
set xtics (%s) rotate by -30
plot %q using 1:2 title "shmgr READ (GET)" lw 2 pt 7 lc rgb "#1f77b4", \
     '' using 1:3 title "Redis GET" lw 2 pt 5 lc rgb "#d62728", \
     '' using 1:4 title "shmgr WRITE (SET)" lw 2 pt 7 dt 2 lc rgb "#1f77b4", \
     '' using 1:5 title "Redis SET" lw 2 pt 5 dt 2 lc rgb "#d62728", \
     '' using 1:6 title "raw TCP, one way (ceiling)" lw 1 pt 1 lc rgb "#7f7f7f"
`, "%s", filepath.Join(o.out, "perf-connections.png"), pin, padRange(o.conns), connTics(o.conns), cpath,
		filepath.Join(o.out, "perf-sizes.png"), pin, padRange(o.sizes), strings.Join(tics, ", "), spath)
	var last error
	for _, term := range []string{`pngcairo size 1000,560 font "sans,11"`, `png size 1000,560`} {
		s := strings.Replace(script, "set terminal %s", "set terminal "+term, 1)
		sp := filepath.Join(l.dir, "plot.gp")
		if err := os.WriteFile(sp, []byte(s), 0o644); err != nil {
			return err
		}
		out, err := exec.CommandContext(ctx, gp, sp).CombinedOutput()
		if err == nil {
			l.logf("wrote %s and %s", filepath.Join(o.out, "perf-connections.png"), filepath.Join(o.out, "perf-sizes.png"))
			return nil
		}
		last = fmt.Errorf("gnuplot: %w: %s", err, bytes.TrimSpace(out))
	}
	return last
}

// padRange returns a log-scale x range a little wider than xs, so that
// the first and last tics are labelled.
func padRange(xs []int) string {
	return fmt.Sprintf("%g:%g", float64(slices.Min(xs))/1.3, float64(slices.Max(xs))*1.3)
}

func connTics(conns []int) string {
	var t []string
	for _, c := range conns {
		t = append(t, fmt.Sprintf(`"%d" %d`, c, c))
	}
	return strings.Join(t, ", ")
}

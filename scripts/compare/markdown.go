//go:build linux

package main

// This file renders docs/PERFORMANCE.md from a report.

import (
	_ "embed"
	"fmt"
	"strconv"
	"strings"
)

// markdown renders docs/PERFORMANCE.md.
func (r *report) markdown() string {
	var b strings.Builder
	e, o := r.env, r.opts
	pinning := "the servers are pinned to CPU 0 and the load generator to CPU 1\n  (`taskset`); one more round runs unpinned. With a CPU each, the figures\n  are stable and neither side can borrow the other's core; the unpinned\n  round shows what a default placement gives."
	if !e.pinned {
		pinning = "unpinned (fewer than 2 CPUs, or `--pin=false`): the figures are\n  less stable than pinned ones."
	}
	rounds := plural(o.rounds, "round")
	fmt.Fprintf(&b, `# Performance: shmgr against Redis, side by side

These figures come from one machine, measured by one command. The machines
this project runs on are shared and noisy, so absolute numbers drift from
run to run and from machine to machine: only the **ratios** below, measured
side by side, and their medians over several interleaved rounds mean
anything.

Reproduce them from the module root (about 12 minutes; it installs
Debian's `+"`redis-server`"+`, `+"`etcd-server`"+` and `+"`gnuplot-nox`"+` with
`+"`scripts/compare/install.sh`"+` if missing, and rewrites this file and the two
plots):

`+"```sh\n%s\n```"+`

`+"`go run ./scripts/compare --quick`"+` is a one-minute smoke run that prints the
tables and writes nothing.

| | |
|---|---|
| date | %s |
| CPU | %s, %d CPUs |
| kernel | %s |
| Go | %s |
| Redis | %s (Debian's redis-server) |
| shmgr | %s (commit %s) |
| load average (1, 5, 15 min) | %s at the start, %s at the end |
| run time | %v |

## How it measures

- One load generator, `+"`internal/bench`"+` (what `+"`shmgr bench`"+` runs), drives a
  shmgr host (`+"`GET`/`SET`"+` of a raw region, which is what READ and WRITE
  are over TCP), Redis (`+"`GET`/`SET`"+` of one key) and a bare TCP echo
  server (`+"`shmgr bench --serve-echo`"+`: the ceiling any request/reply
  protocol over TCP can reach here) with the same code, the same value
  size, connections and pipeline depth. Every server listens on
  127.0.0.1 only.
- Redis runs as `+"`redis-server --save \"\" --appendonly no`"+` (no persistence);
  the host runs with its defaults (`+"`--quiet`"+`), and keeps every
  region in shared memory.
- Placement: %s
- Each configuration runs %s. In each round shmgr READ, Redis GET,
  echo, shmgr WRITE and Redis SET run back to back for %v each (after a
  warm-up of a fifth of that), in the opposite order every other round
  (A B A B), so that the machine's drift cancels out of each round's
  ratio. The tables show medians of the absolute values, and the
  **median and range (min–max) of the per-round ratios**.
- p99 is each run's 99th-percentile latency from sending a pipelined batch
  to each reply. CPU per request is the server process's own accounting
  (utime+stime in `+"`/proc/<pid>/stat`"+`, 10 ms ticks) over the run,
  divided by the requests it answered.
- With one connection and no pipelining a server that sleeps between
  requests waits for the loopback round trip and for its CPU to wake: the
  echo column (and Redis) are that. The host busy-polls a lone client
  (`+"`--busy-poll`"+`, on by default: see below), so it passes them there.

`, o.command, e.date, e.cpu, e.ncpu, e.kernel, e.goVersion, e.redis, e.shmgr, orNone(e.commit), e.loadStart, e.loadEnd, e.took, pinning, rounds, o.dur)
	if e.pinned {
		b.WriteString("## 4 KiB values, pinned\n\n")
	} else {
		b.WriteString("## 4 KiB values\n\n")
	}
	b.WriteString(r.remoteTable(""))
	b.WriteString(`
The bare echo server of the same runs, for reference. It is a Go program
like the host (one goroutine per connection, the runtime's netpoller):
where shmgr's p99 or CPU per request is close to echo's but not to
Redis's, the difference lies in the Go runtime's network path rather
than in shmgr's own work.

`)
	b.WriteString(r.echoTable(""))
	if e.pinned {
		b.WriteString("\n## 4 KiB values, one unpinned round\n\nThe same runs once, with servers and load generator free to use both CPUs (one round: no range).\n\n")
		b.WriteString(r.remoteTable("unpinned|"))
		b.WriteString(unpinnedNote)
	}

	b.WriteString("\n## The local path\n\nA read through the client library on a region it maps (`local-read`: the seqlock, the length and the copy out) against a plain `copy` of the same 4 KiB (`memcpy`), one goroutine each, interleaved.\n\n")
	lr, mc := r.field(opsOf, "local", "local-read"), r.field(opsOf, "local", "memcpy")
	b.WriteString(mdTable([]string{"local-read", "memcpy", "local-read time / memcpy time"}, [][]string{{
		fmt.Sprintf("%s ops/s (%.1f ns)", fmtRate(median(lr)), 1e9/median(lr)),
		fmt.Sprintf("%s ops/s (%.1f ns)", fmtRate(median(mc)), 1e9/median(mc)),
		summarize(ratios(mc, lr)).ratioString(),
	}}))

	large := fmtSize(o.largeSize)
	fmt.Fprintf(&b, `
## Large regions

Reading and writing a %s raw region remotely, one connection, one
request at a time, against a raw one-way TCP transfer of the same bytes
(this program's own minimal server, on the same CPU: a 9-byte request,
then the bytes, with no parsing and no copy but the socket's). The echo
server cannot serve as the ceiling here: the load generator writes a
whole request before it reads, and an echo of more than the socket
buffers would deadlock.

`, large)
	var lrows [][]string
	for _, test := range []string{"read", "write"} {
		mbps := func(k ...string) string {
			return fmt.Sprintf("%.0f", r.ops(k...)*float64(o.largeSize)/1e6)
		}
		s, raw, rd := []string{"large", "shmgr", test}, []string{"large", "raw", test}, []string{"large", "redis", test}
		lrows = append(lrows, []string{strings.ToUpper(test), mbps(s...), mbps(raw...), "**" + r.ratio(opsOf, s, raw).ratioString() + "**",
			mbps(rd...), r.ratio(opsOf, s, rd).ratioString()})
	}
	b.WriteString(mdTable([]string{large, "shmgr MB/s", "raw TCP MB/s", "**shmgr / raw**", "Redis MB/s", "shmgr / Redis"}, lrows))

	b.WriteString("\n## Host memory\n\nEach on a fresh server: its resident set (VmRSS) after a second's rest, before and after opening the connections (each made ready: the shmgr metadata line read, or a Redis `PING` answered), then after a `WATCH default` on each of another host's connections. Kernel socket buffers are not in the RSS.\n\n")
	var mrows [][]string
	for _, m := range r.mem {
		server := "shmgr host"
		if strings.HasPrefix(m.what, "Redis") {
			server = "Redis"
		}
		mrows = append(mrows, []string{server, strings.TrimPrefix(m.what, "Redis "), strconv.Itoa(m.n), fmtMiB(m.before), fmtMiB(m.after), fmt.Sprintf("%.1f KiB", m.perUnit()/1024)})
	}
	b.WriteString(mdTable([]string{"server", "what", "n", "RSS before", "RSS after", "per unit"}, mrows))
	if n := r.memIdle(); n > 0 && n < e.idleWanted {
		fmt.Fprintf(&b, "\nThe file limit (%d) allowed %d idle connections of the %d asked for.\n", e.nofile, n, e.idleWanted)
	}
	for i, m := range r.mem {
		if m.what == "watchers (each on its own connection)" && i > 0 {
			fmt.Fprintf(&b, "\nA watch alone (beyond its connection) costs %.1f KiB.\n", float64(m.after-r.mem[i-1].after)/float64(max(m.n, 1))/1024)
		}
	}

	b.WriteString("\n## Targets\n\nThe performance targets shmgr is held to, each judged on the median of the per-round ratios (range in parentheses). A missed target is written as missed.\n\n")
	var trows [][]string
	for _, t := range r.targets() {
		trows = append(trows, t.row())
	}
	b.WriteString(mdTable([]string{"target", "want", "measured", ""}, trows))
	b.WriteString("\n\"A few hundred MB\" for 10,000 idle connections is checked as at most 300 MiB.\n")
	b.WriteString(oneAtATimeNote)

	fmt.Fprintf(&b, `
## Plots

Each point is the median of %s of %v, one per pass over the whole
sweep (so a burst of load from elsewhere spoils one run, not the point),
pinned as above; the order of the systems alternates from point to point
and from pass to pass.

![Throughput against connections, 1 to 256, 4 KiB values](perf-connections.png)

![Throughput against value size, 64 B to 16 MiB, one connection](perf-sizes.png)

## Finding where the time goes

`+"`shmgr host --cpu-profile FILE`"+` (a hidden flag) writes a pprof CPU profile
until the host stops with SIGINT. Run a host that way, drive it with
`+"`shmgr bench`"+` in the configuration to study, stop it with Ctrl-C, then
`+"`go tool pprof -top FILE`"+`.
`, plural(o.sweepRounds, "run"), o.sweepDur)
	return b.String()
}

// The notes are hand-written analysis of the measurements, printed into
// PERFORMANCE.md as they are. They live in notes/ as Markdown rather than
// in Go strings because they cite figures measured by hand: edit them
// there. Nothing modifies these variables.
var (
	// unpinnedNote explains the unpinned round's p99.
	//go:embed notes/unpinned.md
	unpinnedNote string
	// oneAtATimeNote says where the host's time goes without pipelining.
	//go:embed notes/one-at-a-time.md
	oneAtATimeNote string
)

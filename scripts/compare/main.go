//go:build linux

// Command compare measures a shmgr host against Redis on this machine, side
// by side, with the same load generator (internal/bench), and writes the
// result to docs/PERFORMANCE.md with two plots.
//
// Run it from the module root:
//
//	go run ./scripts/compare                # the full comparison, about 12 minutes
//	go run ./scripts/compare --quick        # a smoke run of about a minute (writes no docs)
//	go run ./scripts/compare --only-cluster # three hosts against a three-member etcd (cluster.go)
//
// It installs Debian's redis-server, etcd-server (for the cluster section)
// and gnuplot-nox (for the plots) with install.sh when they are missing, builds shmgr, and starts on 127.0.0.1, each
// on a free port and pinned to the first CPU: redis-server, "shmgr host",
// "shmgr bench --serve-echo" (a bare TCP echo server: the ceiling of any
// request/reply protocol over TCP) and a raw one-way TCP server (this
// program again, with --serve-raw: the ceiling for large transfers). The
// load generator runs in this process, pinned to the second CPU.
//
// The machines it runs on are shared and noisy, so it reports ratios
// measured side by side: every configuration runs for several rounds, each
// round runs shmgr and Redis (and the echo server) back to back, in
// alternating order from round to round (A B A B) so that drift cancels,
// and the table shows the median of the per-round ratios with their range.
//
// Every process it starts is stopped, and its temporary directory and the
// shared-memory objects of its hosts are removed, when it exits, also on
// Ctrl-C.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/shmgr/shmgr/internal/bench"
)

// options are the command's settings.
type options struct {
	rounds      int           // interleaved rounds per configuration
	dur         time.Duration // length of one measured run
	sweepDur    time.Duration // length of one run in the plots' sweeps
	sweepRounds int           // runs per point of the plots (their median is drawn)
	quick       bool          // a short smoke run
	onlyRESP    bool          // --only-resp: just the redis-benchmark section (resp.go)
	onlyCluster bool          // --only-cluster: just the cluster section (cluster.go)
	noCluster   bool          // --no-cluster: skip the cluster section
	out         string        // where PERFORMANCE.md and the PNGs go ("": nowhere)
	shmgrBin    string        // a prebuilt shmgr binary ("": build one)
	noInstall   bool          // never run install.sh
	pin         bool          // pin servers and load generator to different CPUs
	idleConns   int           // idle connections for the memory test
	watchers    int           // watchers for the memory test
	largeSize   int           // the large-region size
	conns       []int         // connection counts of the connections plot
	sizes       []int         // value sizes of the sizes plot
	jsonOut     string        // where to save every run's result as JSON ("": nowhere)
	command     string        // the command line that reproduces the run
	serveRawOn  string        // internal: run the raw one-way TCP server
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(2)
	}
	if o.serveRawOn != "" {
		if err := serveRaw(o.serveRawOn); err != nil {
			fmt.Fprintln(os.Stderr, "compare --serve-raw:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, o)
	interrupted := ctx.Err() != nil
	stop()
	switch {
	case interrupted:
		fmt.Fprintln(os.Stderr, "compare: interrupted; everything it started is stopped and removed")
		os.Exit(130)
	case err != nil:
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.IntVar(&o.rounds, "rounds", 5, "interleaved rounds per configuration (the table shows their median and range)")
	fs.DurationVar(&o.dur, "duration", 2*time.Second, "length of each measured run (after a warm-up of a fifth of it)")
	fs.DurationVar(&o.sweepDur, "sweep-duration", 500*time.Millisecond, "length of each run of the plots' sweeps")
	fs.IntVar(&o.sweepRounds, "sweep-rounds", 3, "runs per point of the plots (the plots show their median)")
	fs.BoolVar(&o.onlyRESP, "only-resp", false, "run only the Redis protocol section (redis-benchmark against Redis and --resp-listen) and print its table")
	fs.BoolVar(&o.onlyCluster, "only-cluster", false, "run only the cluster section (three hosts against a three-member etcd) and print its tables")
	fs.BoolVar(&o.noCluster, "no-cluster", false, "skip the cluster section")
	fs.BoolVar(&o.quick, "quick", false, "a smoke run of about a minute: 1 round, short runs, fewer points, no docs unless --out is given")
	fs.StringVar(&o.out, "out", "", "directory for PERFORMANCE.md and the PNG plots (default: docs in the module root; --quick: none)")
	fs.StringVar(&o.shmgrBin, "shmgr", "", "use this shmgr binary instead of building ./cmd/shmgr")
	fs.BoolVar(&o.noInstall, "no-install", false, "do not install redis-server, etcd-server or gnuplot-nox with apt-get when missing")
	fs.BoolVar(&o.pin, "pin", true, "pin the servers to the first CPU and the load generator to the second (taskset)")
	fs.IntVar(&o.idleConns, "idle-conns", 10000, "idle connections for the memory test (scaled down to the file limit)")
	fs.IntVar(&o.watchers, "watchers", 1000, "watchers for the memory test")
	fs.IntVar(&o.largeSize, "large", 64<<20, "the large-region size in bytes")
	fs.StringVar(&o.jsonOut, "json", "", "also save every run's result (bench.Result, keyed by configuration) as JSON to this file")
	fs.StringVar(&o.serveRawOn, "serve-raw", "", "internal: run the raw one-way TCP server on ADDR")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	o.conns = []int{1, 2, 4, 8, 16, 32, 64, 128, 256}
	o.sizes = []int{64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20}
	if o.quick {
		if !set["rounds"] {
			o.rounds = 1
		}
		if !set["duration"] {
			o.dur = 300 * time.Millisecond
		}
		if !set["sweep-duration"] {
			o.sweepDur = 300 * time.Millisecond
		}
		if !set["sweep-rounds"] {
			o.sweepRounds = 1
		}
		if !set["idle-conns"] {
			o.idleConns = 1000
		}
		if !set["watchers"] {
			o.watchers = 100
		}
		o.conns = []int{1, 8, 64, 256}
		o.sizes = []int{64, 4 << 10, 64 << 10, 1 << 20, 16 << 20}
	}
	if o.rounds < 1 || o.rounds > 100 {
		return o, fmt.Errorf("--rounds %d: use 1 to 100", o.rounds)
	}
	if o.sweepRounds < 1 || o.sweepRounds > 100 {
		return o, fmt.Errorf("--sweep-rounds %d: use 1 to 100", o.sweepRounds)
	}
	if o.dur < 50*time.Millisecond || o.sweepDur < 50*time.Millisecond {
		return o, errors.New("--duration and --sweep-duration must be at least 50ms")
	}
	if o.largeSize < 1 || o.largeSize > 1<<30 {
		return o, fmt.Errorf("--large %d: use 1 byte to 1 GiB", o.largeSize)
	}
	o.command = strings.TrimSpace("go run ./scripts/compare " + strings.Join(args, " "))
	return o, nil
}

func run(ctx context.Context, o options) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if o.out == "" && !o.quick {
		o.out = filepath.Join(root, "docs")
	}
	if o.jsonOut != "" {
		// Fail now, not after ten minutes of measuring.
		if err := os.MkdirAll(filepath.Dir(o.jsonOut), 0o755); err != nil {
			return fmt.Errorf("--json: %w", err)
		}
	}
	l := &lab{start: time.Now(), pin: o.pin}
	defer l.close()
	if l.dir, err = os.MkdirTemp("", "shmgr-compare-"); err != nil {
		return err
	}
	if err := ensurePackages(ctx, root, o.noInstall); err != nil {
		return err
	}
	if l.self, err = os.Executable(); err != nil {
		return err
	}
	l.bin = o.shmgrBin
	if l.bin == "" {
		l.bin = filepath.Join(l.dir, "shmgr")
		l.logf("building shmgr")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", l.bin, "./cmd/shmgr")
		cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build ./cmd/shmgr: %w", err)
		}
	}
	if err := l.setUpCPUs(); err != nil {
		return err
	}
	nofile := raiseNoFile()
	env := describeMachine(ctx, root)
	env.pinned = l.pin
	env.nofile = nofile
	l.logf("%s, %d CPUs, load %s; servers on CPU %v, load generator on CPU %v", env.cpu, len(l.allCPUs), env.loadStart, l.srvCPUs, l.loadCPUs)

	if o.onlyRESP {
		rows, err := l.respBench(ctx, o)
		if err == nil {
			fmt.Println(respMarkdown(rows, o.rounds))
		}
		return err
	}
	rep := &report{env: env, opts: o, res: map[string][]bench.Result{}}
	if o.onlyCluster {
		sv, err := l.startServers(ctx)
		if err != nil {
			return err
		}
		if err := l.pinSelf(true); err != nil {
			return err
		}
		if err := l.clusterSection(ctx, o, sv, rep); err != nil {
			return err
		}
		fmt.Println(rep.clusterMarkdown())
		return saveJSON(l, o, rep)
	}
	if err := l.measureMemory(ctx, o, rep); err != nil {
		return err
	}
	sv, err := l.startServers(ctx)
	if err != nil {
		return err
	}
	rep.env.redis = sv.redisVersion
	rep.env.shmgr = sv.shmgrVersion
	if err := l.pinSelf(true); err != nil {
		return err
	}
	if err := l.matrix(ctx, o, sv, rep); err != nil {
		return err
	}
	if err := l.localPath(ctx, o, sv, rep); err != nil {
		return err
	}
	if err := l.large(ctx, o, sv, rep); err != nil {
		return err
	}
	if err := l.sweeps(ctx, o, sv, rep); err != nil {
		return err
	}
	if rep.resp, err = l.respBench(ctx, o); err != nil {
		return err
	}
	if !o.noCluster {
		if err := l.clusterSection(ctx, o, sv, rep); err != nil {
			return err
		}
	}
	rep.env.loadEnd = loadAvg()
	rep.env.took = time.Since(l.start).Round(time.Second)

	md := rep.markdown() + respMarkdown(rep.resp, o.rounds) + rep.clusterMarkdown() + l.pythonSection(ctx, root, o.quick)
	fmt.Println(rep.summaryText())
	if len(rep.resp) > 0 {
		fmt.Println("\nredis-benchmark, Redis protocol:\n\n" + respTable(rep.resp))
	}
	if rep.cluster != nil {
		fmt.Println(rep.clusterMarkdown())
	}
	if o.out == "" {
		l.logf("no --out: PERFORMANCE.md and the plots are not written")
		return saveJSON(l, o, rep)
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	if err := l.plot(ctx, o, rep); err != nil {
		l.logf("plots: %v", err)
		md += "\n> The plots could not be drawn on this run: " + err.Error() + "\n"
	}
	path := filepath.Join(o.out, "PERFORMANCE.md")
	md, err = withHandWritten(md, path)
	if err != nil {
		return fmt.Errorf("keeping the hand-written part of %s: %w", path, err)
	}
	if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
		return err
	}
	l.logf("wrote %s", path)
	return saveJSON(l, o, rep)
}

// saveJSON writes every run's result to --json, if given.
func saveJSON(l *lab, o options, rep *report) error {
	if o.jsonOut == "" {
		return nil
	}
	b, err := json.MarshalIndent(rep.res, "", "  ")
	if err == nil {
		err = os.WriteFile(o.jsonOut, append(b, '\n'), 0o644)
	}
	if err != nil {
		return fmt.Errorf("--json: %w", err)
	}
	l.logf("wrote %s", o.jsonOut)
	return nil
}

// moduleRoot returns the directory of the go.mod this program belongs to.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run this from the shmgr module (go run ./scripts/compare)")
	}
	return filepath.Dir(mod), nil
}

package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/shmgr/shmgr/internal/bench"
)

func newBenchCmd() *cobra.Command {
	var cfg bench.Config
	var tests string
	var asJSON, quiet, local bool
	var serveEcho, host, follower string
	var g globals
	c := &cobra.Command{
		Use:   "bench",
		Short: "Measure a host's throughput and latency (or Redis's, for comparison)",
		Long: `A load generator in the style of redis-benchmark: -c connections, each with
-P requests in flight, values of -d bytes, for -n requests or --duration.
It prints ops/s and latency quantiles per test.

Tests (-t, comma-separated):
  read, write, mixed     GET, SET, or both alternately, over TCP
  echo                   raw bytes to an echo server (--protocol echo)
  local-read, local-write  through the client library on a mapped region
  memcpy                 a plain copy of the same bytes: the local ceiling
  watch                  write-to-notification latency for --watchers watchers
  lag                    a cluster's replication lag: writes through --host (the
                         leader), one at a time, each timed from its acknowledgement
                         until a mapping of --follower's region (a host of the
                         cluster on this machine) shows its version

--protocol redis drives a Redis server with the same generator (read as GET,
write as SET of the key --id) for side-by-side runs; --protocol etcd drives
etcd's JSON gateway (write as /v3/kv/put, read as /v3/kv/range, one HTTP
keep-alive connection per -c, -P 1). Run against a cluster's leader or a
follower, read and write measure replicated writes and local reads;
"go run ./scripts/compare" starts a three-host cluster and a three-member
etcd and puts them side by side. "shmgr bench
--serve-echo ADDR" runs a bare TCP echo server: the ceiling any protocol
over TCP can reach here.`,
		Example: `  shmgr bench -t read,write -c 50 -P 16 -d 4096
  shmgr bench -t read -c 1 -n 100000 --json
  shmgr bench --protocol redis --host 127.0.0.1:6379 -t read,write -c 50 -P 16
  shmgr bench -t local-read,local-write,memcpy -d 4096
  shmgr bench -t watch --watchers 100 -n 2000
  shmgr bench -t lag --host LEADER --follower FOLLOWER -n 2000
  shmgr bench --protocol etcd --host 127.0.0.1:2379 -t write -c 50 --duration 5s
  shmgr bench --serve-echo 127.0.0.1:9999 &  shmgr bench --protocol echo --host 127.0.0.1:9999 -t echo`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if serveEcho != "" {
				ln, err := net.Listen("tcp", serveEcho)
				if err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "echo server listening on %s\n", ln.Addr())
				go func() { <-c.Context().Done(); ln.Close() }()
				bench.ServeEcho(ln)
				return nil
			}
			cfg.Tests = strings.Split(tests, ",")
			if err := checkBenchFlags(c, &cfg); err != nil {
				return usageError{err}
			}
			if !c.Flags().Changed("requests") {
				cfg.Requests = 0
			}
			cfg.Addr, cfg.Follower = host, follower
			cfg.WatchLocal = local
			if cfg.Protocol == "shmgr" {
				o, err := g.options()
				if err != nil {
					return err
				}
				cfg.Token, cfg.FollowerToken = o.Token, o.Token
				cfg.Fingerprint = g.fingerprint
			}
			if !quiet && isTerminal(c.ErrOrStderr()) {
				w := c.ErrOrStderr()
				cfg.Progress = func(test string, done uint64, el time.Duration) {
					fmt.Fprintf(w, "\r%-12s %10d requests  %10.0f ops/s  %5.1fs ", test, done, float64(done)/el.Seconds(), el.Seconds())
				}
			}
			res, err := bench.Run(c.Context(), cfg)
			if cfg.Progress != nil {
				fmt.Fprint(c.ErrOrStderr(), "\r\033[K")
			}
			if len(res) > 0 {
				// What finished is printed even when a later test failed.
				out := result{json: res, text: func(w io.Writer) error {
					printResults(w, res)
					return nil
				}}
				if perr := out.print(c.OutOrStdout(), asJSON); perr != nil {
					return perr
				}
			}
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&host, "host", "127.0.0.1:9410", "server address (the leader's, for -t lag)")
	f.StringVar(&follower, "follower", "", "-t lag: a follower host of the cluster on this machine, whose region is mapped")
	f.StringVar(&cfg.ID, "id", "bench", "region (shmgr; created raw, -d bytes, if missing) or key (redis)")
	f.IntVarP(&cfg.Conns, "connections", "c", 50, "connections (or goroutines, for local tests)")
	f.IntVarP(&cfg.Pipeline, "pipeline", "P", 1, "requests in flight per connection")
	f.IntVarP(&cfg.Size, "data-size", "d", 4096, "value size in bytes")
	f.IntVarP(&cfg.Requests, "requests", "n", 100000, "requests per test (or --duration)")
	f.DurationVar(&cfg.Duration, "duration", 0, "run each test this long instead of -n requests")
	f.StringVarP(&tests, "tests", "t", "read,write", "tests to run, comma-separated")
	f.StringVar(&cfg.Protocol, "protocol", "shmgr", "shmgr, redis, echo or etcd")
	f.IntVar(&cfg.Watchers, "watchers", 1, "watchers for the watch test")
	f.BoolVar(&local, "local-watchers", false, "watch test: watchers map the region instead of using TCP")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress line")
	f.StringVar(&serveEcho, "serve-echo", "", "run a bare TCP echo server on ADDR instead (for the ceiling)")
	f.StringVar(&g.token, "token", "", "token for a protected host (env "+tokenEnv+")")
	f.StringVar(&g.fingerprint, "tls-fingerprint", "", "connect with TLS, pinning this certificate fingerprint")
	f.StringVar(&g.dataDir, "data-dir", "", "the local host's data directory, to pick up its token")
	g.mode = "auto"
	return c
}

// checkBenchFlags refuses flags bench cannot run with, before anything
// runs.
func checkBenchFlags(c *cobra.Command, cfg *bench.Config) error {
	switch {
	case c.Flags().Changed("duration") && c.Flags().Changed("requests"):
		return errors.New("give -n or --duration, not both")
	case cfg.Conns < 1:
		return fmt.Errorf("-c %d: want at least 1 connection", cfg.Conns)
	case cfg.Pipeline < 1:
		return fmt.Errorf("-P %d: want at least 1 request in flight", cfg.Pipeline)
	case cfg.Size < 0:
		return fmt.Errorf("-d %d: the value size cannot be negative", cfg.Size)
	case cfg.Requests < 1 && !c.Flags().Changed("duration"):
		return fmt.Errorf("-n %d: want at least 1 request", cfg.Requests)
	case c.Flags().Changed("duration") && cfg.Duration <= 0:
		return fmt.Errorf("--duration %v: must be positive", cfg.Duration)
	case cfg.Watchers < 1:
		return fmt.Errorf("--watchers %d: want at least 1", cfg.Watchers)
	case !slices.Contains(bench.Protocols, cfg.Protocol):
		return fmt.Errorf("--protocol %q: use %s", cfg.Protocol, strings.Join(bench.Protocols, ", "))
	case cfg.Protocol == "etcd" && cfg.Pipeline != 1:
		return fmt.Errorf("-P %d: etcd is driven with one request in flight per connection (-P 1)", cfg.Pipeline)
	case slices.Contains(cfg.Tests, "lag") && !c.Flags().Changed("follower"):
		return errors.New("-t lag needs --follower ADDR: a follower of --host's cluster, on this machine")
	}
	return bench.CheckTests(cfg.Tests)
}

func printResults(w io.Writer, res []bench.Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "test\tprotocol\tconns\tpipeline\tsize\trequests\terrors\tops/s\tp50 µs\tp90 µs\tp99 µs\tp99.9 µs\tmax µs\t")
	for _, r := range res {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%.0f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t\n",
			r.Test, r.Protocol, r.Conns, r.Pipeline, r.Size, r.Requests, r.Errors, r.OpsPerSec, r.P50us, r.P90us, r.P99us, r.P999us, r.MaxUs)
	}
	tw.Flush()
}

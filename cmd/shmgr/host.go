package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/shmgr/shmgr/internal/daemon"
	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/server"
)

// hostFlags are the host command's settings.
type hostFlags struct {
	listen       string
	dataDir      string
	defaultSize  int64
	lockTimeout  time.Duration
	idleTimeout  time.Duration
	readTimeout  time.Duration
	writeTimeout time.Duration
	logFormat    string
	logLevel     string
	quiet        bool
	token        string
	rotateToken  bool
	insecure     bool
	tls          bool
	tlsCert      string
	tlsKey       string
	metrics      string
	maxConns     int
	maxRequest   int64
	maxRegions   int
	maxRegion    int64
	maxWatches   int
	group        string
	cpuProfile   string
	busyPoll     time.Duration
	respListen   string // --resp-listen: the Redis protocol listener (off if empty)
	respCreate   bool   // --resp-create: SET on a missing key creates its region
	cluster      clusterFlags
}

// maxBusyPoll bounds --busy-poll.
const maxBusyPoll = daemon.MaxBusyPoll

func newHostCmd() *cobra.Command {
	f := &hostFlags{}
	def := daemon.DefaultConfig("")
	c := &cobra.Command{
		Use:   "host",
		Short: "Run a host: own the shared-memory regions and serve them over TCP",
		Long: `Run a host. It keeps its registry (shm_id -> region) in a data directory,
re-adopts its regions after a restart or crash, creates the default region
(the documented 4096-byte layout) on first start, and serves every region
over TCP. It prints what a client needs: the machine's IP addresses, the
port, the shm_id and the OS name of the shared-memory object.

Stop it with Ctrl-C (SIGINT) or SIGTERM: it finishes the requests in flight,
saves the registry and leaves the regions in place for its next start.`,
		Example: `  shmgr host
  shmgr host --listen 127.0.0.1:9410
  shmgr host --listen :7000 --data-dir /var/lib/shmgr
  shmgr host --resp-listen 127.0.0.1:6380      # also speak Redis: redis-cli -p 6380 GET default
  shmgr host --node a --peers a=10.0.0.1:9420,b=10.0.0.2:9420,c=10.0.0.3:9420 --tls --peer-fingerprints a=FP,b=FP,c=FP   # one node of a cluster (README: Cluster)
  shmgr host --node d --raft 10.0.0.4:9420 --join --tls --peer-fingerprints a=FP,b=FP,c=FP   # then: shmgr cluster add d 10.0.0.4:9420 --fingerprint FP
  SHMGR_DATA_DIR=/tmp/shmgr-test shmgr host --listen 127.0.0.1:0`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			return runHost(c.Context(), f, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	c.Flags().StringVar(&f.listen, "listen", def.Listen, "TCP address to listen on (port 0 picks a free port)")
	c.Flags().StringVar(&f.dataDir, "data-dir", "", "data directory (env "+host.DataDirEnv+"; default: the user's state directory)")
	c.Flags().Int64Var(&f.defaultSize, "default-size", def.DefaultSize, "size of the default region when it is first created")
	c.Flags().DurationVar(&f.lockTimeout, "lock-timeout", def.LockTimeout, "how long a write waits for a region's lock")
	c.Flags().DurationVar(&f.idleTimeout, "idle-timeout", def.IdleTimeout, "close connections idle for this long (0: never)")
	c.Flags().DurationVar(&f.readTimeout, "read-timeout", def.ReadTimeout, "close connections that take longer than this to send one request")
	c.Flags().DurationVar(&f.writeTimeout, "write-timeout", def.WriteTimeout, "close connections that do not take their replies for this long")
	c.Flags().StringVar(&f.logFormat, "log-format", "text", "log format on standard error: text or json")
	c.Flags().BoolVar(&f.quiet, "quiet", false, "log only warnings and errors (--log-level warn)")
	c.Flags().StringVar(&f.logLevel, "log-level", "info", "log from this level up: debug (also every client's connection opening and closing), info, warn or error")
	c.Flags().StringVar(&f.token, "token", "", "the admin token (env "+tokenEnv+"; default: made on first start and kept in <data-dir>/tokens.json)")
	c.Flags().BoolVar(&f.rotateToken, "rotate-token", false, "replace the admin token with a new one")
	c.Flags().BoolVar(&f.insecure, "insecure", false, "serve a non-loopback address without tokens (not recommended)")
	c.Flags().BoolVar(&f.tls, "tls", false, "serve TLS with a self-signed certificate kept in <data-dir>/tls (or --tls-cert/--tls-key)")
	c.Flags().StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate (PEM) to serve; implies --tls")
	c.Flags().StringVar(&f.tlsKey, "tls-key", "", "TLS private key (PEM) for --tls-cert")
	c.Flags().StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics at http://ADDR/metrics (a bare port binds 127.0.0.1)")
	c.Flags().IntVar(&f.maxConns, "max-connections", def.MaxConns, "most open client connections")
	c.Flags().Int64Var(&f.maxRequest, "max-request", def.MaxRequest, "largest payload of one write, in bytes")
	c.Flags().IntVar(&f.maxRegions, "max-regions", def.MaxRegions, "most regions")
	c.Flags().Int64Var(&f.maxRegion, "max-region-size", def.MaxRegionSize, "largest region, in bytes")
	c.Flags().IntVar(&f.maxWatches, "max-watches", def.MaxWatches, "most watches per connection")
	c.Flags().StringVar(&f.group, "group", "", "share regions and the data directory with this group (read-write for its members)")
	c.Flags().DurationVar(&f.busyPoll, "busy-poll", def.BusyPoll, "how long a lone client's connection keeps checking for its next request before it sleeps (0: off; at most 1ms)")
	c.Flags().StringVar(&f.respListen, "resp-listen", "", "also serve the Redis protocol (RESP2/RESP3) on this address, such as 127.0.0.1:6380 (off by default)")
	c.Flags().BoolVar(&f.respCreate, "resp-create", def.RESPCreate, "let SET on a missing key create a utf8 region for it (see \"Redis protocol\" in the README)")
	c.Flags().StringVar(&f.cpuProfile, "cpu-profile", "", "write a CPU profile (pprof) to this file until the host stops")
	c.Flags().MarkHidden("cpu-profile")
	addClusterFlags(c, &f.cluster)
	return c
}

func runHost(ctx context.Context, f *hostFlags, stdout, stderr io.Writer) error {
	logger, err := newLogger(stderr, f.logFormat, f.logLevel, f.quiet)
	if err != nil {
		return err
	}
	if err := checkDefaultSize(f); err != nil {
		return err
	}
	dir := f.dataDir
	if dir == "" {
		if dir, err = host.DefaultDataDir(); err != nil {
			return err
		}
	}
	if err := checkHostFlags(f); err != nil {
		return err
	}
	cc, err := f.cluster.clusterConfig(f.tls || f.tlsCert != "")
	if err != nil {
		return err
	}
	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	cfg := daemon.DefaultConfig(dir)
	cfg.Listen, cfg.RESPListen, cfg.RESPCreate = f.listen, f.respListen, f.respCreate
	cfg.DefaultSize, cfg.MaxRegions, cfg.MaxRegionSize = f.defaultSize, f.maxRegions, f.maxRegion
	if f.group != "" {
		gid, err := lookupGroup(f.group)
		if err != nil {
			return usageError{fmt.Errorf("--group %q: %w", f.group, err)}
		}
		cfg.ShareGroup, cfg.GID = true, gid
	}
	cfg.Token, cfg.RotateToken, cfg.Insecure = f.token, f.rotateToken, f.insecure
	if cfg.Token == "" {
		cfg.Token = os.Getenv(tokenEnv)
	}
	cfg.TLS, cfg.TLSCert, cfg.TLSKey = f.tls, f.tlsCert, f.tlsKey
	cfg.Metrics = f.metrics
	cfg.ServerName = "shmgr " + version
	cfg.MaxRequest, cfg.MaxConns, cfg.MaxWatches = f.maxRequest, f.maxConns, f.maxWatches
	cfg.LockTimeout, cfg.IdleTimeout, cfg.ReadTimeout, cfg.WriteTimeout = f.lockTimeout, f.idleTimeout, f.readTimeout, f.writeTimeout
	cfg.BusyPoll = f.busyPoll
	cfg.Logger = logger
	cfg.Cluster = cc
	d, err := daemon.Start(ctx, cfg)
	if err != nil {
		return err
	}
	printBanner(stdout, d)

	select {
	case err = <-d.Failed():
		logger.Error("serve", "err", err)
	case <-ctx.Done():
		logger.Info("shutting down: finishing requests in flight")
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d.Shutdown(sctx) // says why in the log if it was cut short
	// Close waits for whatever Shutdown left running and returns the
	// error of saving the registry.
	if cerr := d.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if err == nil {
		logger.Info("host stopped; regions stay in place for the next start")
	}
	return err
}

// checkDefaultSize refuses a --default-size no region could have: the
// default region has the utf8 layout (a 5-byte header, then data), and
// it must fit --max-region-size.
func checkDefaultSize(f *hostFlags) error {
	const min = region.DataOffset + 1 // the header and one byte of data
	most, why := f.maxRegion, "--max-region-size"
	if int64(region.MaxUTF8Size) < most {
		// The utf8 layout's length field is 32 bits.
		most, why = int64(region.MaxUTF8Size), "the utf8 layout's 4 GiB of data and its header"
	}
	if f.defaultSize < min || f.defaultSize > most {
		return usageError{fmt.Errorf("--default-size %d: the default region (utf8 layout) needs at least %d bytes (5 of header, 1 of data) and at most %d (%s, %s)",
			f.defaultSize, min, most, humanBytes(most), why)}
	}
	return nil
}

func newLogger(w io.Writer, format, levelName string, quiet bool) (*slog.Logger, error) {
	var level slog.Level
	switch levelName {
	case "debug":
		level = slog.LevelDebug
	case "info", "":
		level = slog.LevelInfo
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil, usageError{fmt.Errorf("--log-level %q: use debug, info, warn or error", levelName)}
	}
	if quiet {
		level = max(level, slog.LevelWarn)
	}
	o := &slog.HandlerOptions{Level: level}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, usageError{fmt.Errorf("--log-format %q: use text or json", format)}
}

// printBanner prints what a client needs to connect, as the original did.
func printBanner(w io.Writer, d *daemon.Daemon) {
	addr, respAddr, in := d.Addr(), d.RESPAddr(), d.DefaultInfo()
	port := strconv.Itoa(addr.Port)
	ips := server.Addresses(addr.IP)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "shmgr host %s (pid %d)\n", version, os.Getpid())
	fmt.Fprintf(tw, "listening:\t%s\n", addr.String())
	fmt.Fprintf(tw, "addresses:\t%s\n", strings.Join(ips, ", "))
	fmt.Fprintf(tw, "port:\t%s\n", port)
	fmt.Fprintf(tw, "shm_id:\t%s\n", in.ShmID)
	fmt.Fprintf(tw, "os name:\t%s (%s)\n", in.OSName, in.OSKind)
	fmt.Fprintf(tw, "layout:\t%s, %d bytes (up to %d bytes of data), version %d\n", in.Layout, in.Size, in.MaxDataSize, in.Version)
	fmt.Fprintf(tw, "data dir:\t%s\n", d.DataDir())
	flags := ""
	switch {
	case d.RequiresToken():
		fmt.Fprintf(tw, "token:\t%s\n", d.Token())
		flags += " --token " + d.Token()
	case d.Insecure():
		fmt.Fprintf(tw, "auth:\tnone (--insecure: anyone who can reach this port can read and write)\n")
	default:
		fmt.Fprintf(tw, "auth:\tnone (loopback only)\n")
	}
	if fp := d.Fingerprint(); fp != "" {
		fmt.Fprintf(tw, "tls sha256:\t%s\n", fp)
		flags += " --tls-fingerprint " + fp
	}
	if respAddr != nil {
		fmt.Fprintf(tw, "redis:\t%s (redis-cli -h %s -p %d)\n", respAddr, server.Addresses(respAddr.IP)[0], respAddr.Port)
	}
	fmt.Fprintf(tw, "connect:\tshmgr read --host %s%s\n", net.JoinHostPort(ips[0], port), flags)
	tw.Flush()
}

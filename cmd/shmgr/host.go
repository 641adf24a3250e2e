package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/metrics"
	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/rawsock"
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
}

// maxBusyPoll bounds --busy-poll: a longer spin would cost more CPU than
// the sleep and wake-up it saves.
const maxBusyPoll = time.Millisecond

func newHostCmd() *cobra.Command {
	f := &hostFlags{}
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
  SHMGR_DATA_DIR=/tmp/shmgr-test shmgr host --listen 127.0.0.1:0`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			return runHost(c.Context(), f, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	c.Flags().StringVar(&f.listen, "listen", ":"+strconv.Itoa(client.DefaultPort), "TCP address to listen on (port 0 picks a free port)")
	c.Flags().StringVar(&f.dataDir, "data-dir", "", "data directory (env "+host.DataDirEnv+"; default: the user's state directory)")
	c.Flags().Int64Var(&f.defaultSize, "default-size", region.DefaultSize, "size of the default region when it is first created")
	c.Flags().DurationVar(&f.lockTimeout, "lock-timeout", region.DefaultTimeout, "how long a write waits for a region's lock")
	c.Flags().DurationVar(&f.idleTimeout, "idle-timeout", 10*time.Minute, "close connections idle for this long (0: never)")
	c.Flags().DurationVar(&f.readTimeout, "read-timeout", 30*time.Second, "close connections that take longer than this to send one request")
	c.Flags().DurationVar(&f.writeTimeout, "write-timeout", 30*time.Second, "close connections that do not take their replies for this long")
	c.Flags().StringVar(&f.logFormat, "log-format", "text", "log format on standard error: text or json")
	c.Flags().BoolVar(&f.quiet, "quiet", false, "log only warnings and errors")
	c.Flags().StringVar(&f.token, "token", "", "the admin token (env "+tokenEnv+"; default: made on first start and kept in <data-dir>/tokens.json)")
	c.Flags().BoolVar(&f.rotateToken, "rotate-token", false, "replace the admin token with a new one")
	c.Flags().BoolVar(&f.insecure, "insecure", false, "serve a non-loopback address without tokens (not recommended)")
	c.Flags().BoolVar(&f.tls, "tls", false, "serve TLS with a self-signed certificate kept in <data-dir>/tls (or --tls-cert/--tls-key)")
	c.Flags().StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate (PEM) to serve; implies --tls")
	c.Flags().StringVar(&f.tlsKey, "tls-key", "", "TLS private key (PEM) for --tls-cert")
	c.Flags().StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics at http://ADDR/metrics (a bare port binds 127.0.0.1)")
	c.Flags().IntVar(&f.maxConns, "max-connections", 4096, "most open client connections")
	c.Flags().Int64Var(&f.maxRequest, "max-request", proto.DefaultMaxPayload, "largest payload of one write, in bytes")
	c.Flags().IntVar(&f.maxRegions, "max-regions", 1024, "most regions")
	c.Flags().Int64Var(&f.maxRegion, "max-region-size", 4<<30, "largest region, in bytes")
	c.Flags().IntVar(&f.maxWatches, "max-watches", 1024, "most watches per connection")
	c.Flags().StringVar(&f.group, "group", "", "share regions and the data directory with this group (read-write for its members)")
	c.Flags().DurationVar(&f.busyPoll, "busy-poll", server.DefaultBusyPoll, "how long a lone client's connection keeps checking for its next request before it sleeps (0: off; at most 1ms)")
	c.Flags().StringVar(&f.respListen, "resp-listen", "", "also serve the Redis protocol (RESP2/RESP3) on this address, such as 127.0.0.1:6380 (off by default)")
	c.Flags().BoolVar(&f.respCreate, "resp-create", true, "let SET on a missing key create a utf8 region for it (see \"Redis protocol\" in the README)")
	c.Flags().StringVar(&f.cpuProfile, "cpu-profile", "", "write a CPU profile (pprof) to this file until the host stops")
	c.Flags().MarkHidden("cpu-profile")
	return c
}

func runHost(ctx context.Context, f *hostFlags, stdout, stderr io.Writer) error {
	logger, err := newLogger(stderr, f.logFormat, f.quiet)
	if err != nil {
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
	maxConns := connLimit(f.maxConns, logger)
	cfg := host.DefaultConfig(dir)
	cfg.DefaultSize = f.defaultSize
	cfg.MaxRegions, cfg.MaxRegionSize = f.maxRegions, f.maxRegion
	cfg.Logf = func(format string, args ...any) { logger.Info(fmt.Sprintf(format, args...)) }
	if f.group != "" {
		gid, err := lookupGroup(f.group)
		if err != nil {
			return usageError{fmt.Errorf("--group %q: %w", f.group, err)}
		}
		cfg.ShareGroup, cfg.GID, cfg.Perm = true, gid, 0o660
	}
	ln, err := server.Listen(f.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another host running? pick another port with --listen)", f.listen, err)
	}
	tcpAddr := ln.Addr().(*net.TCPAddr)
	// The RESP listener (--resp-listen) takes the same tokens and TLS: if
	// it is the one that leaves loopback, it decides that tokens are
	// required.
	var respLn net.Listener
	secAddr := tcpAddr
	if f.respListen != "" {
		if respLn, err = server.Listen(f.respListen); err != nil {
			ln.Close()
			return fmt.Errorf("listen on %s: %w (is a Redis server running there? pick another address with --resp-listen)", f.respListen, err)
		}
		defer respLn.Close()
		if ra := respLn.Addr().(*net.TCPAddr); !loopbackOnly(ra) {
			secAddr = ra
		}
	}
	// The data directory's lock first: a host refused because another
	// one runs there must not have changed its tokens, TLS files or
	// registry. Then tokens and TLS: a bad --token must fail before any
	// region is made.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		ln.Close()
		return fmt.Errorf("data directory: %w", err)
	}
	lock, err := host.LockDir(dir)
	if err != nil {
		ln.Close()
		return err
	}
	sec, err := setUpSecurity(f, dir, secAddr, logger)
	if err != nil {
		lock.Close()
		ln.Close()
		return err
	}
	cfg.Lock = lock // host.Open owns it now, and releases it if it fails
	h, report, err := host.Open(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	for _, line := range report {
		logger.Warn(line)
	}
	if sec.tls != nil {
		ln = tls.NewListener(rawsock.WrapListener(ln), sec.tls)
		if respLn != nil {
			respLn = tls.NewListener(rawsock.WrapListener(respLn), sec.tls)
		}
	}
	m := &metrics.Host{}
	srv := server.New(h, server.Config{
		ServerName:   "shmgr " + version,
		Limits:       proto.Limits{MaxLine: proto.DefaultMaxLine, MaxPayload: f.maxRequest},
		LockTimeout:  f.lockTimeout,
		IdleTimeout:  f.idleTimeout,
		ReadTimeout:  f.readTimeout,
		WriteTimeout: f.writeTimeout,
		BusyPoll:     f.busyPoll,
		MaxConns:     maxConns,
		MaxWatches:   f.maxWatches,
		Auth:         sec.store,
		Insecure:     sec.insecure,
		Metrics:      m,
		Logf:         func(format string, args ...any) { logger.Info(fmt.Sprintf(format, args...)) },
		RESP:         server.RESPConfig{NoCreate: !f.respCreate},
	})
	def, err := h.Default()
	if err != nil {
		ln.Close()
		h.Close()
		return err
	}
	resumeState(dir, srv, logger)
	var metricsSrv *http.Server
	if f.metrics != "" {
		if metricsSrv, err = serveMetrics(f.metrics, m, logger); err != nil {
			ln.Close()
			h.Close()
			return err
		}
		defer metricsSrv.Close()
	}
	var respAddr *net.TCPAddr
	if respLn != nil {
		respAddr = respLn.Addr().(*net.TCPAddr)
	}
	printBanner(stdout, tcpAddr, respAddr, dir, def.Info(), sec)

	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	if respLn != nil {
		go func() { errc <- srv.ServeRESP(respLn) }()
	}
	select {
	case err = <-errc:
		logger.Error("serve", "err", err)
	case <-ctx.Done():
		logger.Info("shutting down: finishing requests in flight")
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil {
		logger.Warn("shutdown", "err", serr)
	}
	saveState(dir, srv, logger)
	if err == nil || errors.Is(err, server.ErrServerClosed) {
		err = nil
	}
	if cerr := h.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("saving the registry: %w", cerr)
	}
	if err == nil {
		logger.Info("host stopped; regions stay in place for the next start")
	}
	return err
}

// fileReserve is the open files a host keeps for itself beside its
// connections: listeners, the registry's and tokens' saves, durable
// regions, metrics, logs.
const fileReserve = 64

// connLimit raises the open-file limit as far as it goes and returns how
// many connections the host can serve: --max-connections, or fewer if the
// limit does not allow them (said in a warning). Connections past it get
// "ERROR limit", not a wait in the accept backlog.
func connLimit(want int, logger *slog.Logger) int {
	limit, err := raiseFileLimit()
	if err != nil {
		logger.Warn(fmt.Sprintf("could not raise the open-file limit to its hard limit: %v", err))
	}
	if limit >= uint64(want)+fileReserve {
		return want
	}
	n := 1
	if limit > 2*fileReserve {
		n = int(limit - fileReserve)
	} else if limit > 1 {
		n = int(limit / 2)
	}
	logger.Warn(fmt.Sprintf("the open-file limit is %d, too low for --max-connections %d: serving at most %d connections (the others get ERROR limit); raise the hard limit (ulimit -Hn, systemd LimitNOFILE=) to serve more", limit, want, n))
	return n
}

func newLogger(w io.Writer, format string, quiet bool) (*slog.Logger, error) {
	level := slog.LevelInfo
	if quiet {
		level = slog.LevelWarn
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
func printBanner(w io.Writer, addr, respAddr *net.TCPAddr, dir string, in host.Info, sec security) {
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
	fmt.Fprintf(tw, "data dir:\t%s\n", dir)
	flags := ""
	switch {
	case sec.store != nil:
		fmt.Fprintf(tw, "token:\t%s\n", sec.token)
		flags += " --token " + sec.token
	case sec.insecure:
		fmt.Fprintf(tw, "auth:\tnone (--insecure: anyone who can reach this port can read and write)\n")
	default:
		fmt.Fprintf(tw, "auth:\tnone (loopback only)\n")
	}
	if sec.tls != nil {
		fmt.Fprintf(tw, "tls sha256:\t%s\n", sec.fingerprint)
		flags += " --tls-fingerprint " + sec.fingerprint
	}
	if respAddr != nil {
		fmt.Fprintf(tw, "redis:\t%s (redis-cli -h %s -p %d)\n", respAddr, server.Addresses(respAddr.IP)[0], respAddr.Port)
	}
	fmt.Fprintf(tw, "connect:\tshmgr read --host %s%s\n", net.JoinHostPort(ips[0], port), flags)
	tw.Flush()
}

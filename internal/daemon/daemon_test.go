package daemon

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/shm"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// ioTimeout bounds every network step of a test, so that a daemon that
// stops answering fails the test instead of hanging it.
const ioTimeout = 10 * time.Second

// testConfig is a daemon on a free loopback port in a fresh data
// directory, logging (from debug up) into log.
func testConfig(t *testing.T, dir string, log *shmtest.Buffer) Config {
	t.Helper()
	cfg := DefaultConfig(dir)
	cfg.Listen = "127.0.0.1:0"
	cfg.ServerName = "shmgr test"
	cfg.Logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return cfg
}

// cleanShm registers the check, after every other cleanup of the test,
// that the host of dir left no shared-memory object behind once its
// registered ones are removed (they stay in place between runs by
// design).
func cleanShm(t *testing.T, dir string) {
	t.Helper()
	t.Cleanup(func() {
		prefix := instancePrefix(dir)
		shmtest.RemoveObjects(t, dir)
		if prefix == "" {
			return
		}
		if left, _ := shm.List(prefix); len(left) > 0 {
			t.Errorf("shared-memory objects left behind: %v", left)
		}
	})
}

// instancePrefix is the prefix of the objects of dir's host, "" if it
// has no registry.
func instancePrefix(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "registry.json"))
	if err != nil {
		return ""
	}
	var reg struct {
		Instance string `json:"instance"`
	}
	if json.Unmarshal(b, &reg) != nil || reg.Instance == "" {
		return ""
	}
	return "shmgr-" + reg.Instance + "-"
}

// checkNoGoroutines fails the test unless every goroutine of the daemon,
// its server and its host has ended. The tests of this package do not
// run in parallel, so any such goroutine is one of the test's daemon.
func checkNoGoroutines(t *testing.T) {
	t.Helper()
	var stacks string
	ours := func() bool {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		for g := range strings.SplitSeq(stacks, "\n\n") {
			if strings.Contains(g, "testing.tRunner") || strings.Contains(g, "checkNoGoroutines") {
				continue
			}
			for _, pkg := range []string{"shmgr/internal/daemon.", "shmgr/internal/server.", "shmgr/internal/host."} {
				if strings.Contains(g, pkg) {
					return true
				}
			}
		}
		return false
	}
	if !shmtest.Poll(ioTimeout, func() bool { return !ours() }) {
		t.Fatalf("goroutines of the daemon still run %v after Close:\n%s", ioTimeout, stacks)
	}
}

// freePort returns a loopback address nothing listens on at the moment.
func freePort(t *testing.T) string { return shmtest.FreeAddr(t) }

// occupied returns a loopback address a listener of the test holds.
func occupied(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// released fails the test unless addr can be bound again: whoever held
// it has let it go.
func released(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Errorf("listen on %s after the failed Start: %v, want it free", addr, err)
		return
	}
	ln.Close()
}

// readMeta dials addr and reads the shmgr protocol's metadata line.
func readMeta(t *testing.T, addr string) string {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(ioTimeout))
	line, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil {
		t.Fatalf("metadata line from %s: %v", addr, err)
	}
	return line
}

// start is Start that fails the test on error and closes the daemon at
// the test's end.
func start(t *testing.T, cfg Config) *Daemon {
	t.Helper()
	d, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// TestStartFailsHalfway: a Start that fails at any step releases what
// the steps before it took: its listeners, the data directory's lock,
// the host's mappings (its registered objects stay in place, as after
// any stop, and nothing else is left), so that a second Start works.
func TestStartFailsHalfway(t *testing.T) {
	for _, tc := range []struct {
		name string
		// setUp changes cfg (or cancels Start's context) to fail, and
		// returns what lets a second Start succeed.
		// a second Start succeed.
		setUp func(t *testing.T, cfg *Config, cancel func()) (fix func())
		want  func(error) bool
		// opened: the failure comes after the host opened its registry.
		opened bool
		// session: the data directory holds the session a stopped host
		// left, which a failed Start must leave for the next one.
		session bool
	}{{
		name: "step=second listener in use",
		setUp: func(t *testing.T, cfg *Config, cancel func()) func() {
			cfg.RESPListen = occupied(t)
			return func() { cfg.RESPListen = "127.0.0.1:0" }
		},
		want: func(err error) bool {
			return errors.Is(err, syscall.EADDRINUSE) && strings.Contains(err.Error(), "--resp-listen")
		},
	}, {
		name: "step=data dir locked by another daemon",
		setUp: func(t *testing.T, cfg *Config, cancel func()) func() {
			other := cfg.copyFor(t)
			d, err := Start(t.Context(), other)
			if err != nil {
				t.Fatalf("first Start: %v", err)
			}
			t.Cleanup(func() { d.Close() })
			return func() {
				if err := d.Close(); err != nil {
					t.Errorf("first daemon's Close: %v", err)
				}
			}
		},
		want:   func(err error) bool { return errors.Is(err, ErrBusy) },
		opened: true, // by the other daemon
	}, {
		name: "step=bad TLS certificate",
		setUp: func(t *testing.T, cfg *Config, cancel func()) func() {
			cfg.TLSCert, cfg.TLSKey = filepath.Join(t.TempDir(), "missing.pem"), filepath.Join(t.TempDir(), "missing.key")
			return func() { cfg.TLSCert, cfg.TLSKey = "", "" }
		},
		want: func(err error) bool { return errors.Is(err, os.ErrNotExist) && strings.HasPrefix(err.Error(), "tls: ") },
	}, {
		name: "step=metrics address in use",
		setUp: func(t *testing.T, cfg *Config, cancel func()) func() {
			cfg.Metrics = occupied(t)
			return func() { cfg.Metrics = "" }
		},
		want: func(err error) bool {
			return errors.Is(err, syscall.EADDRINUSE) && strings.Contains(err.Error(), "--metrics")
		},
		opened:  true,
		session: true,
	}, {
		name: "step=context ended",
		setUp: func(t *testing.T, cfg *Config, cancel func()) func() {
			cancel()
			return func() {}
		},
		want:    func(err error) bool { return errors.Is(err, context.Canceled) },
		session: true,
	}, {
		name: "step=context ended after the session was resumed",
		setUp: func(t *testing.T, cfg *Config, cancel func()) func() {
			logger := cfg.Logger
			cfg.Logger = slog.New(onMessage{Handler: logger.Handler(), msg: "resumed session", do: cancel})
			return func() { cfg.Logger = logger }
		},
		want:    func(err error) bool { return errors.Is(err, context.Canceled) },
		opened:  true,
		session: true,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cleanShm(t, dir)
			log := &shmtest.Buffer{}
			cfg := testConfig(t, dir, log)
			cfg.Listen = freePort(t)
			cfg.RESPListen = "127.0.0.1:0"
			if tc.session {
				d, err := Start(t.Context(), cfg.copyFor(t))
				if err != nil {
					t.Fatalf("Start to leave a session: %v", err)
				}
				if err := d.Close(); err != nil {
					t.Fatalf("Close to leave a session: %v", err)
				}
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			fix := tc.setUp(t, &cfg, cancel)
			d, err := Start(ctx, cfg)
			if err == nil {
				d.Close()
				t.Fatal("Start succeeded, want it to fail")
			}
			if !tc.want(err) {
				t.Fatalf("Start = %v, not the failure this step should give", err)
			}
			released(t, cfg.Listen)
			if _, err := os.Stat(filepath.Join(dir, "session.json")); tc.session && err != nil {
				t.Errorf("the session the last host left is gone after a failed Start: %v", err)
			}
			if !tc.opened && !tc.session && instancePrefix(dir) != "" {
				t.Errorf("a Start that failed before opening the host wrote its registry")
			}
			fix()
			checkNoGoroutines(t)

			// Everything it took is free: a second Start on the same
			// address and directory works, and serves.
			resumed := strings.Count(log.String(), "resumed session")
			d = start(t, cfg)
			if got := readMeta(t, cfg.Listen); !strings.Contains(got, `"server":"shmgr test"`) {
				t.Errorf("metadata line %q, want the test's server name", got)
			}
			if err := d.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if tc.session && strings.Count(log.String(), "resumed session") == resumed {
				t.Errorf("the Start after the failed one did not resume the session; log:\n%s", log)
			}
			checkNoGoroutines(t)
		})
	}
}

// onMessage is a log handler that calls do when a message begins with
// msg, so that a test can act at that step of Start.
type onMessage struct {
	slog.Handler
	msg string
	do  func()
}

func (h onMessage) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, h.msg) {
		h.do()
	}
	return h.Handler.Handle(ctx, r)
}

// copyFor returns c for a daemon of its own, on its own free port.
func (c Config) copyFor(t *testing.T) Config {
	c.Listen, c.RESPListen, c.Metrics = "127.0.0.1:0", "", ""
	return c
}

// TestServeAndStop: a daemon serves both protocols and metrics, stops
// gracefully (closing its ports and ending every goroutine), and a
// restart resumes the session it saved.
func TestServeAndStop(t *testing.T) {
	dir := t.TempDir()
	cleanShm(t, dir)
	log := &shmtest.Buffer{}
	cfg := testConfig(t, dir, log)
	cfg.RESPListen = "127.0.0.1:0"
	cfg.Metrics = "127.0.0.1:0"
	d := start(t, cfg)
	addr := d.Addr().String()
	if got := readMeta(t, addr); !strings.HasPrefix(got, "{") {
		t.Errorf("metadata line %q, want JSON", got)
	}
	rc, err := net.DialTimeout("tcp", d.RESPAddr().String(), ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	rc.SetDeadline(time.Now().Add(ioTimeout))
	io.WriteString(rc, "PING\r\n")
	if got, err := bufio.NewReader(rc).ReadString('\n'); err != nil || got != "+PONG\r\n" {
		t.Errorf("RESP PING = %q, %v; want +PONG", got, err)
	}
	rc.Close()
	hc := &http.Client{Timeout: ioTimeout}
	resp, err := hc.Get("http://" + d.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "shmgr_") {
		t.Errorf("GET /metrics = %d %q, want 200 and shmgr_ metrics", resp.StatusCode, body)
	}
	if d.RequiresToken() || d.Token() != "" || d.Fingerprint() != "" {
		t.Errorf("a loopback host without --token or TLS: RequiresToken %v, Token %q, Fingerprint %q; want it open", d.RequiresToken(), d.Token(), d.Fingerprint())
	}

	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, a := range []string{addr, d.RESPAddr().String(), d.MetricsAddr()} {
		released(t, a)
	}
	checkNoGoroutines(t)
	if err := d.Close(); err != nil {
		t.Errorf("Close after Shutdown: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "registry.json")); err != nil {
		t.Errorf("registry after the stop: %v", err)
	}

	cfg.RESPListen, cfg.Metrics = "", ""
	d = start(t, cfg)
	if err := d.Close(); err != nil {
		t.Errorf("Close of the restarted daemon: %v", err)
	}
	if !strings.Contains(log.String(), "resumed session") {
		t.Errorf("the restarted daemon did not resume the session; log:\n%s", log)
	}
	checkNoGoroutines(t)
}

// TestSecurity: a token or TLS asked for is what the daemon serves and
// reports.
func TestSecurity(t *testing.T) {
	for _, tc := range []struct {
		name      string
		token     string
		tls       bool
		wantToken bool
	}{
		{name: "token=given", token: "s3cret-token-for-the-test", wantToken: true},
		{name: "tls=self-signed", tls: true},
		{name: "token=given/tls=self-signed", token: "another-s3cret-for-the-test", tls: true, wantToken: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cleanShm(t, dir)
			cfg := testConfig(t, dir, &shmtest.Buffer{})
			cfg.Token, cfg.TLS = tc.token, tc.tls
			d := start(t, cfg)
			if d.RequiresToken() != tc.wantToken || tc.wantToken && d.Token() != tc.token {
				t.Errorf("RequiresToken %v, Token %q; want %v, %q", d.RequiresToken(), d.Token(), tc.wantToken, tc.token)
			}
			if !tc.tls {
				if d.Fingerprint() != "" {
					t.Errorf("Fingerprint %q without TLS, want none", d.Fingerprint())
				}
				readMeta(t, d.Addr().String())
				return
			}
			dialer := &net.Dialer{Timeout: ioTimeout}
			tc, err := tls.DialWithDialer(dialer, "tcp", d.Addr().String(), &tls.Config{InsecureSkipVerify: true})
			if err != nil {
				t.Fatalf("TLS dial: %v", err)
			}
			defer tc.Close()
			sum := sha256.Sum256(tc.ConnectionState().PeerCertificates[0].Raw)
			if got := hex.EncodeToString(sum[:]); !strings.EqualFold(strings.ReplaceAll(d.Fingerprint(), ":", ""), got) {
				t.Errorf("Fingerprint %q, but the certificate served hashes to %s", d.Fingerprint(), got)
			}
		})
	}
}

// blockingHandler is a log handler whose debug lines block until release
// closes, as a write to a full stderr pipe does.
type blockingHandler struct {
	entered chan struct{}
	once    *sync.Once
	release chan struct{}
}

func (h blockingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h blockingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level == slog.LevelDebug {
		h.once.Do(func() { close(h.entered) })
		<-h.release
	}
	return nil
}
func (h blockingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h blockingHandler) WithGroup(string) slog.Handler      { return h }

// TestShutdownExpiredContext: Shutdown returns once its context has
// ended, even with a connection stuck in a call closing its socket cannot
// interrupt; Close then waits for it, and every goroutine has ended.
func TestShutdownExpiredContext(t *testing.T) {
	dir := t.TempDir()
	cleanShm(t, dir)
	bh := blockingHandler{entered: make(chan struct{}), once: new(sync.Once), release: make(chan struct{})}
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(bh.release) }) }
	cfg := testConfig(t, dir, &shmtest.Buffer{})
	cfg.Logger = slog.New(bh)
	d := start(t, cfg)
	t.Cleanup(unblock) // before start's Close
	nc, err := net.DialTimeout("tcp", d.Addr().String(), ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	select {
	case <-bh.entered:
	case <-time.After(ioTimeout):
		t.Fatal("the connection never logged its opening")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	go func() { done <- d.Shutdown(ctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Shutdown(expired ctx) = %v, want context.Canceled", err)
		}
	case <-time.After(ioTimeout):
		t.Errorf("Shutdown with an expired context has not returned after %v", ioTimeout)
		unblock()
		<-done
	}
	released(t, d.Addr().String())

	closed := make(chan error, 1)
	go func() { closed <- d.Close() }()
	unblock()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(ioTimeout):
		t.Fatalf("Close has not returned %v after the stuck connection was released", ioTimeout)
	}
	checkNoGoroutines(t)
}

// TestConfigCheck: settings no host could run with are refused before
// anything is bound or written.
func TestConfigCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*Config)
		want string
	}{
		{"listen=none", func(c *Config) { c.Listen = "" }, "no listen address"},
		{"lock-timeout=0", func(c *Config) { c.LockTimeout = 0 }, "lock timeout 0s: must be positive"},
		{"idle-timeout=-1s", func(c *Config) { c.IdleTimeout = -time.Second }, "idle timeout -1s"},
		{"max-connections=0", func(c *Config) { c.MaxConns = 0 }, "max connections 0"},
		{"max-regions=0", func(c *Config) { c.MaxRegions = 0 }, "max regions 0"},
		{"busy-poll=2ms", func(c *Config) { c.BusyPoll = 2 * time.Millisecond }, "busy poll 2ms"},
		{"tls-key=only", func(c *Config) { c.TLSKey = "k.pem" }, "needs a TLS certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			cfg := testConfig(t, dir, &shmtest.Buffer{})
			tc.set(&cfg)
			_, err := Start(t.Context(), cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start = %v, want an error saying %q", err, tc.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused Config made its data directory (stat: %v)", err)
			}
		})
	}
	if err := DefaultConfig("/some/dir").Check(); err != nil {
		t.Errorf("DefaultConfig.Check() = %v, want nil", err)
	}
}

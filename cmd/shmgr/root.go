package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/auth"
	"github.com/shmgr/shmgr/internal/certs"
	"github.com/shmgr/shmgr/internal/host"
)

// version is the shmgr release.
const version = "0.1.0"

// hostEnv names the environment variable with the default host address.
const hostEnv = "SHMGR_HOST"

// usageError marks errors in how a command was called (exit code 2).
type usageError struct{ error }

// globals are the flags every client command shares.
type globals struct {
	host        string
	id          string
	json        bool
	mode        string
	timeout     time.Duration
	token       string
	tls         bool
	fingerprint string
	caFile      string
	dataDir     string

	// Where the token options() chose came from, for the hint when a
	// host refuses it (set by options).
	tokenFrom string // "--token", tokenEnv, or the tokens.json path
	// localTokenFile is the tokens.json whose admin token was found but
	// is offered only to the host of that data directory.
	localTokenFile string
}

// run executes the command line and returns the exit code: 0 success,
// 1 failure, 2 bad usage.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "shmgr: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) || isFlagError(err) || errors.Is(err, client.ErrBadID) {
		fmt.Fprintln(stderr, "Run 'shmgr --help' (or 'shmgr COMMAND --help') for usage.")
		return 2
	}
	return 1
}

func isFlagError(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "unknown flag") || strings.HasPrefix(s, "unknown shorthand flag") ||
		strings.HasPrefix(s, "unknown command") || strings.Contains(s, "invalid argument") ||
		strings.HasPrefix(s, "flag needs an argument") || strings.HasPrefix(s, "accepts ") ||
		strings.HasPrefix(s, "requires at least") || strings.HasPrefix(s, "required flag")
}

func newRoot(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "shmgr",
		Short: "Cross-network shared memory manager",
		Long: `shmgr shares named blocks of memory between programs, on one machine
(direct mapping, zero copy) or across the network (TCP).

A host owns the regions; clients read and write them by shm_id.
Start a host:           shmgr host
Write and read:         shmgr write "hello" && shmgr read
Another machine:        shmgr read --host 192.168.1.5:9410`,
		Example: `  shmgr host                             # run a host (port 9410)
  shmgr write "hello" && shmgr read      # on the host's machine
  shmgr watch --host 192.168.1.5:9410    # every change, as it commits
  shmgr ls --json                        # every region, for scripts`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.HiddenDefaultCmd = true
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	// Each command binds its flags to its own globals: flag defaults are
	// stored when flags are defined, so sharing one struct would let the
	// last command's defaults win.
	root.AddCommand(
		newHostCmd(),
		newReadCmd(&globals{}), newWriteCmd(&globals{}), newWatchCmd(&globals{}), newLsCmd(&globals{}),
		newCreateCmd(&globals{}), newRmCmd(&globals{}), newInfoCmd(&globals{}),
		newBenchCmd(), newTokenCmd(), newVersionCmd(), newGUICmd(), newClusterCmd(),
	)
	return root
}

// addClientFlags adds the flags every client command takes.
//
// --host also takes a comma-separated list of a cluster's hosts (see
// client.Options.Hosts); its help line stays short.
func addClientFlags(c *cobra.Command, g *globals, withID bool) {
	def := os.Getenv(hostEnv)
	if def == "" {
		def = fmt.Sprintf("127.0.0.1:%d", client.DefaultPort)
	}
	c.Flags().StringVar(&g.host, "host", def, "host address HOST[:PORT] (env "+hostEnv+")")
	if withID {
		c.Flags().StringVar(&g.id, "id", "", "region shm_id (default: the host's default region)")
	}
	c.Flags().BoolVar(&g.json, "json", false, "print JSON for scripts")
	c.Flags().StringVar(&g.mode, "mode", "auto", "how to reach the region: auto, local (map it directly) or tcp")
	c.Flags().DurationVar(&g.timeout, "timeout", 10*time.Second, "give up after this long")
	c.Flags().StringVar(&g.token, "token", "", "token for a host that requires one (env "+tokenEnv+"; default: the admin token in the local data directory, if readable)")
	c.Flags().BoolVar(&g.tls, "tls", false, "connect with TLS")
	c.Flags().StringVar(&g.fingerprint, "tls-fingerprint", "", "accept only the host certificate with this SHA-256 fingerprint (env "+fingerprintEnv+"; implies --tls)")
	c.Flags().StringVar(&g.caFile, "tls-ca", "", "verify the host certificate against this CA bundle (PEM; implies --tls)")
	c.Flags().StringVar(&g.dataDir, "data-dir", "", "the local host's data directory, to pick up its token and certificate (env "+host.DataDirEnv+")")
}

// Environment variables for client credentials.
const (
	tokenEnv       = "SHMGR_TOKEN"
	fingerprintEnv = "SHMGR_TLS_FINGERPRINT"
)

func (g *globals) options() (client.Options, error) {
	o := client.DefaultOptions()
	m, err := client.ParseMode(g.mode)
	if err != nil {
		return o, usageError{err}
	}
	o.Mode = m
	if err := checkHostAddr(g.host); err != nil {
		return o, err
	}
	dir := g.dataDir
	if dir == "" {
		dir, _ = host.DefaultDataDir()
	}
	o.Token, g.tokenFrom = g.token, "--token"
	if o.Token == "" {
		o.Token, g.tokenFrom = os.Getenv(tokenEnv), tokenEnv
	}
	if o.Token == "" {
		g.tokenFrom = ""
	}
	if o.Token == "" && dir != "" {
		// On the host's own machine the CLI may read the host's token. It
		// is offered only to the host of that data directory: on this
		// machine (same host_id), with that directory's instance id.
		if tok, err := auth.ReadAdmin(dir); err == nil {
			if inst := dataDirInstance(dir); inst != "" {
				o.LocalToken, o.LocalInstance = tok, inst
				g.localTokenFile = filepath.Join(dir, auth.FileName)
			}
		}
	}
	fp := g.fingerprint
	if fp == "" {
		fp = os.Getenv(fingerprintEnv)
	}
	switch {
	case fp != "":
		if o.TLS, err = client.PinnedTLS(fp); err != nil {
			return o, usageError{err}
		}
	case g.caFile != "":
		pem, err := os.ReadFile(g.caFile)
		if err != nil {
			return o, fmt.Errorf("--tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return o, usageError{fmt.Errorf("--tls-ca %s: no PEM certificates in it", g.caFile)}
		}
		o.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	case g.tls:
		// The local host's self-signed certificate is pinned when readable.
		certPath, _ := certs.Paths(dir)
		if lfp, err := certs.FileFingerprint(certPath); err == nil && dir != "" {
			o.TLS, _ = client.PinnedTLS(lfp)
		} else {
			o.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	}
	return o, nil
}

// dataDirInstance returns the instance id of the data directory's
// registry ("" if it has none yet).
func dataDirInstance(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "registry.json"))
	if err != nil {
		return ""
	}
	var reg struct {
		Instance string `json:"instance"`
	}
	if json.Unmarshal(b, &reg) != nil {
		return ""
	}
	return reg.Instance
}

// checkHostAddr refuses a --host that names no port a host could have,
// or, for a comma-separated list of a cluster's hosts, any such entry.
func checkHostAddr(addrs string) error {
	if !strings.Contains(addrs, ",") {
		return checkOneHost(addrs)
	}
	for _, a := range strings.Split(addrs, ",") {
		if a = strings.TrimSpace(a); a == "" {
			return usageError{fmt.Errorf("--host %q: an empty address in the list: write HOST[:PORT],HOST[:PORT],...", addrs)}
		}
		if err := checkOneHost(a); err != nil {
			return err
		}
	}
	return nil
}

func checkOneHost(addr string) error {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		bracketed := strings.HasPrefix(addr, "[") && strings.HasSuffix(addr, "]") // [::1]: the default port
		if strings.Count(addr, ":") == 1 || strings.HasPrefix(addr, "[") && !bracketed {
			return usageError{fmt.Errorf("--host %q: %v: use HOST or HOST:PORT, such as 127.0.0.1:%d or [::1]:%d", addr, err, client.DefaultPort, client.DefaultPort)}
		}
		return nil // a bare host (or IPv6 address): the default port
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return usageError{fmt.Errorf("--host %q: port %q is not a TCP port: use 1 to 65535, such as %s", addr, p, net.JoinHostPort(h, strconv.Itoa(client.DefaultPort)))}
	}
	return nil
}

// connect dials the host, with a hint when nobody answers.
func (g *globals) connect(ctx context.Context) (*client.Conn, error) {
	o, err := g.options()
	if err != nil {
		return nil, err
	}
	c, err := client.Connect(ctx, g.host, o)
	if err != nil {
		return nil, g.withHint(err)
	}
	return c, nil
}

// dial opens the region named by --id on --host.
func (g *globals) dial(ctx context.Context) (*client.Region, error) { return g.dialWith(ctx, nil) }

// dialWith is dial with set, if not nil, applied to the client options
// first (watch reports the connection's state changes).
func (g *globals) dialWith(ctx context.Context, set func(*client.Options)) (*client.Region, error) {
	o, err := g.options()
	if err != nil {
		return nil, err
	}
	if set != nil {
		set(&o)
	}
	r, err := client.Dial(ctx, g.host, g.id, o)
	if err != nil {
		return nil, g.withHint(err)
	}
	return r, nil
}

// withHint adds what to do to a failure to reach the host or the region.
func (g *globals) withHint(err error) error {
	host := g.host
	s := err.Error()
	switch {
	case strings.Contains(s, "connection refused"):
		return fmt.Errorf("%w\nno host is listening at %s: start one with 'shmgr host', or pass --host ADDR", err, host)
	case errors.Is(err, client.ErrNotFound):
		id := g.id
		if id == "" {
			id = "ID"
		}
		return fmt.Errorf("%w\ncreate it with 'shmgr create %s --host %s', or list the host's regions with 'shmgr ls --host %s'", err, id, host, host)
	case errors.Is(err, client.ErrUnauthorized):
		return fmt.Errorf("%w\n%s", err, g.tokenHint(err))
	case strings.Contains(s, "certificate"):
		return fmt.Errorf("%w\nfor a host with a self-signed certificate, pass the fingerprint it prints: --tls-fingerprint SHA256", err)
	case strings.Contains(s, "first record does not look like a TLS handshake"):
		return fmt.Errorf("%w\nthe host does not speak TLS: drop --tls", err)
	case errors.Is(err, client.ErrProtocol) && strings.Contains(s, "metadata"):
		return fmt.Errorf("%w\nif the host runs with --tls, pass --tls", err)
	case strings.Contains(s, "reading metadata line") && (errors.Is(err, context.DeadlineExceeded) || strings.Contains(s, "i/o timeout")):
		return fmt.Errorf("%w\nthe host at %s accepted the connection but sent nothing. Likely: the host is stopped (SIGSTOP, a debugger) or overloaded (at its connection or open-file limit: see its log); it serves TLS (pass --tls or --tls-fingerprint); or %s is not a shmgr host's port (check --host)", err, host, host)
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(s, "i/o timeout"):
		return fmt.Errorf("%w\nthe host at %s did not answer in time: check the address and firewall", err, host)
	}
	return err
}

// tokenHint says where the token a host refused came from, or why none
// was offered, and how to pass the right one.
func (g *globals) tokenHint(err error) string {
	var ce *client.Error
	sent := errors.As(err, &ce) // the host answered AUTH: a token was sent
	how := "pass the token the host printed at start ('token:' line) with --token or " + tokenEnv
	switch {
	case sent && g.tokenFrom == "--token":
		return "the host refused the token given with --token: " + how
	case sent && g.tokenFrom == tokenEnv:
		return "the host refused the token in $" + tokenEnv + ": " + how
	case sent && g.localTokenFile != "":
		return fmt.Sprintf("the token came from %s (the data directory of a host on this machine), and this host refused it: %s, or --data-dir with this host's data directory", g.localTokenFile, how)
	case g.localTokenFile != "":
		return fmt.Sprintf("the admin token in %s was not offered: it belongs to the host of that data directory, not to this one. %s, or --data-dir with this host's data directory", g.localTokenFile, how)
	}
	return how
}

// withTimeout applies --timeout to ctx.
func (g *globals) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if g.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, g.timeout)
}

func newVersionCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "version",
		Short: "Print shmgr's version",
		Example: `  shmgr version
  shmgr version --json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			return result{
				json: map[string]string{"version": version, "proto": "shmgr/1", "go": goVersion(), "platform": platform()},
				text: func(out io.Writer) error {
					fmt.Fprintf(out, "shmgr %s (protocol shmgr/1, %s, %s)\n", version, goVersion(), platform())
					return nil
				},
			}.print(c.OutOrStdout(), asJSON)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

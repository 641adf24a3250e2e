package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/server"
)

// Config is everything a running host is made of. DefaultConfig fills in
// the defaults "shmgr host" documents; a zero field means what its doc
// says, not its default.
type Config struct {
	// Listen is the shmgr protocol's TCP address, such as ":9410" or
	// "127.0.0.1:0" (port 0 picks a free port). Required.
	Listen string
	// RESPListen, if set, also serves the Redis protocol (RESP2/RESP3)
	// on this address, with the same tokens and TLS.
	RESPListen string
	// RESPCreate lets SET on a missing key create a utf8 region for it.
	RESPCreate bool

	// DataDir holds the registry, the tokens, the TLS files and the
	// session a stopped host leaves for its next start. Required; it is
	// made if missing.
	DataDir string
	// DefaultSize is the default region's size when it is first created
	// (default region.DefaultSize, the documented 4096-byte layout).
	DefaultSize int64
	// MaxRegions and MaxRegionSize bound the host's regions (default 1024
	// and 4 GiB).
	MaxRegions    int
	MaxRegionSize int64
	// ShareGroup gives the regions and the data directory's files to
	// group GID, read-write for its members.
	ShareGroup bool
	GID        int

	// Token, if set, is an admin token clients must present; it replaces
	// the data directory's admin token. RotateToken makes a new one.
	// Without either, a host on loopback only runs open and any other
	// host requires the data directory's admin token (made on first
	// start), unless Insecure.
	Token       string
	RotateToken bool
	Insecure    bool
	// TLS serves TLS with a self-signed certificate kept in the data
	// directory, or with TLSCert and TLSKey (PEM files) if set.
	TLS     bool
	TLSCert string
	TLSKey  string

	// Metrics, if set, serves the Prometheus text format at
	// http://Metrics/metrics (a bare port binds 127.0.0.1).
	Metrics string

	// ServerName is sent in each connection's metadata line, such as
	// "shmgr 0.1.0".
	ServerName string
	// MaxRequest is the largest payload of one write, in bytes.
	MaxRequest int64
	// LockTimeout is how long a write waits for a region's lock.
	LockTimeout time.Duration
	// IdleTimeout closes connections idle for this long (0: never).
	IdleTimeout time.Duration
	// ReadTimeout and WriteTimeout close connections that take longer to
	// send one request, or to take their replies.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// BusyPoll is how long a lone client's connection keeps checking for
	// its next request before it sleeps (0: off; see server.Config).
	BusyPoll time.Duration
	// MaxConns bounds the open connections; Start lowers it, with a
	// warning, when the open-file limit is too low for it.
	MaxConns int
	// MaxWatches bounds the watches of one connection.
	MaxWatches int

	// Logger receives the host's log lines (default: discard). Routine
	// connection events go to its debug level.
	Logger *slog.Logger

	// Cluster, if set, makes the host a node of a cluster: its writes
	// go through the Raft log (see docs/CLUSTER.md). Nil: a single host,
	// with no Raft in its path.
	Cluster *ClusterConfig
}

// Defaults of "shmgr host" and the GUI's Host mode alike.
const (
	DefaultIdleTimeout  = 10 * time.Minute
	DefaultReadTimeout  = 30 * time.Second
	DefaultWriteTimeout = 30 * time.Second
	DefaultMaxConns     = 4096
	DefaultMaxRegions   = 1024
	DefaultMaxRegion    = 4 << 30
	DefaultMaxWatches   = 1024
	// MaxBusyPoll bounds BusyPoll: a longer spin would cost more CPU
	// than the sleep and wake-up it saves.
	MaxBusyPoll = time.Millisecond
)

// DefaultConfig returns the defaults for a host in dataDir listening on
// every address's client.DefaultPort.
func DefaultConfig(dataDir string) Config {
	return Config{
		Listen:        ":" + strconv.Itoa(client.DefaultPort),
		RESPCreate:    true,
		DataDir:       dataDir,
		DefaultSize:   region.DefaultSize,
		MaxRegions:    DefaultMaxRegions,
		MaxRegionSize: DefaultMaxRegion,
		ServerName:    "shmgr",
		MaxRequest:    proto.DefaultMaxPayload,
		LockTimeout:   region.DefaultTimeout,
		IdleTimeout:   DefaultIdleTimeout,
		ReadTimeout:   DefaultReadTimeout,
		WriteTimeout:  DefaultWriteTimeout,
		BusyPoll:      server.DefaultBusyPoll,
		MaxConns:      DefaultMaxConns,
		MaxWatches:    DefaultMaxWatches,
	}
}

// Check reports the first setting no host could run with. Start calls
// it; a front end that names its settings differently (the CLI's flags)
// checks them first, in its own words.
func (c Config) Check() error {
	switch {
	case c.Listen == "":
		return errors.New("no listen address")
	case c.DataDir == "":
		return errors.New("no data directory")
	case c.LockTimeout <= 0:
		return fmt.Errorf("lock timeout %v: must be positive", c.LockTimeout)
	case c.IdleTimeout < 0:
		return fmt.Errorf("idle timeout %v: must be 0 (never) or positive", c.IdleTimeout)
	case c.ReadTimeout <= 0 || c.WriteTimeout <= 0:
		return errors.New("read and write timeouts must be positive")
	case c.MaxConns < 1:
		return fmt.Errorf("max connections %d: must be at least 1", c.MaxConns)
	case c.MaxRequest < 1:
		return fmt.Errorf("max request %d: must be at least 1 byte", c.MaxRequest)
	case c.MaxRegions < 1:
		return fmt.Errorf("max regions %d: must be at least 1 (the default region)", c.MaxRegions)
	case c.MaxRegionSize < 1:
		return fmt.Errorf("max region size %d: must be at least 1 byte", c.MaxRegionSize)
	case c.MaxWatches < 1:
		return fmt.Errorf("max watches %d: must be at least 1", c.MaxWatches)
	case c.BusyPoll < 0 || c.BusyPoll > MaxBusyPoll:
		return fmt.Errorf("busy poll %v: must be between 0 (off) and %v", c.BusyPoll, MaxBusyPoll)
	case c.TLSKey != "" && c.TLSCert == "":
		return errors.New("a TLS key needs a TLS certificate")
	case c.TLSCert != "" && c.TLSKey == "":
		return errors.New("a TLS certificate needs its key")
	case c.Cluster != nil:
		return c.Cluster.Check()
	}
	return nil
}

// metricsAddr is where Metrics binds: a bare port (":9411" or "9411")
// binds loopback, so that metrics are not served to the network by
// accident.
func metricsAddr(addr string) string {
	if _, err := strconv.Atoi(addr); err == nil {
		return "127.0.0.1:" + addr
	}
	if h, p, err := net.SplitHostPort(addr); err == nil && h == "" {
		return net.JoinHostPort("127.0.0.1", p)
	}
	return addr
}

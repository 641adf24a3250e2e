package client

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/shmgr/shmgr/internal/certs"
	"github.com/shmgr/shmgr/internal/proto"
)

// DefaultPort is the TCP port a host listens on by default.
const DefaultPort = 9410

// Mode says how a Region reaches its memory.
type Mode int

// Modes.
const (
	// ModeAuto maps the region when the host is on this machine and the
	// object can be opened, and uses TCP otherwise.
	ModeAuto Mode = iota
	// ModeLocal maps the region directly (zero copy), or fails.
	ModeLocal
	// ModeTCP always talks to the host over TCP.
	ModeTCP
)

func (m Mode) String() string {
	switch m {
	case ModeLocal:
		return "local"
	case ModeTCP:
		return "tcp"
	}
	return "auto"
}

// ParseMode parses "auto", "local" or "tcp".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "auto", "":
		return ModeAuto, nil
	case "local":
		return ModeLocal, nil
	case "tcp", "remote":
		return ModeTCP, nil
	}
	return 0, fmt.Errorf("unknown mode %q: use auto, local or tcp", s)
}

// Options configure Connect and Dial. DefaultOptions gives the defaults.
type Options struct {
	// Mode chooses local mapping or TCP (default ModeAuto).
	Mode Mode
	// DialTimeout bounds connecting and reading the metadata line when the
	// context has no deadline (default 5s).
	DialTimeout time.Duration
	// RequestTimeout bounds each request when the context has no deadline
	// (default 30s).
	RequestTimeout time.Duration
	// LockTimeout bounds how long a local write waits for the lock
	// (default 5s; remote writes use the host's).
	LockTimeout time.Duration
	// MaxBackoff bounds the pause between reconnection attempts (default
	// 2s; pauses start at 20ms and double, with jitter).
	MaxBackoff time.Duration
	// KeepAlive is how long a watcher's connection may be silent before it
	// sends PING; a second silent period means the connection is dead and
	// it reconnects (default 5s: a half-open connection is noticed within
	// 10s).
	KeepAlive time.Duration
	// OnState, if set, is called with each new state of a Conn or Watcher
	// made with these options. It must not block.
	OnState func(State)
	// Token is sent with AUTH when the host requires one (its metadata
	// line says "auth":"token"). It is never logged.
	Token string
	// LocalToken, when Token is empty, is sent only to a host that runs on
	// this machine (its host_id is this machine's): the CLI offers the
	// local host's own token this way, never to another machine.
	LocalToken string
	// LocalInstance, if set, narrows LocalToken to the one host whose
	// data directory the token came from: the host whose objects are
	// named "shmgr-<LocalInstance>-..." (the instance id in the data
	// directory's registry.json). Another host on this machine, with
	// another data directory, is not offered the token.
	LocalInstance string
	// Hosts are further hosts of the same cluster, tried after the address
	// given to Connect or Dial (which may itself list several, separated
	// by commas). The Conn connects to the first that answers, and when
	// its connection fails it reconnects to the next, in turn, resuming
	// as it would on the same host: watches from the last version
	// received, writes with the same idempotency key, which a cluster
	// applies once whichever node the retry reaches. Only hosts of one
	// cluster belong together: a write retried on an unrelated host would
	// be applied there too. Default: none (one host).
	Hosts []string
	// TLS, if set, connects with TLS using this configuration. For a host
	// with a self-signed certificate, use PinnedTLS with the fingerprint it
	// prints.
	TLS *tls.Config
}

// PinnedTLS returns a TLS configuration that accepts exactly the host
// certificate with this SHA-256 fingerprint (64 hex digits, colons
// allowed), as "shmgr host --tls" prints it.
func PinnedTLS(fingerprint string) (*tls.Config, error) { return certs.PinnedConfig(fingerprint) }

// DefaultOptions returns the default options.
func DefaultOptions() Options {
	return Options{Mode: ModeAuto, DialTimeout: 5 * time.Second, RequestTimeout: 30 * time.Second, LockTimeout: 5 * time.Second, MaxBackoff: 2 * time.Second, KeepAlive: 5 * time.Second}
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.DialTimeout <= 0 {
		o.DialTimeout = d.DialTimeout
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = d.RequestTimeout
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = d.LockTimeout
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = d.MaxBackoff
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = d.KeepAlive
	}
	return o
}

// Info describes a region, as the host reports it. It never holds an
// address: outside the host a region is named only by its shm_id.
type Info = proto.RegionInfo

// HostInfo describes a host: its software, limits and clients.
type HostInfo = proto.HostInfo

// HostLimits are a host's limits.
type HostLimits = proto.HostLimits

// ClientInfo describes one connection to a host.
type ClientInfo = proto.ClientInfo

// CreateOptions describe a new region. Zero fields take the host's
// defaults (4096 bytes, utf8, not durable).
type CreateOptions struct {
	// Size in bytes.
	Size int64
	// Layout: "utf8" (the documented layout) or "raw".
	Layout string
	// Durable regions are backed by a file in the host's data directory
	// and survive a reboot.
	Durable bool
	// MaxWrite is the largest write the region will take, in bytes (raw
	// regions only; 0: the whole size). The region's undo area holds that
	// much, so it costs Size + MaxWrite + 4 KiB of shared memory instead of
	// about twice Size; a larger write fails with ErrTooLarge.
	MaxWrite int64
}

package daemon

import (
	"net"

	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/server"
)

// The host's types, for a front end that lists, creates and follows
// regions through the daemon (the GUI's Host mode) without wiring a host
// of its own.
type (
	// Region is one of the host's regions.
	Region = host.Region
	// Sub is a subscription to a region's changes.
	Sub = host.Sub
	// Info describes a region.
	Info = host.Info
	// CreateOptions are a new region's settings.
	CreateOptions = host.CreateOptions
	// ClientInfo describes one client connection.
	ClientInfo = server.ClientInfo
)

// The host's errors a front end tells its user apart.
var (
	// ErrBusy: another host holds the data directory (Start).
	ErrBusy = host.ErrBusy
	// ErrNotFound: no region has that id.
	ErrNotFound = host.ErrNotFound
	// ErrClosed: the host has stopped.
	ErrClosed = host.ErrClosed
)

// DefaultID is the default region's id.
func (d *Daemon) DefaultID() string { return d.h.DefaultID() }

// Get returns the region with id.
func (d *Daemon) Get(id string) (*Region, error) { return d.h.Get(id) }

// Default returns the default region.
func (d *Daemon) Default() (*Region, error) { return d.h.Default() }

// List describes every region, in id order.
func (d *Daemon) List() []Info { return d.h.List() }

// Create makes a region.
func (d *Daemon) Create(id string, o CreateOptions) (*Region, error) { return d.h.Create(id, o) }

// Delete removes a region and its objects.
func (d *Daemon) Delete(id string) error { return d.h.Delete(id) }

// Clients lists the open client connections, oldest first.
func (d *Daemon) Clients() []ClientInfo { return d.srv.Clients() }

// Addresses lists the addresses clients can use to reach a host bound to
// bound (server.Addresses): that address, or every interface's when bound
// to all of them.
func Addresses(bound net.IP) []string { return server.Addresses(bound) }

package proto

import (
	"encoding/json"
	"time"
)

// RegionInfo is the JSON of INFO <id>, of each LIST entry and of CREATE:
// a region as the host describes it. It never holds an address.
type RegionInfo struct {
	ShmID       string    `json:"shm_id"`
	Size        int64     `json:"size"`
	Layout      string    `json:"layout"`
	LockOffset  int64     `json:"lock_offset"`
	LenOffset   int64     `json:"len_offset"`
	DataOffset  int64     `json:"data_offset"`
	MaxDataSize int64     `json:"max_data_size"`
	Version     uint64    `json:"version"`
	OSName      string    `json:"os_name"`
	CtlName     string    `json:"ctl_name"`
	OSKind      string    `json:"os_kind"`
	Nonce       string    `json:"nonce"`
	Durable     bool      `json:"durable"`
	Created     time.Time `json:"created"`
	HostID      string    `json:"host_id"`
	// Footprint is what the region costs in shared memory (or on disk,
	// when durable): the data object and its control block, whose undo
	// area holds MaxWrite bytes, so about twice Size by default.
	Footprint int64 `json:"footprint,omitempty"`
	// MaxWrite is the largest write the region takes: the size of its
	// undo area (the whole Size unless it was created with a smaller
	// max_write, raw only). Always present; 0 only from hosts older than
	// the field, whose regions take writes of their whole size.
	MaxWrite int64 `json:"max_write"`
	// Locked reports whether the region's lock is held; LockPID and
	// LockOwner say by whom, when a shmgr process holds it.
	Locked    bool   `json:"locked"`
	LockPID   uint32 `json:"lock_pid,omitempty"`
	LockOwner string `json:"lock_owner,omitempty"`
}

// HostInfo is the JSON of INFO without an id.
type HostInfo struct {
	Server      string    `json:"server"`
	Proto       string    `json:"proto"`
	HostID      string    `json:"host_id"`
	PID         int       `json:"pid"`
	Default     string    `json:"default"`
	Regions     int       `json:"regions"`
	Connections int       `json:"connections"`
	Accepted    uint64    `json:"accepted"`
	Started     time.Time `json:"started"`
	Auth        string    `json:"auth"`
	MaxLine     int       `json:"max_line"`
	MaxPayload  int64     `json:"max_payload"`
	LockTimeout string    `json:"lock_timeout"`
	// Insecure is set when the operator exposed the host beyond loopback
	// without tokens.
	Insecure bool       `json:"insecure,omitempty"`
	Limits   HostLimits `json:"limits"`
	// Clients lists the open connections (empty for a token limited to
	// some regions).
	Clients []ClientInfo `json:"clients"`
	// Cluster is a cluster node's view of its cluster (the JSON of
	// server.ClusterInfo: nodes, role, indexes, leader); absent on a
	// single host. Kept raw here so that proto does not depend on the
	// cluster package.
	Cluster json.RawMessage `json:"cluster,omitempty"`
}

// HostLimits are a host's limits, as INFO reports them.
type HostLimits struct {
	MaxConnections int    `json:"max_connections"`
	MaxWatches     int    `json:"max_watches_per_connection"`
	IdleTimeout    string `json:"idle_timeout"`
	ReadTimeout    string `json:"read_timeout"`
	WriteTimeout   string `json:"write_timeout"`
	MaxLease       string `json:"max_lease"`
}

// ClientInfo describes one connection to a host, for INFO.
type ClientInfo struct {
	Addr    string    `json:"addr"`
	Since   time.Time `json:"since"`
	Token   string    `json:"token,omitempty"` // the token's name, never its secret
	Watches int       `json:"watches"`
	Leases  int       `json:"leases"`
}

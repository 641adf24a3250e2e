package server

import (
	"os"
	"time"

	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/region"
)

// meta builds the metadata of a region, as sent first on a connection and
// in USE replies.
func (c *conn) meta(r *host.Region) proto.Meta {
	in := r.Info()
	return proto.Meta{
		Proto: "shmgr/1", Server: c.s.cfg.ServerName, HostID: in.HostID,
		ShmID: in.ShmID, Size: in.Size, Layout: in.Layout,
		LockOffset: in.LockOffset, LenOffset: in.LenOffset, DataOffset: in.DataOffset, MaxDataSize: in.MaxDataSize,
		Version: in.Version, OSName: in.OSName, CtlName: in.CtlName, OSKind: in.OSKind,
		Nonce: in.Nonce, Durable: in.Durable, Created: in.Created, Auth: c.s.authMode(), Session: c.session,
		Features: c.s.features(), MaxWrite: in.MaxWrite, Footprint: in.Footprint,
	}
}

// features is the metadata line's features list.
var features = []string{proto.FeatureDelta}

// clusterFeatures is a cluster node's.
var clusterFeatures = []string{proto.FeatureDelta, proto.FeatureReplicated}

// features is the metadata line's features list for this server.
func (s *Server) features() []string {
	if s.cfg.Cluster != nil {
		return clusterFeatures
	}
	return features
}

// HostInfo is the JSON of INFO without an id.
type HostInfo = proto.HostInfo

// Limits are a host's limits, as INFO reports them.
type Limits = proto.HostLimits

func (c *conn) hostInfo() HostInfo {
	lt := c.s.cfg.LockTimeout
	if lt <= 0 {
		lt = region.DefaultTimeout
	}
	return HostInfo{
		Server: c.s.cfg.ServerName, Proto: "shmgr/1", HostID: c.s.h.HostID(), PID: os.Getpid(),
		Default: c.s.h.DefaultID(), Regions: len(c.s.h.List()), Connections: c.s.Connections(),
		Accepted: c.s.accepted.Load(), Started: c.s.started.UTC().Truncate(time.Second), Auth: c.s.authMode(),
		MaxLine: c.s.cfg.Limits.MaxLine, MaxPayload: c.s.cfg.Limits.MaxPayload, LockTimeout: lt.String(),
		Insecure: c.s.cfg.Insecure,
		Limits: Limits{
			MaxConnections: c.s.cfg.MaxConns, MaxWatches: c.s.cfg.MaxWatches,
			IdleTimeout: c.s.cfg.IdleTimeout.String(), ReadTimeout: c.s.cfg.ReadTimeout.String(),
			WriteTimeout: c.s.cfg.WriteTimeout.String(), MaxLease: MaxLease.String(),
		},
		Clients: c.s.Clients(),
	}
}

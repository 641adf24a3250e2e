package server

import (
	"encoding/json"
	"slices"

	"github.com/shmgr/shmgr/internal/cluster"
	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/region"
)

// use serves USE <id>: the region becomes the connection's current one
// (for READ and WRITE), and the reply is its metadata.
func (c *conn) use(req *proto.Request) {
	r, err := c.s.h.GetBytes(req.ID)
	if err != nil {
		c.fail(err)
		return
	}
	c.cur = r
	c.appendJSON(c.meta(r))
}

// describe serves INFO [id]: the host's JSON without an id, else the
// region's.
func (c *conn) describe(req *proto.Request) {
	if req.ID == nil {
		var err error
		hi := c.hostInfo()
		if len(c.grant.Regions) > 0 {
			// Other clients' addresses are for tokens that see all.
			hi.Clients = nil
		}
		if ci := c.clusterInfo(); ci != nil {
			if hi.Cluster, err = json.Marshal(ci); err != nil {
				c.refuse(proto.CodeInternal, err.Error())
				return
			}
		}
		c.appendJSON(hi)
		return
	}
	r, err := c.s.h.GetBytes(req.ID)
	if err != nil {
		c.fail(err)
		return
	}
	c.appendJSON(r.Info())
}

// list serves LIST: the regions the connection's grant covers.
func (c *conn) list() {
	list := c.s.h.List()
	if len(c.grant.Regions) > 0 {
		list = slices.DeleteFunc(list, func(in host.Info) bool { return !c.visible(in.ShmID) })
	}
	c.appendJSON(list)
}

// create serves CREATE <id> [size=] [layout=] [durable=] [max_write=].
func (c *conn) create(req *proto.Request) {
	o := host.CreateOptions{Size: req.Size, Durable: req.Durable, MaxWrite: req.MaxWrite}
	if req.Layout != nil {
		l, err := region.ParseLayout(string(req.Layout))
		if err != nil {
			c.refuse(proto.CodeBadRequest, err.Error())
			return
		}
		o.Layout = l
	}
	if c.s.cfg.Cluster != nil {
		c.createCluster(string(req.ID), o)
		return
	}
	r, err := c.s.h.Create(string(req.ID), o)
	if err != nil {
		c.fail(err)
		return
	}
	c.appendJSON(r.Info())
}

// delete serves DELETE <id>.
func (c *conn) delete(req *proto.Request) {
	if c.s.cfg.Cluster != nil {
		if _, err := c.clusterApply(cluster.Command{Op: cluster.OpDelete, ID: string(req.ID)}); err != nil {
			c.fail(err)
			return
		}
		c.out = proto.AppendOK(c.out)
		return
	}
	if err := c.s.h.Delete(string(req.ID)); err != nil {
		c.fail(err)
		return
	}
	c.out = proto.AppendOK(c.out)
}

// createCluster serves CREATE on a cluster node: through the log, then
// answered with the local region (which clusterApply waited for).
func (c *conn) createCluster(id string, o host.CreateOptions) {
	_, err := c.clusterApply(cluster.Command{Op: cluster.OpCreate, ID: id, Size: o.Size, Layout: o.Layout, Durable: o.Durable, MaxWrite: o.MaxWrite})
	if err != nil {
		c.fail(err)
		return
	}
	r, err := c.s.h.GetBytes([]byte(id))
	if err != nil {
		c.fail(err)
		return
	}
	c.appendJSON(r.Info())
}

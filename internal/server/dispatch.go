package server

import (
	"encoding/json"

	"github.com/shmgr/shmgr/internal/proto"
)

// handle serves one request that permitted let through, appending its
// reply to c.out. The handlers are in files by what they serve: data.go
// (READ, WRITE, GET, SET), regions.go (USE, INFO, LIST, CREATE, DELETE),
// lock.go (LOCK, RENEW, UNLOCK), watch.go (WATCH, UNWATCH), access.go
// (AUTH).
func (c *conn) handle(req *proto.Request) {
	switch req.Cmd {
	case proto.CmdRead:
		c.refreshCurrent()
		c.read(req)
	case proto.CmdWrite:
		c.refreshCurrent()
		c.write(c.cur, req, true)
	case proto.CmdPing:
		c.out = proto.AppendPong(c.out)
	case proto.CmdQuit:
		c.out = proto.AppendOK(c.out)
		c.quit = true
	case proto.CmdUse:
		c.use(req)
	case proto.CmdGet:
		c.get(req)
	case proto.CmdSet:
		c.set(req)
	case proto.CmdInfo:
		c.describe(req)
	case proto.CmdList:
		c.list()
	case proto.CmdCreate:
		c.create(req)
	case proto.CmdDelete:
		c.delete(req)
	case proto.CmdAuth:
		c.authenticate(req)
	case proto.CmdWatch:
		c.watch(req)
	case proto.CmdUnwatch:
		c.unwatch(req)
	case proto.CmdLock, proto.CmdRenew, proto.CmdUnlock:
		if c.s.cfg.Cluster != nil {
			// A lease is replicated state: its fencing tokens come from
			// the log, so they hold across hosts (cluster_lock.go).
			switch req.Cmd {
			case proto.CmdLock:
				c.clusterLock(req)
			case proto.CmdRenew:
				c.clusterRenew(req)
			default:
				c.clusterUnlock(req)
			}
			return
		}
		switch req.Cmd {
		case proto.CmdLock:
			c.lock(req)
		case proto.CmdRenew:
			c.renew(req)
		default:
			c.unlock(req)
		}
	case proto.CmdCluster:
		c.clusterAdmin(req)
	default:
		c.refuse(proto.CodeUnknownCommand, req.Cmd.String()+" is not supported by this host")
	}
}

// refreshCurrent re-resolves the connection's current region by id if it
// was deleted (and perhaps created again) since USE.
func (c *conn) refreshCurrent() {
	if c.cur.Gone() {
		if r, err := c.s.h.Get(c.cur.ID()); err == nil {
			c.cur = r
		}
	}
}

// appendJSON appends v as a JSON reply (USE, INFO, LIST, CREATE).
func (c *conn) appendJSON(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		c.refuse(proto.CodeInternal, err.Error())
		return
	}
	c.out = proto.AppendJSON(c.out, b)
}

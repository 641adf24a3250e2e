package server

import (
	"encoding/json"
	"slices"

	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/proto"
)

func (c *conn) handle(req *proto.Request) {
	switch req.Cmd {
	case proto.CmdRead:
		c.refreshCurrent()
		c.read()
	case proto.CmdWrite:
		c.refreshCurrent()
		c.write(c.cur, req, true)
	case proto.CmdPing:
		c.out = proto.AppendPong(c.out)
	case proto.CmdQuit:
		c.out = proto.AppendOK(c.out)
		c.quit = true
	case proto.CmdUse:
		r, err := c.s.h.GetBytes(req.ID)
		if err != nil {
			c.fail(err)
			return
		}
		c.cur = r
		c.appendJSON(c.meta(r))
	case proto.CmdGet:
		c.get(req)
	case proto.CmdSet:
		r, err := c.s.h.GetBytes(req.ID)
		if err != nil {
			c.fail(err)
			return
		}
		c.write(r, req, false)
	case proto.CmdInfo:
		if req.ID == nil {
			hi := c.hostInfo()
			if len(c.grant.Regions) > 0 {
				// Other clients' addresses are for tokens that see all.
				hi.Clients = nil
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
	case proto.CmdList:
		list := c.s.h.List()
		if len(c.grant.Regions) > 0 {
			list = slices.DeleteFunc(list, func(in host.Info) bool { return !c.visible(in.ShmID) })
		}
		c.appendJSON(list)
	case proto.CmdCreate:
		c.create(req)
	case proto.CmdDelete:
		if err := c.s.h.Delete(string(req.ID)); err != nil {
			c.fail(err)
			return
		}
		c.out = proto.AppendOK(c.out)
	case proto.CmdAuth:
		c.authenticate(req)
	case proto.CmdWatch:
		c.watch(req)
	case proto.CmdUnwatch:
		c.unwatch(req)
	case proto.CmdLock:
		c.lock(req)
	case proto.CmdRenew:
		c.renew(req)
	case proto.CmdUnlock:
		c.unlock(req)
	default:
		c.out = proto.AppendError(c.out, proto.CodeUnknownCommand, req.Cmd.String()+" is not supported by this host")
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

func (c *conn) appendJSON(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		c.out = proto.AppendError(c.out, proto.CodeInternal, err.Error())
		return
	}
	c.out = proto.AppendJSON(c.out, b)
}

package server

import (
	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/region"
)

func (c *conn) create(req *proto.Request) {
	o := host.CreateOptions{Size: req.Size, Durable: req.Durable, MaxWrite: req.MaxWrite}
	if req.Layout != nil {
		l, err := region.ParseLayout(string(req.Layout))
		if err != nil {
			c.out = proto.AppendError(c.out, proto.CodeBadRequest, err.Error())
			return
		}
		o.Layout = l
	}
	r, err := c.s.h.Create(string(req.ID), o)
	if err != nil {
		c.fail(err)
		return
	}
	c.appendJSON(r.Info())
}

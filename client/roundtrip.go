package client

import (
	"context"
	"fmt"
	"io"

	"github.com/shmgr/shmgr/internal/proto"
)

// roundTrip writes one request and reads its reply. c.mu is held and
// c.nc is set.
func (c *Conn) roundTrip(ctx context.Context, enc func([]byte) []byte, fn func(proto.Reply) error) error {
	c.applyContext(ctx)
	c.out = enc(c.out[:0])
	n, err := c.nc.Write(c.out)
	if cap(c.out) > 1<<20 {
		c.out = nil
	}
	if err != nil {
		return &transportError{err: err, sent: n > 0}
	}
	for {
		if c.r < c.w {
			rep, n, err := c.rp.Next(c.in[c.r:c.w])
			if err != nil {
				return &transportError{err: fmt.Errorf("%w: %w", ErrProtocol, err), sent: true}
			}
			if n > 0 {
				c.r += n
				if rep.Kind == proto.ReplyEvent {
					continue // pushed events belong to watchers
				}
				if rep.Kind == proto.ReplyError {
					return replyError(rep)
				}
				return fn(rep)
			}
		}
		if err := c.fill(); err != nil {
			return &transportError{err: err, sent: true}
		}
	}
}

func (c *Conn) fill() error {
	if c.r == c.w {
		c.r, c.w = 0, 0
	}
	need := int(c.rp.Need())
	if need < c.w-c.r+1 {
		need = c.w - c.r + 1
	}
	if c.r > 0 && need > len(c.in)-c.r {
		c.w = copy(c.in, c.in[c.r:c.w])
		c.r = 0
	}
	if need > len(c.in) {
		bigger := make([]byte, need)
		c.w = copy(bigger, c.in[c.r:c.w])
		c.r = 0
		c.in = bigger
	}
	n, err := c.nc.Read(c.in[c.w:])
	c.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

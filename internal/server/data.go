package server

import (
	"fmt"

	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/region"
)

// read answers the documented READ: "OK <content>\n".
func (c *conn) read() {
	start := len(c.out)
	c.out = append(c.out, "OK "...)
	err := c.cur.Do(func(r *region.Region) (err error) {
		c.out, _, err = r.AppendContent(c.out)
		return err
	})
	if err != nil {
		c.out = c.out[:start]
		c.fail(err)
		return
	}
	c.out = append(c.out, '\n')
}

func (c *conn) get(req *proto.Request) {
	hr, err := c.s.h.GetBytes(req.ID)
	if err != nil {
		c.fail(err)
		return
	}
	// The content goes straight from the mapping into the reply buffer,
	// behind its VALUE header: one copy.
	off, n := int64(0), int64(-1)
	if req.HasRange {
		off, n = req.Offset, req.Length
	}
	err = hr.Do(func(r *region.Region) (err error) {
		c.out, _, err = r.AppendFramed(c.out, off, n, proto.AppendValueHeader)
		return err
	})
	if err != nil {
		c.fail(err)
		return
	}
	c.out = append(c.out, '\n')
}

// set serves SET <id>: write (with OK <version>) to the named region.
func (c *conn) set(req *proto.Request) {
	r, err := c.s.h.GetBytes(req.ID)
	if err != nil {
		c.fail(err)
		return
	}
	c.write(r, req, false)
}

// write serves WRITE (compat: bare OK) and SET (OK <version>). A SET with
// an idempotency key (cid, seq) is applied at most once: a retry gets the
// first answer again.
//
// It blocks the connection's loop (and the requests pipelined behind it)
// while it waits for the region's lock, up to Config.LockTimeout or until
// Shutdown stops the wait; a keyed SET holds its client's dedup window
// for that wait (see dedup, "Blocking").
func (c *conn) write(hr *host.Region, req *proto.Request, compat bool) {
	if req.ClientID != nil {
		w, session := c.s.dedup.acquire(req.ClientID)
		defer w.mu.Unlock()
		o, known, unknown := w.lookup(req.Seq)
		if session != c.session {
			// The connection is closed after this answer: its client
			// reconnects, sees the new session, and does not resend a
			// write whose answer it lost.
			known, unknown = false, fmt.Sprintf("the host ended session %s, which this connection began in, and forgot its writes' outcomes: reconnect (session %s)", c.session, session)
			c.quit = true
		}
		if known {
			if o.code != proto.CodeUnknown {
				c.refuse(o.code, o.msg)
			} else {
				c.out = proto.AppendOKVersion(c.out, o.version)
			}
			return
		} else if unknown != "" {
			c.refuse(proto.CodeUnknownOutcome, unknown)
			return
		}
		v, err := c.apply(hr, req)
		o = outcome{seq: req.Seq, version: v}
		if err != nil {
			f := classify(err)
			o.code, o.msg = f.code, f.text()
			c.refused(&f)
		} else {
			c.out = proto.AppendOKVersion(c.out, v)
		}
		if c.s.cfg.Cluster != nil && (o.code == proto.CodeUnavailable || o.code == proto.CodeUnknownOutcome) {
			// No leader took it (an election), or the leader's answer was
			// lost: the client asks again with the same key, which the
			// cluster's log applies at most once.
			return
		}
		w.record(o)
		return
	}
	v, err := c.apply(hr, req)
	if err != nil {
		c.fail(err)
		return
	}
	if compat {
		c.out = proto.AppendOK(c.out)
		return
	}
	c.out = proto.AppendOKVersion(c.out, v)
}

// apply performs a WRITE or SET on the region, through the cluster's
// log on a cluster node.
func (c *conn) apply(hr *host.Region, req *proto.Request) (uint64, error) {
	if c.s.cfg.Cluster != nil {
		return c.applyCluster(hr.ID(), req)
	}
	o := region.WriteOptions{Timeout: c.s.cfg.LockTimeout, Label: c.label, Conditional: req.HasIfVer, IfVersion: req.IfVersion, Stop: c.halt}
	if req.HasFence {
		l, ok := c.leases[string(req.ID)]
		if !ok || l.token != req.Fence || l.hr != hr {
			return 0, fmt.Errorf("%w: this connection holds no lock on %q with token %d", region.ErrFenced, req.ID, req.Fence)
		}
		o.Fenced, o.Fence = true, req.Fence
	}
	var v uint64
	err := hr.DoWrite(func(r *region.Region) (err error) {
		if req.HasAt {
			v, err = r.WriteAt(req.Offset, req.Payload, o)
		} else {
			v, err = r.Write(req.Payload, o)
		}
		return err
	})
	return v, err
}

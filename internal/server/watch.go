package server

import (
	"fmt"
	"time"

	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/region"
)

// watch is one WATCH on a connection.
type watch struct {
	id      string
	sub     *host.Sub
	sent    uint64 // last version sent (or the client's from=)
	hasSent bool
	active  bool // false until the WATCH reply has been flushed
	delta   bool // the client takes DELTA frames (WATCH delta=1)
}

// watch serves WATCH <id> [from=<version>]: reply OK <version>, then push
// an EVENT for every newer committed state (coalesced when the client
// reads slowly). Without from, the first event is the current state.
func (c *conn) watch(req *proto.Request) {
	hr, err := c.s.h.GetBytes(req.ID)
	if err != nil {
		c.fail(err)
		return
	}
	var v uint64
	hr.Do(func(r *region.Region) error { v = r.Version(); return nil })
	c.smu.Lock()
	defer c.smu.Unlock()
	if w, ok := c.watches[string(req.ID)]; ok {
		// Watching already: only move the starting point.
		w.sent, w.hasSent, w.delta = req.From, req.HasFrom, req.Delta
		w.sub.WantDeltas(req.Delta)
		c.out = proto.AppendOKVersion(c.out, v)
		return
	}
	if len(c.watches) >= c.s.cfg.MaxWatches {
		c.refuse(proto.CodeLimit, fmt.Sprintf("this connection watches %d regions already, the most allowed", len(c.watches)))
		return
	}
	sub, err := hr.Subscribe(c.notify)
	if err != nil {
		c.fail(err)
		return
	}
	if c.watches == nil {
		c.watches = map[string]*watch{}
	}
	sub.WantDeltas(req.Delta)
	c.watches[string(req.ID)] = &watch{id: string(req.ID), sub: sub, sent: req.From, hasSent: req.HasFrom, delta: req.Delta}
	c.nwatches.Store(int32(len(c.watches)))
	c.newWatch = true
	c.s.cfg.Metrics.Watchers.Add(1)
	if !c.pusher {
		c.pusher = true
		c.s.goroutine(c.push)
	}
	c.out = proto.AppendOKVersion(c.out, v)
}

func (c *conn) unwatch(req *proto.Request) {
	c.smu.Lock()
	w, ok := c.watches[string(req.ID)]
	delete(c.watches, string(req.ID))
	c.nwatches.Store(int32(len(c.watches)))
	c.smu.Unlock()
	if !ok {
		c.refuse(proto.CodeNotFound, fmt.Sprintf("this connection does not watch %q", req.ID))
		return
	}
	w.sub.Close()
	c.s.cfg.Metrics.Watchers.Add(-1)
	c.out = proto.AppendOK(c.out)
}

// pushWrite writes frames a pusher made (EVENT frames, RESP keyspace
// messages) between reply batches. A failed write closes the connection
// (the reader sees it and ends it) and returns false.
func (c *conn) pushWrite(buf []byte) bool {
	c.wmu.Lock()
	c.setWriteDeadline(time.Now())
	_, err := c.nc.Write(buf)
	c.wmu.Unlock()
	if err != nil {
		c.writeFailed(err)
		c.nc.Close()
		return false
	}
	return true
}

// activateWatches lets the pusher serve watches whose WATCH reply has now
// been written, so that no event precedes its WATCH's reply.
func (c *conn) activateWatches() {
	if !c.newWatch {
		return
	}
	c.newWatch = false
	c.smu.Lock()
	n := 0
	for _, w := range c.watches {
		if !w.active {
			w.active = true
			n++
		}
	}
	c.smu.Unlock()
	if n > 0 {
		select {
		case c.notify <- struct{}{}:
		default:
		}
	}
}

// push writes EVENT frames whenever a watched region has a state newer
// than the last one sent. A client that reads slowly gets the latest
// state, not every version: the event's version tells it what it skipped.
func (c *conn) push() {
	var buf []byte
	type pending struct {
		w *watch
		v uint64
	}
	var sent []pending
	for {
		select {
		case <-c.done:
			return
		case <-c.notify:
		}
		buf, sent = buf[:0], sent[:0]
		gone := false
		c.smu.Lock()
		for _, w := range c.watches {
			if w.sub.Gone() {
				gone = true
			}
			if !w.active {
				continue
			}
			snap := w.sub.Latest()
			if snap == nil || w.hasSent && snap.Version <= w.sent {
				continue
			}
			off, n, ok := 0, 0, false
			if w.delta && w.hasSent {
				// The client may hold one of the last snapshots: then send
				// what changed since.
				off, n, ok = snap.DeltaSince(w.sent)
			}
			if ok && n < len(snap.Content) {
				buf = proto.AppendDelta(buf, []byte(w.id), snap.Version, int64(len(snap.Content)), int64(off), snap.Content[off:off+n])
			} else {
				buf = proto.AppendEvent(buf, []byte(w.id), snap.Version, snap.Content)
			}
			c.s.cfg.Metrics.Events.Inc()
			sent = append(sent, pending{w, snap.Version})
		}
		c.smu.Unlock()
		if gone {
			// A watched region was deleted. EVENT cannot say so, and an
			// ERROR would be taken for the reply to a request: the host
			// hangs up, and a client that watches again gets not_found.
			c.s.cfg.Logf("closing connection from %s: a region it watched was deleted", c.nc.RemoteAddr())
			c.nc.Close()
			return
		}
		if len(buf) == 0 {
			continue
		}
		if !c.pushWrite(buf) {
			return
		}
		c.smu.Lock()
		for _, p := range sent {
			p.w.sent, p.w.hasSent = p.v, true
		}
		c.smu.Unlock()
		if cap(buf) > 4*flushAt {
			buf = nil
		}
	}
}

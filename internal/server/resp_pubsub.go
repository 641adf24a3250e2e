package server

import (
	"strings"
	"sync/atomic"
	"time"

	"github.com/shmgr/shmgr/internal/auth"
	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/resp"
)

// keyspacePrefix starts the channels that carry a key's changes, as
// Redis's keyspace notifications name them (database 0, the only one).
const keyspacePrefix = "__keyspace@0__:"

// respRescan is how often a connection with pattern subscriptions, or
// with channels of keys that have no region yet, looks for new regions.
const respRescan = 100 * time.Millisecond

// respSubs are a RESP connection's subscriptions. The reading goroutine
// changes them and respPush reads them, under conn.smu.
type respSubs struct {
	channels map[string]bool
	patterns map[string]bool
	// regions are the regions some channel or pattern covers, by id,
	// each watched through the host's watch machinery (which sees every
	// commit, mapped local writers' included).
	regions map[string]*keyWatch
	// missing: a subscribed keyspace channel has no region yet.
	missing bool
	pusher  bool
	// pending is set while subscribe replies wait for a flush: watches
	// made meanwhile start inactive, so that no message precedes them.
	pending atomic.Bool
	// proto is the connection's protocol version, for respPush.
	proto atomic.Int32
	// grant is the connection's grant when it last subscribed: patterns
	// cover only the regions it sees.
	grant *auth.Grant
}

// keyWatch is one watched region.
type keyWatch struct {
	id, channel string
	sub         *host.Sub
	sent        uint64 // the last version notified (or the baseline)
	active      bool
}

// keyspaceKey returns the key of a keyspace channel.
func keyspaceKey(ch string) (string, bool) {
	if strings.HasPrefix(ch, keyspacePrefix) {
		return ch[len(keyspacePrefix):], true
	}
	return "", false
}

// respSubscribe serves SUBSCRIBE and PSUBSCRIBE.
func (c *conn) respSubscribe(names [][]byte, pattern bool) {
	rc := c.resp
	kind := "subscribe"
	if pattern {
		kind = "psubscribe"
	}
	for _, n := range names {
		if key, ok := keyspaceKey(string(n)); ok && !pattern {
			if id, err := resp.AppendID(nil, []byte(key)); err == nil && !c.respMayRead(c.grant, []byte(key), id) {
				return
			}
		}
	}
	rc.subs.pending.Store(true)
	c.smu.Lock()
	s := &rc.subs
	if s.channels == nil {
		s.channels, s.patterns, s.regions = map[string]bool{}, map[string]bool{}, map[string]*keyWatch{}
	}
	for _, n := range names {
		if pattern {
			s.patterns[string(n)] = true
		} else {
			s.channels[string(n)] = true
		}
		c.out = resp.AppendPush(c.out, rc.proto, 3)
		c.out = resp.AppendBulkString(c.out, kind)
		c.out = resp.AppendBulk(c.out, n)
		c.out = resp.AppendInt(c.out, int64(len(s.channels)+len(s.patterns)))
	}
	rc.nsubs = len(s.channels) + len(s.patterns)
	s.grant = c.grant
	c.respReconcileLocked(true)
	start := !s.pusher
	s.pusher = true
	c.smu.Unlock()
	c.nwatches.Store(int32(rc.nsubs)) // a subscriber may stay quiet: no idle timeout
	if start {
		c.s.goroutine(c.respPush)
	}
}

// respUnsubscribe serves UNSUBSCRIBE and PUNSUBSCRIBE.
func (c *conn) respUnsubscribe(names [][]byte, pattern bool) {
	rc := c.resp
	kind := "unsubscribe"
	if pattern {
		kind = "punsubscribe"
	}
	c.smu.Lock()
	s := &rc.subs
	set := s.channels
	if pattern {
		set = s.patterns
	}
	if len(names) == 0 {
		for n := range set {
			names = append(names, []byte(n))
		}
	}
	if len(names) == 0 {
		c.out = resp.AppendPush(c.out, rc.proto, 3)
		c.out = resp.AppendBulkString(c.out, kind)
		c.out = resp.AppendNull(c.out, rc.proto)
		c.out = resp.AppendInt(c.out, int64(len(s.channels)+len(s.patterns)))
	}
	for _, n := range names {
		delete(set, string(n))
		c.out = resp.AppendPush(c.out, rc.proto, 3)
		c.out = resp.AppendBulkString(c.out, kind)
		c.out = resp.AppendBulk(c.out, n)
		c.out = resp.AppendInt(c.out, int64(len(s.channels)+len(s.patterns)))
	}
	rc.nsubs = len(s.channels) + len(s.patterns)
	c.respReconcileLocked(true)
	c.smu.Unlock()
	c.nwatches.Store(int32(rc.nsubs))
}

// respReconcileLocked makes the watched regions those the channels and
// patterns cover: it closes the others and subscribes to new ones. A
// region found by the reading goroutine (initial) starts at its current
// version; one found later by respPush, created since, from version 0,
// so its first write is notified even if it came before the rescan.
// c.smu is held.
func (c *conn) respReconcileLocked(initial bool) {
	s := &c.resp.subs
	if s.regions == nil {
		return // closed (respCloseSubs), or nothing subscribed yet
	}
	want := map[string]string{} // id -> channel
	s.missing = false
	for ch := range s.channels {
		key, ok := keyspaceKey(ch)
		if !ok {
			continue
		}
		id, err := resp.AppendID(nil, []byte(key))
		if err != nil {
			continue
		}
		want[string(id)] = ch
	}
	if len(s.patterns) > 0 {
		for _, in := range c.s.h.List() {
			if s.grant == nil || !s.grant.Region(in.ShmID) {
				continue
			}
			ch := keyspacePrefix + string(resp.AppendKey(nil, []byte(in.ShmID)))
			for p := range s.patterns {
				if resp.Match([]byte(p), []byte(ch)) {
					want[in.ShmID] = ch
					break
				}
			}
		}
	}
	for id, kw := range s.regions {
		if _, ok := want[id]; !ok {
			kw.sub.Close()
			delete(s.regions, id)
			c.s.cfg.Metrics.Watchers.Add(-1)
		}
	}
	for id, ch := range want {
		if s.regions[id] != nil {
			continue
		}
		if len(s.regions) >= c.s.cfg.MaxWatches {
			c.s.cfg.Logf("RESP connection from %s: subscriptions cover more than %d regions, the most watched per connection: the rest are not notified", c.nc.RemoteAddr(), c.s.cfg.MaxWatches)
			break
		}
		hr, err := c.s.h.Get(id)
		if err != nil {
			s.missing = true
			continue
		}
		sub, err := hr.Subscribe(c.notify)
		if err != nil {
			s.missing = true
			continue
		}
		kw := &keyWatch{id: id, channel: ch, sub: sub, active: !s.pending.Load()}
		if initial {
			hr.Do(func(r *region.Region) error { kw.sent = r.Version(); return nil })
		}
		s.regions[id] = kw
		c.s.cfg.Metrics.Watchers.Add(1)
	}
}

// respActivate lets respPush serve the watches made before the flush
// that has just written their subscribe replies.
func (c *conn) respActivate() {
	s := &c.resp.subs
	if !s.pending.Load() {
		return
	}
	c.smu.Lock()
	s.pending.Store(false)
	for _, kw := range s.regions {
		kw.active = true
	}
	c.smu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// respPush writes keyspace messages: "set" for every commit newer than
// the last one notified (a subscriber that reads slowly gets one message
// for several commits, as shmgr watches coalesce), "del" when the region
// is deleted.
func (c *conn) respPush() {
	t := time.NewTicker(respRescan)
	defer t.Stop()
	var buf []byte
	s := &c.resp.subs
	for {
		rescan := false
		select {
		case <-c.done:
			return
		case <-c.notify:
		case <-t.C:
			rescan = true
		}
		buf = buf[:0]
		ver := int(s.proto.Load())
		if ver == 0 {
			ver = resp.RESP2
		}
		c.smu.Lock()
		if rescan && (len(s.patterns) > 0 || s.missing) {
			c.respReconcileLocked(false)
		}
		for id, kw := range s.regions {
			if !kw.active {
				continue
			}
			if kw.sub.Gone() {
				buf = c.respMessage(buf, ver, kw.channel, "del")
				kw.sub.Close()
				delete(s.regions, id)
				c.s.cfg.Metrics.Watchers.Add(-1)
				s.missing = true
				continue
			}
			if snap := kw.sub.Latest(); snap != nil && snap.Version > kw.sent {
				buf = c.respMessage(buf, ver, kw.channel, "set")
				kw.sent = snap.Version
			}
		}
		c.smu.Unlock()
		if len(buf) == 0 {
			continue
		}
		if !c.pushWrite(buf) {
			return
		}
	}
}

// respMessage appends the messages of one event on channel: one for the
// channel if subscribed, one per matching pattern. c.smu is held.
func (c *conn) respMessage(dst []byte, ver int, channel, event string) []byte {
	s := &c.resp.subs
	if s.channels[channel] {
		dst = resp.AppendPush(dst, ver, 3)
		dst = resp.AppendBulkString(dst, "message")
		dst = resp.AppendBulkString(dst, channel)
		dst = resp.AppendBulkString(dst, event)
		c.s.cfg.Metrics.Events.Inc()
	}
	for p := range s.patterns {
		if resp.Match([]byte(p), []byte(channel)) {
			dst = resp.AppendPush(dst, ver, 4)
			dst = resp.AppendBulkString(dst, "pmessage")
			dst = resp.AppendBulkString(dst, p)
			dst = resp.AppendBulkString(dst, channel)
			dst = resp.AppendBulkString(dst, event)
			c.s.cfg.Metrics.Events.Inc()
		}
	}
	return dst
}

// respCloseSubs ends the connection's watches.
func (c *conn) respCloseSubs() {
	c.smu.Lock()
	defer c.smu.Unlock()
	for _, kw := range c.resp.subs.regions {
		kw.sub.Close()
		c.s.cfg.Metrics.Watchers.Add(-1)
	}
	c.resp.subs.regions = nil
	c.resp.subs.channels, c.resp.subs.patterns = nil, nil
}

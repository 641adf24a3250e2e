package server

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/resp"
)

// respTx is a connection's transaction state: MULTI's queue and the
// keys WATCH saw.
type respTx struct {
	multi   bool
	dirty   bool // a command failed to queue: EXEC aborts
	queued  []respOp
	watched []respWatched
}

// respWatched is a key WATCH saw: whether its region existed, and at
// which version.
type respWatched struct {
	key, id []byte // id nil for a key that cannot exist
	exists  bool
	ver     uint64
}

// reset ends the transaction and forgets the watched keys, as EXEC and
// DISCARD do.
func (t *respTx) reset() {
	t.multi, t.dirty = false, false
	t.queued = t.queued[:0]
	t.watched = t.watched[:0]
}

// cloneArgs copies a command's arguments, which alias the read buffer,
// into one allocation.
func cloneArgs(args [][]byte) [][]byte {
	n := 0
	for _, a := range args {
		n += len(a)
	}
	buf := make([]byte, 0, n)
	out := make([][]byte, len(args))
	for i, a := range args {
		buf = append(buf, a...)
		out[i] = buf[len(buf)-len(a) : len(buf) : len(buf)]
	}
	return out
}

// respQueue queues a command in MULTI, checking what can be checked
// now (Redis does the same): a command that cannot run in a shmgr
// transaction, a key that names no region, a token that may not.
func (c *conn) respQueue(id respCmdID, args [][]byte) {
	rc := c.resp
	sp := &respSpecs[id]
	if !sp.tx {
		c.respErr(proto.CodeBadRequest, "ERR "+strings.ToUpper(sp.name)+" inside MULTI is not supported by shmgr: a transaction runs GET, SET, GETRANGE, SETRANGE, STRLEN, EXISTS, TYPE, PING and ECHO on one key")
		rc.tx.dirty = true
		return
	}
	if id == rcSet {
		if _, msg := parseSetOptions(args[3:]); msg != "" {
			c.respErr(proto.CodeBadRequest, msg)
			rc.tx.dirty = true
			return
		}
	}
	for _, k := range respOpKeys(id, args) {
		kid, err := c.respID(k)
		if err != nil {
			if sp.write {
				c.respBadKey(err)
				rc.tx.dirty = true
				return
			}
			continue
		}
		if sp.write && !c.respMayWrite(c.grant, sp.name, k, kid) || !sp.write && !c.respMayRead(c.grant, k, kid) {
			rc.tx.dirty = true
			return
		}
	}
	rc.tx.queued = append(rc.tx.queued, respOp{id: id, args: cloneArgs(args)})
	c.out = resp.AppendSimple(c.out, "QUEUED")
}

// respOpKeys returns the keys a command touches.
func respOpKeys(id respCmdID, args [][]byte) [][]byte {
	switch id {
	case rcPing, rcEcho:
		return nil
	case rcExists:
		return args[1:]
	}
	return args[1:2]
}

func (c *conn) respWatch(keys [][]byte) {
	rc := c.resp
	if rc.tx.multi {
		c.respErr(proto.CodeBadRequest, "ERR WATCH inside MULTI is not allowed")
		return
	}
	for _, k := range keys {
		w := respWatched{key: slices.Clone(k)}
		if id, err := c.respID(k); err == nil {
			if !c.respMayRead(c.grant, k, id) {
				return
			}
			w.id = slices.Clone(id)
			if hr, err := c.s.h.GetBytes(id); err == nil {
				w.exists = hr.Do(func(r *region.Region) error { w.ver = r.Version(); return nil }) == nil
			}
		}
		rc.tx.watched = append(rc.tx.watched, w)
	}
	c.out = resp.AppendOK(c.out)
}

// respTxRegion finds the one region a transaction touches: its
// commands' keys and its watched keys must all map to one id (or none).
// Otherwise it answers EXECABORT and returns ok false.
func (c *conn) respTxRegion(ops []respOp, watched []respWatched) (key, id []byte, ok bool) {
	var firstKey []byte
	var first string
	set := false
	add := func(k []byte) bool {
		kid, err := c.respID(k)
		s := ""
		if err == nil {
			s = string(kid)
		} else {
			s = "\x00" + string(k) // a key with no region: still a key of its own
		}
		if !set {
			firstKey, first, set = k, s, true
			key, id = slices.Clone(k), nil
			if err == nil {
				id = slices.Clone(kid)
			}
			return true
		}
		if s != first {
			c.respErr(proto.CodeConflict, fmt.Sprintf("EXECABORT Transaction discarded: it touches keys '%s' and '%s', and shmgr commits one region (one key) atomically: keep a transaction, and the keys it WATCHes, to one key", firstKey, k))
			return false
		}
		return true
	}
	for _, w := range watched {
		if !add(w.key) {
			return nil, nil, false
		}
	}
	for _, op := range ops {
		for _, k := range respOpKeys(op.id, op.args) {
			if !add(k) {
				return nil, nil, false
			}
		}
	}
	return key, id, true
}

// respExec serves EXEC: the queued commands run on their one key as one
// atomic step, at the version WATCH saw (if it watched the key); a
// changed key aborts the transaction with a null reply, as in Redis.
func (c *conn) respExec() {
	rc := c.resp
	t := &rc.tx
	if !t.multi {
		c.respErr(proto.CodeBadRequest, "ERR EXEC without MULTI")
		return
	}
	defer t.reset()
	if t.dirty {
		c.respErr(proto.CodeBadRequest, "EXECABORT Transaction discarded because of previous errors.")
		return
	}
	key, id, ok := c.respTxRegion(t.queued, t.watched)
	if !ok {
		return
	}
	var cond respCond
	for _, w := range t.watched {
		cond = respCond{has: true, exists: w.exists, ver: w.ver}
	}
	mark := len(c.out)
	c.out = resp.AppendArray(c.out, len(t.queued))
	if key == nil {
		// Only PING and ECHO: nothing to run atomically.
		v := respValue{}
		for _, op := range t.queued {
			c.respApply(&v, op)
		}
		return
	}
	body := len(c.out)
	if _, aborted := c.respAtomic(key, id, t.queued, cond); aborted {
		c.out = resp.AppendNullArray(c.out[:mark], rc.proto)
		return
	}
	if rc.failed {
		// respAtomic failed as a whole (a lock timeout, a region it could
		// not create): that error is EXEC's reply.
		c.out = append(c.out[:mark], c.out[body:]...)
	}
}

// respETag serves the Garnet-style one-round-trip conditional commands
// on shmgr versions:
//
//	EXECWITHETAG command key [arg ...]          -> [version, reply]
//	EXECIFMATCH version command key [arg ...]   -> [version, reply], or
//	                                               [current version, nil]
//
// The command runs atomically on its key's region; a write commits only
// at the version given (EXECIFMATCH), and the version replied is the one
// the command ran at or committed.
func (c *conn) respETag(id respCmdID, args [][]byte) {
	rc := c.resp
	var cond respCond
	inner := args[1:]
	if id == rcExecIfMatch {
		v, err := strconv.ParseUint(string(args[1]), 10, 64)
		if err != nil {
			c.respErr(proto.CodeBadRequest, "ERR the version of EXECIFMATCH must be an unsigned integer")
			return
		}
		cond = respCond{has: true, exists: true, ver: v}
		inner = args[2:]
	}
	cid, ok := respLookup(inner[0])
	if !ok || !respSpecs[cid].tx || cid == rcPing || cid == rcEcho {
		c.respErr(proto.CodeBadRequest, fmt.Sprintf("ERR %s runs GET, SET, GETRANGE, SETRANGE, STRLEN, EXISTS or TYPE on one key, not '%s'", strings.ToUpper(respSpecs[id].name), inner[0]))
		return
	}
	sp := &respSpecs[cid]
	if sp.arity > 0 && len(inner) != sp.arity || sp.arity < 0 && len(inner) < -sp.arity || cid == rcExists && len(inner) != 2 {
		c.respErr(proto.CodeBadRequest, "ERR wrong number of arguments for '"+sp.name+"' command")
		return
	}
	if cid == rcSet {
		if _, msg := parseSetOptions(inner[3:]); msg != "" {
			c.respErr(proto.CodeBadRequest, msg)
			return
		}
	}
	key := inner[1]
	rid, err := c.respID(key)
	if err != nil {
		if sp.write {
			c.respBadKey(err)
			return
		}
		rid = nil
	}
	if rid != nil && (sp.write && !c.respMayWrite(c.grant, sp.name, key, rid) || !sp.write && !c.respMayRead(c.grant, key, rid)) {
		return
	}
	mark := len(c.out)
	ver, aborted := c.respAtomic(key, rid, []respOp{{id: cid, args: inner}}, cond)
	if aborted {
		c.out = resp.AppendArray(c.out[:mark], 2)
		c.out = resp.AppendInt(c.out, int64(ver))
		c.out = resp.AppendNull(c.out, rc.proto)
		return
	}
	reply := append(rc.tmp[:0], c.out[mark:]...)
	c.out = resp.AppendArray(c.out[:mark], 2)
	c.out = resp.AppendInt(c.out, int64(ver))
	c.out = append(c.out, reply...)
	rc.tmp = reply[:0]
}

package server

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/resp"
)

// respDispatch serves one command and counts it.
func (c *conn) respDispatch(args [][]byte) {
	c.code = 0
	mark := len(c.out)
	id, ok := respLookup(args[0])
	fam := respFamilyError
	if ok {
		fam = respSpecs[id].fam
	}
	c.respCommand(id, ok, args)
	// Payload bytes, as the shmgr protocol counts them: the values
	// written.
	in := 0
	if ok && (id == rcSet && len(args) >= 3 || id == rcSetRange && len(args) == 4) {
		in = len(args[len(args)-1])
		if id == rcSet {
			in = len(args[2])
		}
	}
	c.respRecord(fam, in, mark)
}

// lowerName is a command name as Redis quotes it in errors.
func lowerName(b []byte) string { return strings.ToLower(string(b)) }

func (c *conn) respCommand(id respCmdID, known bool, args [][]byte) {
	rc := c.resp
	if !known {
		var b strings.Builder
		fmt.Fprintf(&b, "ERR unknown command '%.128s', with args beginning with: ", args[0])
		for _, a := range args[1:] {
			fmt.Fprintf(&b, "'%.128s' ", a)
		}
		c.respErr(proto.CodeUnknownCommand, b.String())
		rc.tx.dirty = rc.tx.multi
		return
	}
	sp := &respSpecs[id]
	if sp.arity > 0 && len(args) != sp.arity || sp.arity < 0 && len(args) < -sp.arity || sp.max > 0 && len(args) > sp.max {
		c.respErr(proto.CodeBadRequest, "ERR wrong number of arguments for '"+sp.name+"' command")
		rc.tx.dirty = rc.tx.multi
		return
	}
	if c.revoked.Load() {
		c.s.cfg.Metrics.AuthFailures.Inc()
		c.respErr(proto.CodeUnauthorized, "NOAUTH "+revokedMsg)
		c.quit = true
		return
	}
	if c.grant == nil && id != rcAuth && id != rcHello && id != rcQuit {
		c.s.cfg.Metrics.AuthFailures.Inc()
		c.respErr(proto.CodeUnauthorized, "NOAUTH Authentication required.")
		rc.tx.dirty = rc.tx.multi
		return
	}
	if rc.nsubs > 0 && rc.proto < resp.RESP3 && !sp.pubsub {
		c.respErr(proto.CodeBadRequest, "ERR Can't execute '"+lowerName(args[0])+"': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
		return
	}
	if rc.tx.multi && id != rcExec && id != rcDiscard && id != rcMulti && id != rcWatch && id != rcQuit {
		c.respQueue(id, args)
		return
	}
	c.respRun(id, args)
}

// respRun runs a command outside MULTI.
func (c *conn) respRun(id respCmdID, args [][]byte) {
	rc := c.resp
	switch id {
	case rcGet:
		c.respGet(args[1])
	case rcSet:
		if len(args) == 3 {
			c.respSetPlain(args[1], args[2])
			return
		}
		c.respOne(id, args)
	case rcGetRange, rcSetRange, rcStrlen, rcType:
		c.respOne(id, args)
	case rcExists:
		c.respExists(args[1:])
	case rcPing:
		c.respPing(args)
	case rcEcho:
		c.out = resp.AppendBulk(c.out, args[1])
	case rcQuit:
		c.out = resp.AppendOK(c.out)
		c.quit = true
	case rcAuth:
		user, token := []byte(nil), args[1]
		if len(args) == 3 {
			user, token = args[1], args[2]
		}
		if c.respAuth(user, token) {
			c.out = resp.AppendOK(c.out)
		}
	case rcHello:
		c.respHello(args)
	case rcSelect:
		c.respSelect(args[1])
	case rcClient:
		c.respClient(args)
	case rcInfo:
		c.respInfo(args[1:])
	case rcConfig:
		c.respConfig(args)
	case rcCommand:
		c.respCommandCmd(args)
	case rcDBSize:
		c.out = resp.AppendInt(c.out, int64(len(c.respKeys())))
	case rcKeys:
		c.respKeysCmd(args[1])
	case rcScan:
		c.respScan(args[1:])
	case rcDel:
		c.respDel(args[1:])
	case rcSubscribe, rcPSubscribe:
		c.respSubscribe(args[1:], id == rcPSubscribe)
	case rcUnsubscribe, rcPUnsubscribe:
		c.respUnsubscribe(args[1:], id == rcPUnsubscribe)
	case rcMulti:
		if rc.tx.multi {
			c.respErr(proto.CodeBadRequest, "ERR MULTI calls can not be nested")
			return
		}
		rc.tx.multi = true
		c.out = resp.AppendOK(c.out)
	case rcExec:
		c.respExec()
	case rcDiscard:
		if !rc.tx.multi {
			c.respErr(proto.CodeBadRequest, "ERR DISCARD without MULTI")
			return
		}
		rc.tx.reset()
		c.out = resp.AppendOK(c.out)
	case rcWatch:
		c.respWatch(args[1:])
	case rcUnwatch:
		rc.tx.watched = rc.tx.watched[:0]
		c.out = resp.AppendOK(c.out)
	case rcExecWithETag, rcExecIfMatch:
		c.respETag(id, args)
	}
}

// respID maps a key to its region id (in rc.idbuf, or the key itself).
func (c *conn) respID(key []byte) ([]byte, error) {
	if resp.Plain(key) {
		return key, nil
	}
	id, err := resp.AppendID(c.resp.idbuf[:0], key)
	if err != nil {
		return nil, err
	}
	c.resp.idbuf = id
	return id, nil
}

// respBadKey answers a key that names no region, for a command that
// would write it.
func (c *conn) respBadKey(err error) {
	c.respErr(proto.CodeBadID, "ERR "+err.Error()+" (see \"Redis protocol\" in the README for how keys map to region ids)")
}

// respBulkHeader frames a region's content as a bulk string.
func respBulkHeader(dst []byte, _ uint64, n int) []byte { return resp.AppendBulkHeader(dst, n) }

// respGet serves GET: the content goes from the mapping into the reply
// behind its bulk header, one copy.
func (c *conn) respGet(key []byte) {
	id, err := c.respID(key)
	if err != nil {
		c.out = resp.AppendNull(c.out, c.resp.proto) // such a key cannot exist
		return
	}
	if !c.respMayRead(c.grant, key, id) {
		return
	}
	hr, err := c.s.h.GetBytes(id)
	if err == nil {
		err = hr.Do(func(r *region.Region) (err error) {
			c.out, _, err = r.AppendFramed(c.out, 0, -1, respBulkHeader)
			return err
		})
	}
	switch {
	case err == nil:
		c.out = resp.AppendCRLF(c.out)
	case errors.Is(err, host.ErrNotFound): // missing, or deleted meanwhile
		c.out = resp.AppendNull(c.out, c.resp.proto)
	default:
		c.respFail(key, err)
	}
}

// respSetPlain serves SET key value with no options: one write of the
// region, or the slow path for a key whose region is missing.
func (c *conn) respSetPlain(key, value []byte) {
	id, err := c.respID(key)
	if err != nil {
		c.respBadKey(err)
		return
	}
	if !c.respMayWrite(c.grant, "set", key, id) {
		return
	}
	hr, err := c.s.h.GetBytes(id)
	if err != nil {
		c.respOne(rcSet, [][]byte{nil, key, value})
		return
	}
	if c.s.cfg.Cluster != nil {
		err = hr.Do(func(r *region.Region) error {
			if r.Layout() == region.Raw && int64(len(value)) != r.Size() {
				return errRawSize{size: r.Size(), n: len(value)}
			}
			return nil
		})
		if err == nil {
			_, err = c.respWrite(hr, value, false, 0)
		}
	} else {
		o := region.WriteOptions{Timeout: c.s.cfg.LockTimeout, Label: c.label, Stop: c.halt}
		err = hr.Do(func(r *region.Region) error {
			if r.Layout() == region.Raw && int64(len(value)) != r.Size() {
				return errRawSize{size: r.Size(), n: len(value)}
			}
			_, err := r.Write(value, o)
			return err
		})
	}
	if err == nil {
		c.out = resp.AppendOK(c.out)
		return
	}
	// Declared here, not above: errors.As moves it to the heap.
	var rs errRawSize
	switch {
	case errors.As(err, &rs):
		c.respErr(proto.CodeBadRequest, rs.msg(key))
	case errors.Is(err, host.ErrNotFound):
		c.respOne(rcSet, [][]byte{nil, key, value}) // deleted meanwhile
	default:
		c.respFail(key, err)
	}
}

// errRawSize is a SET on a raw region with a value not its size.
type errRawSize struct {
	size int64
	n    int
}

func (e errRawSize) Error() string { return "raw region size mismatch" }

func (e errRawSize) msg(key []byte) string {
	return fmt.Sprintf("WRONGTYPE Operation against a key holding the wrong kind of value: key '%s' is a raw region of %d bytes, and SET must give exactly %d bytes, not %d (SETRANGE writes part of it)", key, e.size, e.size, e.n)
}

// respOne runs one key command through the value engine (respAtomic).
func (c *conn) respOne(id respCmdID, args [][]byte) {
	key := args[1]
	rid, err := c.respID(key)
	if err != nil {
		if respSpecs[id].write {
			c.respBadKey(err)
			return
		}
		rid = nil // such a key cannot exist
	}
	if rid != nil {
		if respSpecs[id].write && !c.respMayWrite(c.grant, respSpecs[id].name, key, rid) ||
			!respSpecs[id].write && !c.respMayRead(c.grant, key, rid) {
			return
		}
	}
	c.respAtomic(key, rid, []respOp{{id: id, args: args}}, respCond{})
}

func (c *conn) respExists(keys [][]byte) {
	n := int64(0)
	for _, k := range keys {
		id, err := c.respID(k)
		if err != nil {
			continue
		}
		if !c.respMayRead(c.grant, k, id) {
			return
		}
		if _, err := c.s.h.GetBytes(id); err == nil {
			n++
		}
	}
	c.out = resp.AppendInt(c.out, n)
}

func (c *conn) respPing(args [][]byte) {
	rc := c.resp
	if rc.nsubs > 0 && rc.proto < resp.RESP3 {
		c.out = resp.AppendArray(c.out, 2)
		c.out = resp.AppendBulkString(c.out, "pong")
		if len(args) > 1 {
			c.out = resp.AppendBulk(c.out, args[1])
		} else {
			c.out = resp.AppendBulk(c.out, nil)
		}
		return
	}
	if len(args) > 1 {
		c.out = resp.AppendBulk(c.out, args[1])
		return
	}
	c.out = append(c.out, "+PONG\r\n"...)
}

func (c *conn) respSelect(db []byte) {
	n, err := strconv.ParseInt(string(db), 10, 64)
	switch {
	case err != nil:
		c.respErr(proto.CodeBadRequest, "ERR value is not an integer or out of range")
	case n != 0:
		c.respErr(proto.CodeBadRequest, "ERR DB index is out of range")
	default:
		c.out = resp.AppendOK(c.out)
	}
}

// respVersion is the Redis version whose commands and replies the
// listener follows, as HELLO and INFO report it.
const respVersion = "7.0.0"

func (c *conn) respHello(args [][]byte) {
	rc := c.resp
	ver := rc.proto
	if len(args) > 1 {
		v, err := strconv.ParseInt(string(args[1]), 10, 64)
		if err != nil {
			c.respErr(proto.CodeBadRequest, "ERR Protocol version is not an integer or out of range")
			return
		}
		if v != resp.RESP2 && v != resp.RESP3 {
			c.respErr(proto.CodeBadRequest, "NOPROTO unsupported protocol version")
			return
		}
		ver = int(v)
	}
	var user, pass, name []byte
	hasAuth, hasName := false, false
	for i := 2; i < len(args); i++ {
		switch {
		case strings.EqualFold(string(args[i]), "AUTH") && i+2 < len(args):
			user, pass, hasAuth = args[i+1], args[i+2], true
			i += 2
		case strings.EqualFold(string(args[i]), "SETNAME") && i+1 < len(args):
			name, hasName = args[i+1], true
			i++
		default:
			c.respErr(proto.CodeBadRequest, "ERR Syntax error in HELLO option '"+string(args[i])+"'")
			return
		}
	}
	if hasAuth {
		if !c.respAuth(user, pass) {
			return
		}
	} else if c.grant == nil {
		c.s.cfg.Metrics.AuthFailures.Inc()
		c.respErr(proto.CodeUnauthorized, "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	if hasName {
		if !validClientName(name) {
			c.respErr(proto.CodeBadRequest, "ERR Client names cannot contain spaces, newlines or special characters.")
			return
		}
		rc.name = append(rc.name[:0], name...)
	}
	rc.proto = ver
	rc.subs.proto.Store(int32(ver))
	c.out = resp.AppendMap(c.out, ver, 7)
	c.out = resp.AppendBulkString(c.out, "server")
	c.out = resp.AppendBulkString(c.out, "shmgr")
	c.out = resp.AppendBulkString(c.out, "version")
	c.out = resp.AppendBulkString(c.out, respVersion)
	c.out = resp.AppendBulkString(c.out, "proto")
	c.out = resp.AppendInt(c.out, int64(ver))
	c.out = resp.AppendBulkString(c.out, "id")
	c.out = resp.AppendInt(c.out, rc.id)
	c.out = resp.AppendBulkString(c.out, "mode")
	c.out = resp.AppendBulkString(c.out, "standalone")
	c.out = resp.AppendBulkString(c.out, "role")
	c.out = resp.AppendBulkString(c.out, "master")
	c.out = resp.AppendBulkString(c.out, "modules")
	c.out = resp.AppendArray(c.out, 0)
}

func validClientName(b []byte) bool {
	for _, c := range b {
		if c < '!' || c > '~' {
			return false
		}
	}
	return true
}

func (c *conn) respClient(args [][]byte) {
	rc := c.resp
	sub := strings.ToUpper(string(args[1]))
	arity := func(n int) bool {
		if len(args) != n {
			c.respErr(proto.CodeBadRequest, "ERR wrong number of arguments for 'client|"+strings.ToLower(sub)+"' command")
			return false
		}
		return true
	}
	switch sub {
	case "SETNAME":
		if !arity(3) {
			return
		}
		if !validClientName(args[2]) {
			c.respErr(proto.CodeBadRequest, "ERR Client names cannot contain spaces, newlines or special characters.")
			return
		}
		rc.name = append(rc.name[:0], args[2]...)
		c.out = resp.AppendOK(c.out)
	case "GETNAME":
		if !arity(2) {
			return
		}
		if len(rc.name) == 0 {
			c.out = resp.AppendNull(c.out, rc.proto)
			return
		}
		c.out = resp.AppendBulk(c.out, rc.name)
	case "ID":
		if !arity(2) {
			return
		}
		c.out = resp.AppendInt(c.out, rc.id)
	case "SETINFO":
		if !arity(4) {
			return
		}
		switch strings.ToUpper(string(args[2])) {
		case "LIB-NAME", "LIB-VER":
			c.out = resp.AppendOK(c.out)
		default:
			c.respErr(proto.CodeBadRequest, "ERR Unrecognized option '"+string(args[2])+"'")
		}
	default:
		c.respErr(proto.CodeBadRequest, fmt.Sprintf("ERR unknown subcommand '%.128s'. Try CLIENT HELP.", args[1]))
	}
}

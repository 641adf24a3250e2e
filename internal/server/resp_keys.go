package server

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/resp"
)

// respKeys lists the region ids the connection's token sees, sorted.
func (c *conn) respKeys() []string {
	list := c.s.h.List()
	ids := make([]string, 0, len(list))
	for _, in := range list {
		if c.visible(in.ShmID) {
			ids = append(ids, in.ShmID)
		}
	}
	return ids
}

func (c *conn) respKeysCmd(pattern []byte) {
	ids := c.respKeys()
	var keys [][]byte
	for _, id := range ids {
		k := resp.AppendKey(nil, []byte(id))
		if resp.Match(pattern, k) {
			keys = append(keys, k)
		}
	}
	c.out = resp.AppendArray(c.out, len(keys))
	for _, k := range keys {
		c.out = resp.AppendBulk(c.out, k)
	}
}

// respScan serves SCAN cursor [MATCH pattern] [COUNT n] [TYPE type]. The
// cursor is a position in the sorted list of ids: a key present for the
// whole iteration is returned at least once unless keys before it are
// deleted meanwhile (then some may be skipped), and COUNT ids are
// examined per call.
func (c *conn) respScan(args [][]byte) {
	cursor, err := strconv.ParseUint(string(args[0]), 10, 64)
	if err != nil {
		c.respErr(proto.CodeBadRequest, "ERR invalid cursor")
		return
	}
	var pattern []byte
	count := int64(10)
	typ := ""
	for i := 1; i < len(args); i += 2 {
		if i+1 >= len(args) {
			c.respErr(proto.CodeBadRequest, "ERR syntax error")
			return
		}
		switch strings.ToUpper(string(args[i])) {
		case "MATCH":
			pattern = args[i+1]
		case "COUNT":
			n, err := strconv.ParseInt(string(args[i+1]), 10, 64)
			if err != nil {
				c.respErr(proto.CodeBadRequest, "ERR value is not an integer or out of range")
				return
			}
			if n < 1 {
				c.respErr(proto.CodeBadRequest, "ERR syntax error")
				return
			}
			count = n
		case "TYPE":
			typ = strings.ToLower(string(args[i+1]))
		default:
			c.respErr(proto.CodeBadRequest, "ERR syntax error")
			return
		}
	}
	ids := c.respKeys()
	start := min(cursor, uint64(len(ids)))
	end := min(start+uint64(count), uint64(len(ids)))
	var keys [][]byte
	for _, id := range ids[start:end] {
		k := resp.AppendKey(nil, []byte(id))
		if (pattern == nil || resp.Match(pattern, k)) && (typ == "" || typ == "string") {
			keys = append(keys, k)
		}
	}
	next := end
	if end == uint64(len(ids)) {
		next = 0
	}
	c.out = resp.AppendArray(c.out, 2)
	c.out = resp.AppendBulkString(c.out, strconv.FormatUint(next, 10))
	c.out = resp.AppendArray(c.out, len(keys))
	for _, k := range keys {
		c.out = resp.AppendBulk(c.out, k)
	}
}

// respDel serves DEL: it needs a token that may write every key's
// region, and refuses the host's default region (which cannot be
// deleted) before deleting anything.
func (c *conn) respDel(keys [][]byte) {
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		id, err := c.respID(k)
		if err != nil {
			ids = append(ids, "") // such a key cannot exist
			continue
		}
		if !c.respMayWrite(c.grant, "del", k, id) {
			return
		}
		if string(id) == c.s.h.DefaultID() {
			c.respErr(proto.CodeForbidden, fmt.Sprintf("ERR key '%s' is the host's default region, which cannot be deleted", k))
			return
		}
		ids = append(ids, string(id))
	}
	n := int64(0)
	for i, id := range ids {
		if id == "" {
			continue
		}
		switch err := c.respDelete(id); {
		case err == nil:
			n++
			c.s.cfg.Logf("RESP connection from %s deleted region %q (key %q)", c.nc.RemoteAddr(), id, keys[i])
		case !errors.Is(err, host.ErrNotFound):
			c.respFail(keys[i], err)
			return
		}
	}
	c.out = resp.AppendInt(c.out, n)
}

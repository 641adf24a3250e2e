package server

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/resp"
)

// respOp is one queued or direct key command.
type respOp struct {
	id   respCmdID
	args [][]byte
}

// respCond makes respAtomic conditional: the key's region must exist (or
// not) and, if it exists, be at version ver; otherwise nothing is run and
// the call reports aborted.
type respCond struct {
	has    bool
	exists bool
	ver    uint64
}

// respValue is a key's value while commands run on it: a copy of its
// region's content (or of nothing, for a missing key).
type respValue struct {
	key     []byte
	exists  bool
	raw     bool
	max     int64 // the most content the region (or a new one) holds
	create  bool  // a missing key may be created
	b       []byte
	changed bool
}

// respCreateMin is the smallest region SET creates: shared memory is
// allocated as it is touched, so room to grow costs little until used.
const respCreateMin = 64 << 10

// respCreateSize is the size of the region SET or SETRANGE creates for a
// missing key whose first content is n bytes: a utf8 region of 64 KiB,
// or the next power of two that holds the content with room to grow to
// twice its length.
func respCreateSize(n int) int64 {
	size := int64(respCreateMin)
	for size < 2*int64(n)+region.DataOffset {
		size *= 2
	}
	return size
}

// errNoChange ends an Update whose commands wrote nothing.
var errNoChange = errors.New("no change")

// respAtomic runs ops, all on key (region id; nil for a key that cannot
// exist), as one atomic step: reads see one version; writes commit once,
// under the region's lock, at the version the ops read (and at cond's,
// if given). Replies go to c.out in order. It returns the version the ops
// ran at (or committed), and aborted when cond did not hold.
func (c *conn) respAtomic(key, id []byte, ops []respOp, cond respCond) (ver uint64, aborted bool) {
	rc := c.resp
	rc.failed = false
	write := false
	for _, op := range ops {
		write = write || respSpecs[op.id].write
	}
	mark := len(c.out)
	for attempt := 0; ; attempt++ {
		c.out = c.out[:mark]
		var hr *host.Region
		err := host.ErrNotFound
		if id != nil {
			hr, err = c.s.h.GetBytes(id)
		}
		if errors.Is(err, host.ErrNotFound) {
			if cond.has && cond.exists {
				return 0, true
			}
			v := respValue{key: key, create: id != nil && !c.s.cfg.RESP.NoCreate, max: c.s.cfg.Limits.MaxPayload, b: rc.tmp[:0]}
			for _, op := range ops {
				c.respApply(&v, op)
			}
			rc.tmp = v.b[:0]
			if !v.changed {
				return 0, false
			}
			hr, err = c.respCreate(id, respCreateSize(len(v.b)))
			if errors.Is(err, host.ErrExists) && attempt < 3 {
				if cond.has {
					return 0, true // someone else made it: not the state watched
				}
				continue
			}
			if err != nil {
				c.out = c.out[:mark]
				c.respFail(key, err)
				rc.failed = true
				return 0, false
			}
			c.s.cfg.Logf("RESP connection from %s created region %q for key %q", c.nc.RemoteAddr(), id, key)
			ver, err = c.respWrite(hr, v.b, true, 0)
			if errors.Is(err, region.ErrConflict) && attempt < 3 {
				if cond.has {
					return c.respConflictVersion(hr, err), true
				}
				continue
			}
			if err != nil {
				c.out = c.out[:mark]
				c.respFail(key, err)
				rc.failed = true
			}
			return ver, false
		}
		if err != nil {
			c.respFail(key, err)
			rc.failed = true
			return 0, false
		}
		if cond.has && !cond.exists {
			return 0, true
		}
		if !write {
			err = hr.Do(func(r *region.Region) (err error) {
				v := respValue{key: key, exists: true, raw: r.Layout() == region.Raw, max: r.MaxContent()}
				v.b, ver, err = r.AppendContent(rc.tmp[:0])
				if err != nil {
					return err
				}
				rc.tmp = v.b[:0]
				if cond.has && ver != cond.ver {
					return &region.ConflictError{Expected: cond.ver, Current: ver}
				}
				for _, op := range ops {
					c.respApply(&v, op)
				}
				return nil
			})
		} else if c.s.cfg.Cluster != nil {
			ver, err = c.respUpdateCluster(hr, key, ops, cond, attempt > 0)
		} else {
			o := region.WriteOptions{Timeout: c.s.cfg.LockTimeout, Label: c.label, Stop: c.halt, Conditional: cond.has, IfVersion: cond.ver}
			err = hr.Do(func(r *region.Region) error {
				nv, err := r.Update(o, func(cur []byte) ([]byte, error) {
					ver = r.Version()
					v := respValue{key: key, exists: true, raw: r.Layout() == region.Raw, max: r.MaxContent(), b: append(rc.tmp[:0], cur...)}
					for _, op := range ops {
						c.respApply(&v, op)
					}
					rc.tmp = v.b[:0]
					if !v.changed {
						return nil, errNoChange
					}
					return v.b, nil
				})
				if err == nil {
					ver = nv
				}
				if errors.Is(err, errNoChange) {
					err = nil
				}
				return err
			})
		}
		// On a cluster node a write is optimistic (respUpdateCluster): one
		// refused because this node's copy was behind, or another client
		// wrote first, runs again once the node has caught up.
		clustered := c.s.cfg.Cluster != nil && attempt < respClusterAttempts
		switch {
		case err == nil:
			return ver, false
		case clustered && (errors.Is(err, errRESPBehind) || !cond.has && errors.Is(err, region.ErrConflict)):
			c.respCatchUp()
			continue
		case errors.Is(err, region.ErrConflict) && cond.has:
			c.out = c.out[:mark]
			return c.respConflictVersion(hr, err), true
		case errors.Is(err, region.ErrConflict):
			err = fmt.Errorf("%w: other writers won %d attempts in a row (retry)", err, attempt+1)
		case errors.Is(err, host.ErrNotFound) && attempt < 3:
			continue // deleted meanwhile: run again on the missing key
		}
		c.out = c.out[:mark]
		c.respFail(key, err)
		rc.failed = true
		return 0, false
	}
}

// respApply runs one command on v, appending its reply. Writes change
// v.b and set v.changed; a write the region cannot hold is refused in its
// reply and changes nothing.
func (c *conn) respApply(v *respValue, op respOp) {
	rc := c.resp
	args := op.args
	switch op.id {
	case rcGet:
		if !v.exists {
			c.out = resp.AppendNull(c.out, rc.proto)
			return
		}
		c.out = resp.AppendBulk(c.out, v.b)
	case rcStrlen:
		c.out = resp.AppendInt(c.out, int64(len(v.b)))
	case rcExists:
		n := int64(0)
		if v.exists {
			n = int64(len(args) - 1)
		}
		c.out = resp.AppendInt(c.out, n)
	case rcType:
		if v.exists {
			c.out = resp.AppendSimple(c.out, "string")
		} else {
			c.out = resp.AppendSimple(c.out, "none")
		}
	case rcPing:
		c.respPing(args)
	case rcEcho:
		c.out = resp.AppendBulk(c.out, args[1])
	case rcGetRange:
		start, err1 := strconv.ParseInt(string(args[2]), 10, 64)
		end, err2 := strconv.ParseInt(string(args[3]), 10, 64)
		if err1 != nil || err2 != nil {
			c.respErr(proto.CodeBadRequest, "ERR value is not an integer or out of range")
			return
		}
		n := int64(len(v.b))
		if start < 0 && end < 0 && start > end {
			c.out = resp.AppendBulk(c.out, nil)
			return
		}
		if start < 0 {
			start += n
		}
		if end < 0 {
			end += n
		}
		start, end = max(start, 0), max(end, 0)
		if end >= n {
			end = n - 1
		}
		if start > end || n == 0 {
			c.out = resp.AppendBulk(c.out, nil)
			return
		}
		c.out = resp.AppendBulk(c.out, v.b[start:end+1])
	case rcSet:
		c.respApplySet(v, args)
	case rcSetRange:
		c.respApplySetRange(v, args)
	}
}

// respSetOptions are SET's options.
type respSetOptions struct{ nx, xx, get bool }

// parseSetOptions reads SET's options; msg is the error for bad ones.
func parseSetOptions(args [][]byte) (o respSetOptions, msg string) {
	for _, a := range args {
		switch strings.ToUpper(string(a)) {
		case "NX":
			o.nx = true
		case "XX":
			o.xx = true
		case "GET":
			o.get = true
		case "EX", "PX", "EXAT", "PXAT", "KEEPTTL":
			return o, "ERR shmgr keys do not expire: SET's EX, PX, EXAT, PXAT and KEEPTTL options are not supported (regions live until deleted)"
		default:
			return o, "ERR syntax error"
		}
	}
	if o.nx && o.xx {
		return o, "ERR syntax error"
	}
	return o, ""
}

func (c *conn) respApplySet(v *respValue, args [][]byte) {
	rc := c.resp
	o, msg := parseSetOptions(args[3:])
	if msg != "" {
		c.respErr(proto.CodeBadRequest, msg)
		return
	}
	value := args[2]
	if o.nx && v.exists || o.xx && !v.exists {
		if o.get && v.exists {
			c.out = resp.AppendBulk(c.out, v.b)
		} else {
			c.out = resp.AppendNull(c.out, rc.proto)
		}
		return
	}
	if !c.respCanHold(v, value, 0, int64(len(value))) {
		return
	}
	if v.raw && int64(len(value)) != v.max {
		c.respErr(proto.CodeBadRequest, errRawSize{size: v.max, n: len(value)}.msg(v.key))
		return
	}
	if o.get {
		if v.exists {
			c.out = resp.AppendBulk(c.out, v.b)
		} else {
			c.out = resp.AppendNull(c.out, rc.proto)
		}
	} else {
		c.out = resp.AppendOK(c.out)
	}
	v.b = append(v.b[:0], value...)
	v.exists, v.changed = true, true
}

// respCanHold checks that v may become a value of n bytes, with p
// written at off: the key exists or may be created, and the region holds
// n bytes.
func (c *conn) respCanHold(v *respValue, p []byte, off, n int64) bool {
	if !v.exists && !v.create {
		c.respErr(proto.CodeNotFound, fmt.Sprintf("ERR key '%s' does not exist, and this host does not create regions from SET (shmgr host --resp-create=false): create its region first (shmgr create <id>)", v.key))
		return false
	}
	if n > v.max {
		c.respErr(proto.CodeTooLarge, fmt.Sprintf("ERR %d bytes at offset %d pass the end of the region of key '%s': it holds at most %d bytes (create a larger region: shmgr create <id> --size N)", len(p), off, v.key, v.max))
		return false
	}
	if !v.raw && !utf8.Valid(p) {
		c.respErr(proto.CodeInvalidUTF8, fmt.Sprintf("ERR value is not valid UTF-8 (%s) and the region of key '%s' has the utf8 layout: keep binary values in a raw region (shmgr create <id> --layout raw)", badUTF8(p), v.key))
		return false
	}
	return true
}

// runeStart reports whether offset i of b begins a character (or is at
// or past its end).
func runeStart(b []byte, i int64) bool { return i >= int64(len(b)) || utf8.RuneStart(b[i]) }

// badUTF8 says where p stops being UTF-8.
func badUTF8(p []byte) string {
	for i := 0; i < len(p); {
		r, n := utf8.DecodeRune(p[i:])
		if r == utf8.RuneError && n <= 1 {
			return fmt.Sprintf("invalid byte 0x%02x at offset %d", p[i], i)
		}
		i += n
	}
	return "invalid encoding"
}

func (c *conn) respApplySetRange(v *respValue, args [][]byte) {
	off, err := strconv.ParseInt(string(args[2]), 10, 64)
	if err != nil {
		c.respErr(proto.CodeBadRequest, "ERR value is not an integer or out of range")
		return
	}
	if off < 0 {
		c.respErr(proto.CodeBadRequest, "ERR offset is out of range")
		return
	}
	p := args[3]
	if len(p) == 0 {
		c.out = resp.AppendInt(c.out, int64(len(v.b)))
		return
	}
	end := off + int64(len(p))
	if off > v.max || end > v.max {
		c.respErr(proto.CodeOutOfRange, fmt.Sprintf("ERR SETRANGE at offset %d with %d bytes passes the end of the region of key '%s': it holds at most %d bytes (create a larger region: shmgr create <id> --size N)", off, len(p), v.key, v.max))
		return
	}
	if !c.respCanHold(v, p, off, end) {
		return
	}
	if !v.raw && (!runeStart(v.b, off) || !runeStart(v.b, end)) {
		c.respErr(proto.CodeInvalidUTF8, fmt.Sprintf("ERR SETRANGE of bytes %d..%d would split a character of key '%s', whose region has the utf8 layout", off, end, v.key))
		return
	}
	b := v.b
	for int64(len(b)) < end {
		b = append(b, 0) // Redis pads with zero bytes
	}
	copy(b[off:], p)
	v.b = b
	v.exists, v.changed = true, true
	c.out = resp.AppendInt(c.out, int64(len(b)))
}

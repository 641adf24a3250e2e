package server

import (
	"fmt"
	"strconv"

	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/resp"
)

// How errors read on the RESP listener. An error of another layer (the
// host, a region) gets its code from the one table, proto.CodeOf (through
// classify), and its prefix from respPrefix: the same code, so the same
// metrics outcome, on both listeners. Redis's other prefixes (WRONGPASS,
// WRONGTYPE, EXECABORT, NOPROTO, and NOAUTH or NOPERM for a particular
// command) name a situation, not a kind of error: the handler that meets
// the situation writes them, with the code it counts as (respErr).

// respPrefix is the RESP error prefix for a code: the word Redis clients
// classify errors by (redis-py raises AuthenticationError for NOAUTH and
// NoPermissionError for NOPERM, ResponseError for ERR).
func respPrefix(code proto.Code) string {
	switch code {
	case proto.CodeUnauthorized:
		return "NOAUTH"
	case proto.CodeForbidden:
		return "NOPERM"
	}
	return "ERR"
}

// appendError appends an error reply in the connection's protocol: the
// shmgr "ERROR <code> <msg>", or RESP's "-<prefix> <msg>".
func (c *conn) appendError(dst []byte, code proto.Code, msg string) []byte {
	if c.resp != nil {
		return resp.AppendError(dst, respPrefix(code)+" "+msg)
	}
	return proto.AppendError(dst, code, msg)
}

// respRefusal is the reply of a connection refused by MaxConns, in
// Redis's wording first.
func respRefusal(msg string) []byte {
	return resp.AppendError(nil, respPrefix(proto.CodeLimit)+" max number of clients reached: "+msg)
}

// respErr appends an error reply, with the code it counts as. msg starts
// with its RESP prefix (ERR, WRONGTYPE, NOAUTH, WRONGPASS, NOPERM,
// EXECABORT).
func (c *conn) respErr(code proto.Code, msg string) {
	c.code = code
	c.out = resp.AppendError(c.out, msg)
}

// respFail appends the RESP error for a host or region error: classify's
// code and message, behind the code's prefix, with a hint for the errors
// a Redis user can fix from the key's side.
func (c *conn) respFail(key []byte, err error) {
	f := classify(err)
	msg := f.msg
	switch f.code {
	case proto.CodeInvalidUTF8:
		msg = fmt.Sprintf("value is not valid UTF-8 for key '%s': %s (its region has the utf8 layout; keep binary values in a raw region: shmgr create <id> --layout raw)", key, msg)
	case proto.CodeTooLarge:
		msg = fmt.Sprintf("value does not fit the region of key '%s': %s (create a larger region: shmgr create <id> --size N)", key, msg)
	case proto.CodeConflict:
		if f.conflict {
			msg = strconv.FormatUint(f.current, 10) + " " + msg
		}
		msg = "conflict: " + msg
	}
	c.respErr(f.code, respPrefix(f.code)+" "+msg)
}

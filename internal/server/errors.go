package server

import (
	"errors"
	"strconv"

	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/region"
)

// failure is an error as a reply carries it: its wire code and message,
// and a refused conditional write's versions, which go first as fields
// (proto.AppendConflict).
type failure struct {
	code proto.Code
	msg  string
	// conflict says that current and expected are set: the error was a
	// *region.ConflictError (code is CodeConflict).
	conflict          bool
	current, expected uint64
}

// classify turns an error into its reply. The code is proto.CodeOf's (the
// one table from errors to words), the message the error's own, except
// that a host closing or a wait stopped by it says "host is shutting down"
// (the client retries elsewhere or later; how the wait ended is no use to
// it), and that a conflict's message is the ConflictError's, behind its
// fields, without the context it was wrapped in.
func classify(err error) failure {
	f := failure{code: proto.CodeOf(err)}
	var ce *region.ConflictError
	switch {
	case f.code == proto.CodeConflict && errors.As(err, &ce):
		f.msg, f.conflict, f.current, f.expected = ce.Error(), true, ce.Current, ce.Expected
	case f.code == proto.CodeUnavailable && (errors.Is(err, host.ErrClosed) || errors.Is(err, region.ErrStopped)):
		f.msg = "host is shutting down"
	default:
		f.msg = err.Error()
	}
	return f
}

// append appends the ERROR reply of f.
func (f *failure) append(dst []byte) []byte {
	if f.conflict {
		return proto.AppendConflict(dst, f.current, f.expected, f.msg)
	}
	return proto.AppendError(dst, f.code, f.msg)
}

// text is the reply's text after its code word: for a conflict, the
// fields and then the message. proto.AppendError(dst, f.code, f.text())
// gives the bytes f.append gives: what the idempotency record keeps (see
// outcome), in memory and in State, in the form hosts before the
// conflict fields kept it too (code and text), so a state handed to an
// older host or taken from one replays as it was first answered.
func (f *failure) text() string {
	if !f.conflict {
		return f.msg
	}
	return strconv.FormatUint(f.current, 10) + " expected=" + strconv.FormatUint(f.expected, 10) + " " + f.msg
}

// fail answers with the error's reply (see classify).
func (c *conn) fail(err error) {
	f := classify(err)
	c.refused(&f)
}

// refuse answers with an error reply of the given code, for a refusal
// made here rather than an error of another layer (a limit, a lease the
// connection does not hold).
func (c *conn) refuse(code proto.Code, msg string) {
	c.refused(&failure{code: code, msg: msg})
}

// refused appends f's reply, and keeps its code for record: every error
// reply to a request goes through here.
func (c *conn) refused(f *failure) {
	c.code = f.code
	c.out = f.append(c.out)
}

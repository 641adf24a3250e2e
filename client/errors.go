package client

import (
	"bytes"
	"errors"
	"strconv"

	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shmerr"
)

// Errors, matched with errors.Is whether the region is local or remote.
// Those that a host (or a mapped region) can report are the kinds every
// layer shares (package shmerr), so one sentinel matches the error
// whether it was made in this process, by the mapping, or by the host on
// the other end; ErrClosed and ErrNotLocal are the client's own.
var (
	// ErrNotFound: the host has no region with this shm_id.
	ErrNotFound = shmerr.ErrNotFound
	// ErrExists: a region with this shm_id exists already.
	ErrExists = shmerr.ErrExists
	// ErrTooLarge: the content does not fit the region (or the request
	// limit).
	ErrTooLarge = shmerr.ErrTooLarge
	// ErrInvalidUTF8: content for a utf8 region is not valid UTF-8.
	ErrInvalidUTF8 = shmerr.ErrInvalidUTF8
	// ErrLockTimeout: the region's lock was not acquired in time.
	ErrLockTimeout = shmerr.ErrLockTimeout
	// ErrConflict: a conditional write found another version (errors.As
	// with *ConflictError gives the current version).
	ErrConflict = shmerr.ErrConflict
	// ErrOutOfRange: a byte range lies outside the data.
	ErrOutOfRange = shmerr.ErrOutOfRange
	// ErrBadID: the shm_id does not follow the grammar
	// [A-Za-z0-9][A-Za-z0-9._-]{0,63}.
	ErrBadID = shmerr.ErrBadID
	// ErrForbidden: the host does not allow this operation.
	ErrForbidden = shmerr.ErrForbidden
	// ErrUnauthorized: the host requires authentication.
	ErrUnauthorized = shmerr.ErrUnauthorized
	// ErrLimit: a host limit refused the request.
	ErrLimit = shmerr.ErrLimit
	// ErrUnavailable: the host is shutting down.
	ErrUnavailable = shmerr.ErrUnavailable
	// ErrProtocol: the host sent something that is not the shmgr protocol,
	// or refused a request as malformed.
	ErrProtocol = shmerr.ErrProtocol
	// ErrClosed: the Region or Conn has been closed.
	ErrClosed = errors.New("closed")
	// ErrNotLocal: local mode was forced but the region cannot be mapped
	// from this process.
	ErrNotLocal = errors.New("region cannot be mapped locally")
	// ErrHost: the host failed in a way the client cannot fix.
	ErrHost = shmerr.ErrInternal
	// ErrUnknownOutcome: the connection dropped after a write (or CREATE,
	// DELETE) was sent and before its answer came, and a retry could not
	// settle it: the write may or may not have been applied. Read the
	// region to find out.
	ErrUnknownOutcome = shmerr.ErrUnknownOutcome
	// ErrFenced: the lease a write relied on has expired or been released,
	// or its fencing token is stale; nothing was written.
	ErrFenced = shmerr.ErrFenced
)

// ConflictError is returned by a conditional write that found another
// version; Current is the region's version.
type ConflictError = region.ConflictError

// LockTimeoutError is returned by a local write that timed out; it names
// the lock's owner.
type LockTimeoutError = region.LockTimeoutError

// Error is an error reported by the host. It unwraps to the sentinel for
// its code.
type Error struct {
	// Code is the protocol's error word, such as "not_found".
	Code string
	// Message is the host's message.
	Message string
	err     error
}

func (e *Error) Error() string {
	if e.Code == "" || e.Code == proto.CodeUnknown.String() {
		return "host: " + e.Message
	}
	return "host: " + e.Code + ": " + e.Message
}

// Unwrap returns the sentinel matching the code.
func (e *Error) Unwrap() error { return e.err }

// replyError turns an ERROR reply into an error: an *Error that unwraps to
// its code's kind (proto's one table from wire words to errors), or, for a
// conflict that names the region's version, a *ConflictError. The
// versions come from the reply's fields; a host older than the expected=
// field sends only the current version, and the expected one is then read
// from its message, as such hosts wrote it.
func replyError(rep proto.Reply) error {
	if rep.Code == proto.CodeConflict && rep.Conflict.HasCurrent {
		ce := &ConflictError{Current: rep.Conflict.Current, Expected: rep.Conflict.Expected}
		if !rep.Conflict.HasExpected {
			ce.Expected = parseExpected(rep.Text)
		}
		return ce
	}
	return &Error{Code: rep.Code.String(), Message: string(rep.Text), err: rep.Code.Err()}
}

// parseExpected finds "expected version N" in a conflict message.
func parseExpected(msg []byte) uint64 {
	const key = "expected version "
	i := bytes.Index(msg, []byte(key))
	if i < 0 {
		return 0
	}
	rest := msg[i+len(key):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	v, _ := strconv.ParseUint(string(rest[:j]), 10, 64)
	return v
}

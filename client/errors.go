package client

import (
	"bytes"
	"errors"
	"strconv"

	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/region"
)

// Errors, matched with errors.Is whether the region is local or remote.
var (
	// ErrNotFound: the host has no region with this shm_id.
	ErrNotFound = errors.New("region not found")
	// ErrExists: a region with this shm_id exists already.
	ErrExists = errors.New("region already exists")
	// ErrTooLarge: the content does not fit the region (or the request
	// limit).
	ErrTooLarge = region.ErrTooLarge
	// ErrInvalidUTF8: content for a utf8 region is not valid UTF-8.
	ErrInvalidUTF8 = region.ErrInvalidUTF8
	// ErrLockTimeout: the region's lock was not acquired in time.
	ErrLockTimeout = region.ErrLockTimeout
	// ErrConflict: a conditional write found another version (errors.As
	// with *ConflictError gives the current version).
	ErrConflict = region.ErrConflict
	// ErrOutOfRange: a byte range lies outside the data.
	ErrOutOfRange = region.ErrOutOfRange
	// ErrBadID: the shm_id does not follow the grammar
	// [A-Za-z0-9][A-Za-z0-9._-]{0,63}.
	ErrBadID = errors.New("invalid shm_id")
	// ErrForbidden: the host does not allow this operation.
	ErrForbidden = errors.New("operation not allowed")
	// ErrUnauthorized: the host requires authentication.
	ErrUnauthorized = errors.New("authentication required")
	// ErrLimit: a host limit refused the request.
	ErrLimit = errors.New("limit reached")
	// ErrUnavailable: the host is shutting down.
	ErrUnavailable = errors.New("host unavailable")
	// ErrProtocol: the host sent something that is not the shmgr protocol,
	// or refused a request as malformed.
	ErrProtocol = errors.New("protocol error")
	// ErrClosed: the Region or Conn has been closed.
	ErrClosed = errors.New("closed")
	// ErrNotLocal: local mode was forced but the region cannot be mapped
	// from this process.
	ErrNotLocal = errors.New("region cannot be mapped locally")
	// ErrHost: the host failed in a way the client cannot fix.
	ErrHost = errors.New("host error")
	// ErrUnknownOutcome: the connection dropped after a write (or CREATE,
	// DELETE) was sent and before its answer came, and a retry could not
	// settle it: the write may or may not have been applied. Read the
	// region to find out.
	ErrUnknownOutcome = errors.New("outcome unknown")
	// ErrFenced: the lease a write relied on has expired or been released,
	// or its fencing token is stale; nothing was written.
	ErrFenced = region.ErrFenced
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

func sentinel(c proto.Code) error {
	switch c {
	case proto.CodeNotFound:
		return ErrNotFound
	case proto.CodeExists:
		return ErrExists
	case proto.CodeTooLarge, proto.CodeLineTooLong:
		return ErrTooLarge
	case proto.CodeInvalidUTF8:
		return ErrInvalidUTF8
	case proto.CodeLockTimeout:
		return ErrLockTimeout
	case proto.CodeConflict:
		return ErrConflict
	case proto.CodeOutOfRange:
		return ErrOutOfRange
	case proto.CodeBadID:
		return ErrBadID
	case proto.CodeForbidden:
		return ErrForbidden
	case proto.CodeUnauthorized:
		return ErrUnauthorized
	case proto.CodeLimit:
		return ErrLimit
	case proto.CodeUnavailable:
		return ErrUnavailable
	case proto.CodeBadRequest, proto.CodeUnknownCommand:
		return ErrProtocol
	case proto.CodeUnknownOutcome:
		return ErrUnknownOutcome
	case proto.CodeFenced:
		return ErrFenced
	}
	return ErrHost
}

func replyError(rep proto.Reply) error {
	e := &Error{Code: rep.Code.String(), Message: string(rep.Text), err: sentinel(rep.Code)}
	if rep.Code == proto.CodeConflict {
		// "<current version> <message>"
		msg := rep.Text
		if i := bytes.IndexByte(msg, ' '); i > 0 {
			if v, err := strconv.ParseUint(string(msg[:i]), 10, 64); err == nil {
				return &ConflictError{Current: v, Expected: parseExpected(msg)}
			}
		}
	}
	return e
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

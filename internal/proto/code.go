package proto

import (
	"errors"

	"github.com/shmgr/shmgr/internal/shmerr"
)

// Code is the kind of an error as it crosses the wire: the word after
// "ERROR " in a reply. The client maps each code back to a sentinel error.
//
// IMPORTANT: the numeric values are stable and the list is append-only.
// Do not reorder, renumber or remove codes; add new ones at the end.
type Code uint8

// Error codes. Do not reorder.
const (
	// CodeUnknown is reserved: it is never sent as a word, and it is what
	// ParseCode returns for a word it does not know.
	CodeUnknown Code = iota
	// CodeBadRequest: the request is malformed (syntax, numbers, options).
	CodeBadRequest
	// CodeUnknownCommand: the verb is not a known command.
	CodeUnknownCommand
	// CodeLineTooLong: the command line is longer than the limit.
	CodeLineTooLong
	// CodeTooLarge: the payload or region is larger than the limit.
	CodeTooLarge
	// CodeNotFound: no region has this id.
	CodeNotFound
	// CodeExists: a region with this id already exists.
	CodeExists
	// CodeInvalidUTF8: the data is not valid UTF-8 (utf8 layout).
	CodeInvalidUTF8
	// CodeLockTimeout: the region's lock could not be taken in time.
	CodeLockTimeout
	// CodeConflict: a conditional write found another version.
	CodeConflict
	// CodeOutOfRange: an offset or length lies outside the region.
	CodeOutOfRange
	// CodeBadID: a region id does not follow the id grammar.
	CodeBadID
	// CodeInternal: the host failed in a way the client cannot fix.
	CodeInternal
	// CodeUnauthorized: the connection has not authenticated.
	CodeUnauthorized
	// CodeForbidden: the connection may not do this.
	CodeForbidden
	// CodeLimit: a host limit (regions, connections, watches) is reached.
	CodeLimit
	// CodeUnavailable: the host is shutting down or cannot serve now.
	CodeUnavailable
	// CodeUnknownOutcome: the request may or may not have taken effect.
	CodeUnknownOutcome
	// CodeFenced: the lock lease that the request relied on has expired or
	// been released, or the fencing token is stale; nothing was written.
	CodeFenced

	numCodes // must stay last
)

// codeNames holds the wire word of each code, indexed by Code.
var codeNames = [numCodes]string{
	CodeUnknown:        "unknown",
	CodeBadRequest:     "bad_request",
	CodeUnknownCommand: "unknown_command",
	CodeLineTooLong:    "line_too_long",
	CodeTooLarge:       "too_large",
	CodeNotFound:       "not_found",
	CodeExists:         "exists",
	CodeInvalidUTF8:    "invalid_utf8",
	CodeLockTimeout:    "lock_timeout",
	CodeConflict:       "conflict",
	CodeOutOfRange:     "out_of_range",
	CodeBadID:          "bad_id",
	CodeInternal:       "internal",
	CodeUnauthorized:   "unauthorized",
	CodeForbidden:      "forbidden",
	CodeLimit:          "limit",
	CodeUnavailable:    "unavailable",
	CodeUnknownOutcome: "unknown_outcome",
	CodeFenced:         "fenced",
}

// String returns the code's wire word, such as "not_found". A value
// outside the enum (from a newer peer, say) gives "unknown".
func (c Code) String() string {
	if c >= numCodes {
		return codeNames[CodeUnknown]
	}
	return codeNames[c]
}

// ParseCode returns the code whose wire word is s. Words are matched
// exactly (they are lowercase on the wire); a word it does not know,
// including "unknown" itself, gives CodeUnknown.
func ParseCode(s string) Code {
	for c := CodeBadRequest; c < numCodes; c++ {
		if s == codeNames[c] {
			return c
		}
	}
	return CodeUnknown
}

// parseCode is ParseCode over a byte slice, without converting it.
func parseCode(b []byte) Code {
	for c := CodeBadRequest; c < numCodes; c++ {
		if string(b) == codeNames[c] {
			return c
		}
	}
	return CodeUnknown
}

// codeKinds holds the kind of error (package shmerr) each code stands
// for, indexed by Code: how a client turns a wire word into an error that
// errors.Is matches. Several codes may share a kind.
var codeKinds = [numCodes]error{
	CodeUnknown:        shmerr.ErrInternal,
	CodeBadRequest:     shmerr.ErrProtocol,
	CodeUnknownCommand: shmerr.ErrProtocol,
	CodeLineTooLong:    shmerr.ErrTooLarge,
	CodeTooLarge:       shmerr.ErrTooLarge,
	CodeNotFound:       shmerr.ErrNotFound,
	CodeExists:         shmerr.ErrExists,
	CodeInvalidUTF8:    shmerr.ErrInvalidUTF8,
	CodeLockTimeout:    shmerr.ErrLockTimeout,
	CodeConflict:       shmerr.ErrConflict,
	CodeOutOfRange:     shmerr.ErrOutOfRange,
	CodeBadID:          shmerr.ErrBadID,
	CodeInternal:       shmerr.ErrInternal,
	CodeUnauthorized:   shmerr.ErrUnauthorized,
	CodeForbidden:      shmerr.ErrForbidden,
	CodeLimit:          shmerr.ErrLimit,
	CodeUnavailable:    shmerr.ErrUnavailable,
	CodeUnknownOutcome: shmerr.ErrUnknownOutcome,
	CodeFenced:         shmerr.ErrFenced,
}

// Err returns the kind of error the code stands for (package shmerr); a
// code outside the enum gives shmerr.ErrInternal.
func (c Code) Err() error {
	if c >= numCodes {
		return shmerr.ErrInternal
	}
	return codeKinds[c]
}

// kindCodes maps kinds of error to the code sent for them, in the order
// CodeOf tries them: an error that matches two kinds (a corrupt length
// field is both the region's ErrCorrupt and ErrOutOfRange) is sent as the
// first.
var kindCodes = [...]struct {
	kind error
	code Code
}{
	{shmerr.ErrConflict, CodeConflict},
	{shmerr.ErrTooLarge, CodeTooLarge},
	{shmerr.ErrInvalidUTF8, CodeInvalidUTF8},
	{shmerr.ErrLockTimeout, CodeLockTimeout},
	{shmerr.ErrOutOfRange, CodeOutOfRange},
	{shmerr.ErrNotFound, CodeNotFound},
	{shmerr.ErrExists, CodeExists},
	{shmerr.ErrBadID, CodeBadID},
	{shmerr.ErrForbidden, CodeForbidden},
	{shmerr.ErrUnauthorized, CodeUnauthorized},
	{shmerr.ErrLimit, CodeLimit},
	{shmerr.ErrUnavailable, CodeUnavailable},
	{shmerr.ErrUnknownOutcome, CodeUnknownOutcome},
	{shmerr.ErrFenced, CodeFenced},
	{shmerr.ErrProtocol, CodeBadRequest},
	{shmerr.ErrInternal, CodeInternal},
}

// CodeOf returns the code a host sends for err: a *Error's own code, else
// the code of the first kind (package shmerr) err matches, else
// CodeInternal. It is the one place an error becomes a wire word.
func CodeOf(err error) Code {
	var pe *Error
	if errors.As(err, &pe) && pe.Code != CodeUnknown && pe.Code < numCodes {
		return pe.Code
	}
	for _, kc := range kindCodes {
		if errors.Is(err, kc.kind) {
			return kc.code
		}
	}
	return CodeInternal
}

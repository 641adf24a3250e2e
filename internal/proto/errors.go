package proto

import (
	"errors"
	"strconv"

	"github.com/shmgr/shmgr/internal/shmerr"
)

// Sentinel errors. A *Error wraps the one that matches its Code, so callers
// can test with errors.Is.
var (
	// ErrMalformed reports a request or reply that breaks the syntax
	// (CodeBadRequest).
	ErrMalformed = errors.New("proto: malformed message")
	// ErrUnknownCommand reports a request verb that no command has
	// (CodeUnknownCommand).
	ErrUnknownCommand = errors.New("proto: unknown command")
	// ErrLineTooLong reports a command or reply line over the limit
	// (CodeLineTooLong).
	ErrLineTooLong = errors.New("proto: line too long")
	// ErrTooLarge reports a payload over the limit (CodeTooLarge). It is
	// the kind every layer uses.
	ErrTooLarge = shmerr.ErrTooLarge
	// ErrBadID reports a region id outside the id grammar (CodeBadID). It
	// is the kind every layer uses.
	ErrBadID = shmerr.ErrBadID
	// ErrBadMeta reports a metadata line that ParseMeta rejects.
	ErrBadMeta = errors.New("proto: bad metadata")
)

// snippetMax bounds Error.Snippet, so a hostile peer cannot make error
// messages (and logs) large.
const snippetMax = 32

// Error is a protocol error: what was wrong and where. It is returned as
// *Error by Parser.Next and ReplyParser.Next; its Unwrap gives the sentinel
// for its Code (ErrMalformed, ErrUnknownCommand, ErrLineTooLong,
// ErrTooLarge or ErrBadID) and its kind (Code.Err), so errors.Is works.
//
// A host answers a bad request with AppendError(dst, e.Code, e.Error()).
type Error struct {
	// Code is the code to send on the wire.
	Code Code
	// Msg says what was wrong, in lowercase without trailing punctuation.
	Msg string
	// Offset is the position of the offending byte, counted from the start
	// of the request or reply (the start of the buffer given to Next).
	Offset int
	// Snippet is a copy of at most 32 bytes of the input at Offset.
	Snippet string
}

// Error returns the message, the offset and the snippet quoted with %q
// (so it is always one printable line), for example
// `unknown command at offset 0: "FOO"`.
func (e *Error) Error() string {
	b := make([]byte, 0, len(e.Msg)+24+len(e.Snippet)*2)
	b = append(b, e.Msg...)
	b = append(b, " at offset "...)
	b = strconv.AppendInt(b, int64(e.Offset), 10)
	if e.Snippet != "" {
		b = append(b, ": "...)
		b = strconv.AppendQuote(b, e.Snippet)
	}
	return string(b)
}

// Unwrap returns the sentinel error for e.Code, or nil if it has none.
func (e *Error) Unwrap() error {
	switch e.Code {
	case CodeBadRequest:
		return ErrMalformed
	case CodeUnknownCommand:
		return ErrUnknownCommand
	case CodeLineTooLong:
		return ErrLineTooLong
	case CodeTooLarge:
		return ErrTooLarge
	case CodeBadID:
		return ErrBadID
	}
	return nil
}

// Is reports whether target is the kind of error (package shmerr) that
// e.Code stands for, so that errors.Is(err, shmerr.ErrProtocol) matches a
// malformed request.
func (e *Error) Is(target error) bool { return target == e.Code.Err() }

// newError builds an *Error whose snippet is b[lo:hi], cut to snippetMax
// bytes. It is only called on the error path, where allocating is fine.
func newError(code Code, msg string, b []byte, lo, hi int) *Error {
	hi = min(hi, len(b), lo+snippetMax)
	snip := ""
	if lo < hi {
		snip = string(b[lo:hi])
	}
	return &Error{Code: code, Msg: msg, Offset: lo, Snippet: snip}
}

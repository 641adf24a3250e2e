package client

import (
	"errors"
	"testing"

	"github.com/shmgr/shmgr/internal/proto"
)

// TestReplyErrorConflict checks how replyError reads a conflict: from the
// reply's fields (proto.Reply.Conflict) when the host sends them, and from
// the message, as before, when an older host does not.
func TestReplyErrorConflict(t *testing.T) {
	tests := []struct {
		name string
		line string
		// want is the ConflictError, or nil for a plain *Error.
		want *ConflictError
	}{
		{name: "fields", line: "ERROR conflict 7 expected=5 version conflict\n", want: &ConflictError{Current: 7, Expected: 5}},
		// The fields are what count, whatever the message says.
		{name: "fields and an old message", line: "ERROR conflict 9 expected=4 version conflict: expected version 3\n", want: &ConflictError{Current: 9, Expected: 4}},
		{name: "fields, no message", line: "ERROR conflict 12 expected=0\n", want: &ConflictError{Current: 12, Expected: 0}},
		// A host older than the expected= field: the current version
		// first, the expected one in the message.
		{name: "older host", line: "ERROR conflict 7 version conflict: expected version 5, region is at 7\n", want: &ConflictError{Current: 7, Expected: 5}},
		{name: "older host without expected", line: "ERROR conflict 7 version conflict\n", want: &ConflictError{Current: 7}},
		// No version at all: the host's message, as a plain error.
		{name: "no fields", line: "ERROR conflict version conflict\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rp := proto.NewReplyParser(0, 0)
			rep, n, err := rp.Next([]byte(tt.line))
			if err != nil || n != len(tt.line) || rep.Kind != proto.ReplyError {
				t.Fatalf("parsing %q: %v, %d bytes, kind %v", tt.line, err, n, rep.Kind)
			}
			got := replyError(rep)
			if !errors.Is(got, ErrConflict) {
				t.Errorf("replyError(%q) = %v, want errors.Is(err, ErrConflict)", tt.line, got)
			}
			var ce *ConflictError
			isCE := errors.As(got, &ce)
			switch {
			case tt.want == nil && isCE:
				t.Errorf("replyError(%q) = %#v, want a plain *Error", tt.line, ce)
			case tt.want != nil && !isCE:
				t.Errorf("replyError(%q) = %#v, want a *ConflictError", tt.line, got)
			case tt.want != nil && *ce != *tt.want:
				t.Errorf("replyError(%q) = %+v, want %+v", tt.line, *ce, *tt.want)
			}
		})
	}
}

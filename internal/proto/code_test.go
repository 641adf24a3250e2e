package proto

import (
	"errors"
	"fmt"
	"testing"

	"github.com/shmgr/shmgr/internal/shmerr"
)

// TestCodeKindsRoundTrip checks the two tables against each other: every
// code's kind is sent as a code of the same kind, so a client that turns a
// word into an error and a host that turns it back agree.
func TestCodeKindsRoundTrip(t *testing.T) {
	for c := CodeUnknown; c < numCodes; c++ {
		kind := c.Err()
		if kind == nil {
			t.Errorf("%v.Err() = nil", c)
			continue
		}
		if back := CodeOf(fmt.Errorf("context: %w", kind)); back.Err() != kind {
			t.Errorf("%v: kind %q is sent as %v, whose kind is %q", c, kind, back, back.Err())
		}
	}
	if got := Code(numCodes + 3).Err(); got != shmerr.ErrInternal {
		t.Errorf("a code outside the enum: Err() = %v, want ErrInternal", got)
	}
}

// TestCodeOf checks the code sent for errors of each shape: a *Error's own
// code wins, a wrapped kind is found, an error of two kinds is sent as the
// first in kindCodes, and anything else is internal.
func TestCodeOf(t *testing.T) {
	corrupt := shmerr.New(shmerr.ErrOutOfRange, "region content is corrupt")
	closed := shmerr.New(shmerr.ErrUnavailable, "host closed")
	tests := []struct {
		name string
		err  error
		want Code
	}{
		{"parse error", &Error{Code: CodeLineTooLong, Msg: "line too long"}, CodeLineTooLong},
		{"wrapped parse error", fmt.Errorf("request: %w", &Error{Code: CodeUnknownCommand}), CodeUnknownCommand},
		{"kind", shmerr.ErrNotFound, CodeNotFound},
		{"wrapped kind", fmt.Errorf("region %q: %w", "x", shmerr.ErrExists), CodeExists},
		{"specific error of a kind", fmt.Errorf("create: %w", closed), CodeUnavailable},
		{"two kinds, conflict first", errors.Join(corrupt, shmerr.ErrConflict), CodeConflict},
		{"corrupt is out of range", corrupt, CodeOutOfRange},
		{"protocol", shmerr.ErrProtocol, CodeBadRequest},
		{"anything else", errors.New("disk on fire"), CodeInternal},
		{"nil-code parse error", &Error{}, CodeInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CodeOf(tt.err); got != tt.want {
				t.Errorf("CodeOf(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// TestParseErrorMatchesKind: a parse error matches its own sentinel and
// the kind of its code.
func TestParseErrorMatchesKind(t *testing.T) {
	e := &Error{Code: CodeBadRequest, Msg: "malformed length"}
	if !errors.Is(e, ErrMalformed) || !errors.Is(e, shmerr.ErrProtocol) {
		t.Errorf("a bad_request *Error: Is(ErrMalformed) = %v, Is(shmerr.ErrProtocol) = %v, want both", errors.Is(e, ErrMalformed), errors.Is(e, shmerr.ErrProtocol))
	}
	if errors.Is(e, shmerr.ErrTooLarge) {
		t.Errorf("a bad_request *Error matches ErrTooLarge")
	}
}

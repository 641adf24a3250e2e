package shmerr_test

import (
	"errors"
	"testing"

	"github.com/shmgr/shmgr/internal/shmerr"
)

// TestKindsDistinct checks that no kind matches another: a table keyed by
// kind (proto.CodeOf) relies on it.
func TestKindsDistinct(t *testing.T) {
	kinds := []error{
		shmerr.ErrNotFound, shmerr.ErrExists, shmerr.ErrBadID, shmerr.ErrTooLarge,
		shmerr.ErrInvalidUTF8, shmerr.ErrLockTimeout, shmerr.ErrConflict, shmerr.ErrOutOfRange,
		shmerr.ErrForbidden, shmerr.ErrUnauthorized, shmerr.ErrLimit, shmerr.ErrUnavailable,
		shmerr.ErrProtocol, shmerr.ErrUnknownOutcome, shmerr.ErrFenced, shmerr.ErrInternal,
	}
	msgs := map[string]bool{}
	for i, a := range kinds {
		if msgs[a.Error()] {
			t.Errorf("two kinds share the message %q", a.Error())
		}
		msgs[a.Error()] = true
		for j, b := range kinds {
			if i != j && errors.Is(a, b) {
				t.Errorf("%q matches %q", a, b)
			}
		}
	}
}

// TestNew checks that an error made by New keeps its own message and
// matches itself and its kind, and no other kind.
func TestNew(t *testing.T) {
	closed := shmerr.New(shmerr.ErrUnavailable, "host closed")
	other := shmerr.New(shmerr.ErrUnavailable, "host closed")
	if closed.Error() != "host closed" {
		t.Errorf("Error() = %q, want %q", closed.Error(), "host closed")
	}
	if !errors.Is(closed, shmerr.ErrUnavailable) || !errors.Is(closed, closed) {
		t.Errorf("errors.Is(closed, its kind / itself) = false")
	}
	if errors.Is(closed, other) || errors.Is(closed, shmerr.ErrLimit) {
		t.Errorf("closed matches another error of its kind, or another kind")
	}
}

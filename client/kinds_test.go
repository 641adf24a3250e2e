package client_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/shmerr"
)

// TestSentinelsAreKinds checks that the client's sentinels are the kinds
// every layer shares (package shmerr): an error made by the region, the
// host or the protocol matches the client's sentinel of the same meaning,
// and the client's sentinel matches the kind, in both directions.
func TestSentinelsAreKinds(t *testing.T) {
	tests := []struct {
		name           string
		sentinel, kind error
	}{
		{"ErrNotFound", client.ErrNotFound, shmerr.ErrNotFound},
		{"ErrExists", client.ErrExists, shmerr.ErrExists},
		{"ErrTooLarge", client.ErrTooLarge, shmerr.ErrTooLarge},
		{"ErrInvalidUTF8", client.ErrInvalidUTF8, shmerr.ErrInvalidUTF8},
		{"ErrLockTimeout", client.ErrLockTimeout, shmerr.ErrLockTimeout},
		{"ErrConflict", client.ErrConflict, shmerr.ErrConflict},
		{"ErrOutOfRange", client.ErrOutOfRange, shmerr.ErrOutOfRange},
		{"ErrBadID", client.ErrBadID, shmerr.ErrBadID},
		{"ErrForbidden", client.ErrForbidden, shmerr.ErrForbidden},
		{"ErrUnauthorized", client.ErrUnauthorized, shmerr.ErrUnauthorized},
		{"ErrLimit", client.ErrLimit, shmerr.ErrLimit},
		{"ErrUnavailable", client.ErrUnavailable, shmerr.ErrUnavailable},
		{"ErrProtocol", client.ErrProtocol, shmerr.ErrProtocol},
		{"ErrHost", client.ErrHost, shmerr.ErrInternal},
		{"ErrUnknownOutcome", client.ErrUnknownOutcome, shmerr.ErrUnknownOutcome},
		{"ErrFenced", client.ErrFenced, shmerr.ErrFenced},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.sentinel != tt.kind {
				t.Errorf("client.%s = %p (%v), want the kind shmerr %p (%v)", tt.name, tt.sentinel, tt.sentinel, tt.kind, tt.kind)
			}
			// A layer's own case of the kind (as host.ErrClosed is of
			// ErrUnavailable), wrapped with context, matches the sentinel.
			specific := fmt.Errorf("somewhere: %w", shmerr.New(tt.kind, "a specific case"))
			if !errors.Is(specific, tt.sentinel) {
				t.Errorf("errors.Is(%v, client.%s) = false, want true", specific, tt.name)
			}
		})
	}
	// The client's own errors are no kind of the host's.
	for _, own := range []error{client.ErrClosed, client.ErrNotLocal} {
		for _, tt := range tests {
			if errors.Is(own, tt.kind) {
				t.Errorf("errors.Is(%v, %v) = true, want the client's own error to be of no host kind", own, tt.kind)
			}
		}
	}
}

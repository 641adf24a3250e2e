package server

import (
	"fmt"
	"testing"

	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/region"
)

// TestRESPFail: an error of another layer reads on the RESP listener
// with the code proto.CodeOf gives it (the code its request is counted
// as) and that code's prefix.
func TestRESPFail(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		code proto.Code
		want string
	}{
		{"not found", fmt.Errorf("region %q: %w", "k", host.ErrNotFound), proto.CodeNotFound, "-ERR region \"k\": region not found\r\n"},
		{"utf8", region.ErrInvalidUTF8, proto.CodeInvalidUTF8, "-ERR value is not valid UTF-8 for key 'k': content is not valid UTF-8 (its region has the utf8 layout; keep binary values in a raw region: shmgr create <id> --layout raw)\r\n"},
		{"too large", region.ErrTooLarge, proto.CodeTooLarge, "-ERR value does not fit the region of key 'k': content too large (create a larger region: shmgr create <id> --size N)\r\n"},
		{"conflict", &region.ConflictError{Expected: 1, Current: 2}, proto.CodeConflict, "-ERR conflict: 2 version conflict: expected version 1, region is at version 2\r\n"},
		{"lock timeout", &region.LockTimeoutError{PID: 0}, proto.CodeLockTimeout, "-ERR lock timeout after 0s: the lock flag at offset 0 is held by a program outside shmgr\r\n"},
		{"closed", host.ErrClosed, proto.CodeUnavailable, "-ERR host is shutting down\r\n"},
		{"limit", host.ErrLimit, proto.CodeLimit, "-ERR host limit reached\r\n"},
		{"forbidden", host.ErrForbidden, proto.CodeForbidden, "-NOPERM operation not allowed\r\n"},
		{"unauthorized", errBadToken, proto.CodeUnauthorized, "-NOAUTH " + errBadToken.Error() + "\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &conn{resp: &respConn{}}
			c.respFail([]byte("k"), tt.err)
			if string(c.out) != tt.want || c.code != tt.code {
				t.Errorf("respFail = %q counted as %v, want %q as %v", c.out, c.code, tt.want, tt.code)
			}
		})
	}
}

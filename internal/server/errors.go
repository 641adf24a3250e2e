package server

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/region"
)

// fail answers with the error's code and message.
func (c *conn) fail(err error) {
	code, msg := classify(err)
	c.out = proto.AppendError(c.out, code, msg)
}

// classify maps an error to its wire code and message. A conflict's
// message starts with the region's current version, so clients can read it.
func classify(err error) (proto.Code, string) {
	var ce *region.ConflictError
	switch {
	case errors.As(err, &ce):
		return proto.CodeConflict, strconv.FormatUint(ce.Current, 10) + " " + ce.Error()
	case errors.Is(err, region.ErrTooLarge):
		return proto.CodeTooLarge, err.Error()
	case errors.Is(err, region.ErrInvalidUTF8):
		return proto.CodeInvalidUTF8, err.Error()
	case errors.Is(err, region.ErrLockTimeout):
		return proto.CodeLockTimeout, err.Error()
	case errors.Is(err, region.ErrOutOfRange):
		return proto.CodeOutOfRange, err.Error()
	case errors.Is(err, region.ErrBadSize):
		return proto.CodeBadRequest, err.Error()
	case errors.Is(err, host.ErrNotFound):
		return proto.CodeNotFound, err.Error()
	case errors.Is(err, host.ErrExists):
		return proto.CodeExists, err.Error()
	case errors.Is(err, host.ErrBadID):
		return proto.CodeBadID, err.Error()
	case errors.Is(err, host.ErrForbidden):
		return proto.CodeForbidden, err.Error()
	case errors.Is(err, host.ErrNoSpace), errors.Is(err, host.ErrLimit):
		return proto.CodeLimit, err.Error()
	case errors.Is(err, host.ErrClosed):
		return proto.CodeUnavailable, "host is shutting down"
	case errors.Is(err, host.ErrVanished):
		return proto.CodeUnavailable, err.Error()
	case errors.Is(err, region.ErrFenced):
		return proto.CodeFenced, err.Error()
	case errors.Is(err, region.ErrStopped):
		return proto.CodeUnavailable, "host is shutting down"
	}
	return proto.CodeInternal, fmt.Sprint(err)
}

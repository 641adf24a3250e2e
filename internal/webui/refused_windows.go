package webui

import (
	"errors"
	"syscall"
)

// wsaeconnrefused is Windows' "connection refused" (WSAECONNREFUSED, "No
// connection could be made because the target machine actively refused
// it"): the error a dial there returns, which syscall.ECONNREFUSED (an
// invented value on Windows) does not match.
const wsaeconnrefused syscall.Errno = 10061

// isRefusedErrno reports whether err is WSAECONNREFUSED.
func isRefusedErrno(err error) bool { return errors.Is(err, wsaeconnrefused) }

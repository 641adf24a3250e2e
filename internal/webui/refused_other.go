//go:build !windows

package webui

// isRefusedErrno reports whether err is the platform's own "connection
// refused" where syscall.ECONNREFUSED does not match it: nowhere but on
// Windows (see refused_windows.go).
func isRefusedErrno(error) bool { return false }

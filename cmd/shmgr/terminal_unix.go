//go:build unix

package main

import "golang.org/x/sys/unix"

// isTerminalFd reports whether fd is a terminal: only a terminal has a
// window size (a character device such as /dev/null does not).
func isTerminalFd(fd uintptr) bool {
	_, err := unix.IoctlGetWinsize(int(fd), unix.TIOCGWINSZ)
	return err == nil
}

//go:build linux

package main

// This file reads a process's CPU time and memory, and the machine's load,
// from /proc.

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// cpuTime returns the user+system CPU time process pid has used.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	u, s, err := parseStat(string(b))
	if err != nil {
		return 0, err
	}
	return time.Duration(u+s) * clockTick, nil
}

// parseStat returns utime and stime (fields 14 and 15, in clock ticks) of
// a /proc/<pid>/stat line. The command name (field 2) may hold spaces and
// parentheses, so fields are counted from the last ')'.
func parseStat(s string) (utime, stime uint64, err error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("stat: no command name in %q", s[:min(len(s), 64)])
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("stat: %d fields after the command name, want at least 13", len(f))
	}
	if utime, err = strconv.ParseUint(f[11], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("stat: utime: %w", err)
	}
	if stime, err = strconv.ParseUint(f[12], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("stat: stime: %w", err)
	}
	return utime, stime, nil
}

// rss returns the resident set size of process pid in bytes.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	kb, err := statusKB(string(b), "VmRSS")
	return kb << 10, err
}

// statusKB returns the value of a "Key:   123 kB" line of /proc/<pid>/status.
func statusKB(s, key string) (int64, error) {
	v, ok := bannerField(s+"\n", key+":")
	if !ok {
		return 0, fmt.Errorf("status: no %s", key)
	}
	v = strings.TrimSpace(strings.TrimSuffix(v, "kB"))
	return strconv.ParseInt(v, 10, 64)
}

// loadAvg returns the 1-, 5- and 15-minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

//go:build linux

package main

// This file describes the machine a comparison ran on, for the report.

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// machine describes where and how the comparison ran.
type machine struct {
	date, cpu, kernel, goVersion, redis, shmgr, commit string
	ncpu                                               int
	loadStart, loadEnd                                 string
	pinned                                             bool
	nofile                                             uint64
	idleWanted                                         int
	took                                               time.Duration
}

func describeMachine(ctx context.Context, root string) machine {
	m := machine{
		date:      time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		goVersion: runtime.Version(),
		ncpu:      runtime.NumCPU(),
		loadStart: loadAvg(),
		cpu:       "unknown CPU",
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		if v, ok := bannerField(string(b), "model name"); ok {
			m.cpu = strings.TrimSpace(strings.TrimPrefix(v, ":"))
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.CommandContext(ctx, "git", "-C", root, "describe", "--always", "--dirty").Output(); err == nil {
		m.commit = strings.TrimSpace(string(out))
	}
	return m
}

//go:build linux

package main

// This file readies the machine before anything is measured: the Debian
// packages the comparison needs (installed by install.sh) and the file
// limit the servers inherit.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
)

// ensurePackages installs redis-server and gnuplot-nox from Debian when
// their commands are missing (apt-get update at most once).
func ensurePackages(ctx context.Context, noInstall bool) error {
	var missing []string
	if _, err := exec.LookPath("redis-server"); err != nil {
		missing = append(missing, "redis-server")
	}
	if _, err := exec.LookPath("gnuplot"); err != nil {
		missing = append(missing, "gnuplot-nox")
	}
	if len(missing) == 0 {
		return nil
	}
	if noInstall || os.Geteuid() != 0 {
		if slices.Contains(missing, "redis-server") {
			return fmt.Errorf("redis-server is missing: install it (apt-get install redis-server) or run as root without --no-install")
		}
		return nil // no plots; said in the doc
	}
	apt := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		return cmd.Run()
	}
	fmt.Fprintf(os.Stderr, "installing %s with apt-get\n", strings.Join(missing, " "))
	if err := apt("update"); err != nil {
		return fmt.Errorf("apt-get update: %w", err)
	}
	for _, pkg := range missing {
		args := []string{"-o", "DPkg::Lock::Timeout=120", "install", "-y"}
		if pkg == "gnuplot-nox" {
			// Its recommends pull in ImageMagick and Ghostscript; the
			// PNG terminals need none of them.
			args = append(args, "--no-install-recommends")
		}
		if err := apt(append(args, pkg)...); err != nil {
			if pkg == "redis-server" {
				return fmt.Errorf("apt-get install redis-server: %w", err)
			}
			fmt.Fprintf(os.Stderr, "apt-get install %s: %v (no plots)\n", pkg, err)
		}
	}
	return nil
}

// raiseNoFile raises this process's soft RLIMIT_NOFILE to its hard limit
// (the servers it starts inherit it) and returns the limit.
func raiseNoFile() uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 1024
	}
	if r.Cur < r.Max {
		r.Cur = r.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
			syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r)
		}
	}
	return r.Cur
}

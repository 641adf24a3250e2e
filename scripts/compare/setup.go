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
	"path/filepath"
	"syscall"
)

// ensurePackages runs install.sh (in this directory of the module at
// root) when redis-server, gnuplot or etcd is missing, unless noInstall is set
// or this process is not root; then only a missing redis-server is an
// error, a missing gnuplot means no plots and a missing etcd no etcd
// columns in the cluster table (each said in the doc).
func ensurePackages(ctx context.Context, root string, noInstall bool) error {
	_, redisErr := exec.LookPath("redis-server")
	_, gnuplotErr := exec.LookPath("gnuplot")
	_, etcdErr := exec.LookPath("etcd")
	if redisErr == nil && gnuplotErr == nil && etcdErr == nil {
		return nil
	}
	if noInstall || os.Geteuid() != 0 {
		if redisErr != nil {
			return fmt.Errorf("redis-server is missing: install it (as root: scripts/compare/install.sh, or apt-get install redis-server) or run as root without --no-install")
		}
		return nil
	}
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", "compare", "install.sh"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("scripts/compare/install.sh: %w", err)
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

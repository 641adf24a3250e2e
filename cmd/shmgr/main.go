// Command shmgr is the cross-network shared memory manager: it runs a host
// that owns named shared-memory regions, and it reads, writes and manages
// them from scripts, on this machine or across the network.
//
// Run "shmgr --help" for the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

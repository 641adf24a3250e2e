// Command gohelper is the Go side of the Python client's tests: a writer
// running flat out on a region (the torn-read checks), and a loop of
// conditional increments (writes racing a Python client's). It uses only
// the public Go client.
//
//	gohelper writer -host ADDR -id ID [-mode local] [-duration 3s]
//	gohelper incr   -host ADDR -id ID -n 200 [-mode auto]
//
// writer fills the whole region with one 8-byte word repeated, a new one
// per write (a little-endian counter; for a utf8 region its last eight
// decimal digits), so a reader that sees two different words in one copy
// has seen a torn write. It prints "ready" once its
// first write has committed, and at the end one JSON object.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/shmgr/shmgr/client"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gohelper writer|incr -host ADDR -id ID ...")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "gohelper:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cmd string, args []string) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	host := fs.String("host", "", "host address")
	id := fs.String("id", "", "region shm_id")
	mode := fs.String("mode", "auto", "auto, local or tcp")
	d := fs.Duration("duration", 3*time.Second, "writer: how long to write")
	n := fs.Int("n", 100, "incr: how many increments to make")
	if err := fs.Parse(args); err != nil {
		return err
	}
	m, err := client.ParseMode(*mode)
	if err != nil {
		return err
	}
	o := client.DefaultOptions()
	o.Mode = m
	r, err := client.Dial(ctx, *host, *id, o)
	if err != nil {
		return err
	}
	defer r.Close()
	switch cmd {
	case "writer":
		return writer(ctx, r, *d)
	case "incr":
		return incr(ctx, r, *n)
	}
	return fmt.Errorf("unknown command %q: use writer or incr", cmd)
}

// writer writes flat out until d passes or the process is told to stop.
func writer(ctx context.Context, r *client.Region, d time.Duration) error {
	buf := make([]byte, r.MaxContent()/8*8)
	utf8 := r.Info().Layout == "utf8"
	end := time.Now().Add(d)
	var writes uint64
	for i := uint64(1); ctx.Err() == nil && time.Now().Before(end); i++ {
		word := binary.LittleEndian.AppendUint64(nil, i)
		if utf8 {
			word = fmt.Appendf(nil, "%08d", i%1e8)
		}
		for j := 0; j < len(buf); j += 8 {
			copy(buf[j:], word)
		}
		if _, err := r.Write(ctx, buf); err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
		if writes++; writes == 1 {
			fmt.Println("ready")
		}
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"writes": writes, "mode": r.Mode().String(), "bytes": len(buf)})
}

// incr adds one to the decimal counter in the region n times, each with a
// conditional write from the version it read, retrying on conflict.
func incr(ctx context.Context, r *client.Region, n int) error {
	conflicts := 0
	for done := 0; done < n; {
		b, v, err := r.ReadVersion(ctx)
		if err != nil {
			return err
		}
		cur, err := strconv.Atoi(string(b))
		if err != nil {
			return fmt.Errorf("region holds %q, not a counter: %w", b, err)
		}
		_, err = r.WriteIf(ctx, []byte(strconv.Itoa(cur+1)), v)
		var ce *client.ConflictError
		switch {
		case errors.As(err, &ce):
			conflicts++
		case err != nil:
			return err
		default:
			done++
		}
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"increments": n, "conflicts": conflicts, "mode": r.Mode().String()})
}

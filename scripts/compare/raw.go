//go:build linux

package main

// This file is the raw one-way TCP server (compare --serve-raw) and its
// client: the ceiling for large transfers.

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/shmgr/shmgr/internal/bench"
)

func rawTest(op byte) string {
	if op == 'W' {
		return "write"
	}
	return "read"
}

// serveRaw serves the raw transfer protocol: a 9-byte request, 'R' or 'W'
// and a little-endian uint64 n. 'R': the server sends n bytes. 'W': the
// client sends n bytes and the server answers with one byte. No parsing,
// no copies beyond the socket's: the ceiling of a remote read or write of
// n bytes over TCP here.
func serveRaw(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("raw server listening on %s\n", ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var (
		mu    sync.Mutex // protects conns
		conns = map[net.Conn]bool{}
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	for {
		nc, err := ln.Accept()
		if err != nil {
			break
		}
		mu.Lock()
		conns[nc] = true
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			rawConn(nc)
			mu.Lock()
			delete(conns, nc)
			mu.Unlock()
			nc.Close()
		}()
	}
	stop()
	wg.Wait()
	return nil
}

func rawConn(nc net.Conn) {
	var hdr [9]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(nc, hdr[:]); err != nil {
			return
		}
		n := binary.LittleEndian.Uint64(hdr[1:])
		if n > 1<<30 {
			return
		}
		if uint64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		b := buf[:n]
		var err error
		switch hdr[0] {
		case 'R':
			_, err = nc.Write(b)
		case 'W':
			if _, err = io.ReadFull(nc, b); err == nil {
				_, err = nc.Write([]byte{'k'})
			}
		default:
			return
		}
		if err != nil {
			return
		}
	}
}

// runRaw reads ('R') or writes ('W') size bytes over one connection to the
// raw server, one transfer at a time, for dur.
func runRaw(ctx context.Context, addr string, op byte, size int, dur time.Duration) (bench.Result, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return bench.Result{}, err
	}
	defer nc.Close()
	hdr := make([]byte, 9)
	hdr[0] = op
	binary.LittleEndian.PutUint64(hdr[1:], uint64(size))
	data := make([]byte, size)
	ack := make([]byte, 1)
	transfer := func() error {
		nc.SetDeadline(time.Now().Add(30 * time.Second))
		if op == 'R' {
			if _, err := nc.Write(hdr); err != nil {
				return err
			}
			_, err := io.ReadFull(nc, data)
			return err
		}
		bufs := net.Buffers{hdr, data}
		if _, err := bufs.WriteTo(nc); err != nil {
			return err
		}
		_, err := io.ReadFull(nc, ack)
		return err
	}
	// One untimed transfer first: both sides' buffers are then in place,
	// which favours the ceiling (the load generator's first request pays
	// for them), so the comparison errs against shmgr.
	if err := transfer(); err != nil {
		return bench.Result{}, err
	}
	var h bench.Hist
	start := time.Now()
	deadline := start.Add(dur)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		t0 := time.Now()
		if err := transfer(); err != nil {
			return bench.Result{}, err
		}
		h.Add(time.Since(t0))
	}
	el := time.Since(start)
	return bench.Result{
		Test: rawTest(op), Protocol: "raw", Conns: 1, Pipeline: 1, Size: size,
		Requests: h.Count(), Seconds: el.Seconds(), OpsPerSec: float64(h.Count()) / el.Seconds(),
		P50us: float64(h.Quantile(0.5)) / 1e3, P99us: float64(h.Quantile(0.99)) / 1e3, MaxUs: float64(h.Max()) / 1e3,
	}, ctx.Err()
}

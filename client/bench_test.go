package client_test

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmgr/shmgr/client"
)

// benchRegions numbers the regions benchmarks create on the TestMain
// host, so each run gets a fresh one.
var benchRegions atomic.Int64

// benchRegion creates a raw region of size bytes on the TestMain host,
// opens it in mode and removes it when the benchmark ends.
func benchRegion(b *testing.B, mode client.Mode, size int64) *client.Region {
	b.Helper()
	c := connect(b, hostAddr, mode)
	id := fmt.Sprintf("bench-%d", benchRegions.Add(1))
	in, err := c.Create(b.Context(), id, client.CreateOptions{Size: size, Layout: "raw"})
	if err != nil {
		b.Fatalf("Create(%q): %v", id, err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Delete(ctx, id); err != nil {
			b.Errorf("cleanup: Delete(%q): %v", id, err)
		}
	})
	r := dial(b, hostAddr, in.ShmID, mode)
	if _, err := r.Write(b.Context(), bytes.Repeat([]byte("x"), int(size))); err != nil {
		b.Fatal(err)
	}
	return r
}

func benchRead(b *testing.B, mode client.Mode) {
	const size = 4096
	r := benchRegion(b, mode, size)
	ctx := b.Context()
	buf := make([]byte, 0, size)
	b.ReportAllocs()
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		var err error
		buf, _, err = r.AppendRead(ctx, buf[:0])
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if len(buf) != size {
		b.Fatalf("AppendRead gave %d bytes, want %d", len(buf), size)
	}
}

func benchWrite(b *testing.B, mode client.Mode) {
	const size = 4096
	r := benchRegion(b, mode, size)
	ctx := b.Context()
	p := bytes.Repeat([]byte("y"), size)
	b.ReportAllocs()
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		if _, err := r.Write(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLocalRead4K(b *testing.B)  { benchRead(b, client.ModeLocal) }
func BenchmarkLocalWrite4K(b *testing.B) { benchWrite(b, client.ModeLocal) }
func BenchmarkTCPRead4K(b *testing.B)    { benchRead(b, client.ModeTCP) }
func BenchmarkTCPWrite4K(b *testing.B)   { benchWrite(b, client.ModeTCP) }

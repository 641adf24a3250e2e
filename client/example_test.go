package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strconv"

	"github.com/shmgr/shmgr/client"
)

// Dial the host's default region, write to it and read it back. On the
// host's own machine the region is mapped directly; elsewhere the same
// calls go over TCP.
func ExampleDial() {
	ctx := context.Background()
	r, err := client.Dial(ctx, hostAddr, "", client.DefaultOptions())
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()

	if _, err := r.Write(ctx, []byte("hello from shmgr")); err != nil {
		log.Fatal(err)
	}
	b, err := r.Read(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %s\n", r.ID(), b)
	// Output: default: hello from shmgr
}

// Create a raw region (the whole object is data, no length field) and
// use it as a byte array with WriteAt and ReadAt.
func ExampleConn_Create() {
	ctx := context.Background()
	c, err := client.Connect(ctx, hostAddr, client.DefaultOptions())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	info, err := c.Create(ctx, "example-bytes", client.CreateOptions{Size: 16, Layout: "raw"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Delete(ctx, "example-bytes")
	fmt.Printf("created %s: %d bytes, %s\n", info.ShmID, info.Size, info.Layout)

	r, err := c.Open(ctx, "example-bytes")
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	if _, err := r.WriteAt(ctx, 4, []byte("shmgr")); err != nil {
		log.Fatal(err)
	}
	b, _, err := r.ReadAt(ctx, 4, 5)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("bytes 4-8: %s\n", b)
	// Output:
	// created example-bytes: 16 bytes, raw
	// bytes 4-8: shmgr
}

// Update reads, changes and writes the content as one atomic step, so
// concurrent increments from many processes are never lost.
func ExampleRegion_Update() {
	ctx := context.Background()
	c, err := client.Connect(ctx, hostAddr, client.DefaultOptions())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Create(ctx, "example-visits", client.CreateOptions{Size: 64}); err != nil {
		log.Fatal(err)
	}
	defer c.Delete(ctx, "example-visits")

	r, err := c.Open(ctx, "example-visits")
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	increment := func(cur []byte) ([]byte, error) {
		n := 0
		if len(cur) > 0 {
			var err error
			if n, err = strconv.Atoi(string(cur)); err != nil {
				return nil, err // nothing is written
			}
		}
		return strconv.AppendInt(nil, int64(n+1), 10), nil
	}
	for range 3 {
		if _, err := r.Update(ctx, increment); err != nil {
			log.Fatal(err)
		}
	}
	b, err := r.Read(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("visits: %s\n", b)
	// Output: visits: 3
}

// WriteIf writes only if the region is still at the version the caller
// read; otherwise it reports the version it found, and the caller can
// read again and retry.
func ExampleRegion_WriteIf() {
	ctx := context.Background()
	c, err := client.Connect(ctx, hostAddr, client.DefaultOptions())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Create(ctx, "example-config", client.CreateOptions{}); err != nil {
		log.Fatal(err)
	}
	defer c.Delete(ctx, "example-config")

	r, err := c.Open(ctx, "example-config")
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	_, v, err := r.ReadVersion(ctx)
	if err != nil {
		log.Fatal(err)
	}

	nv, err := r.WriteIf(ctx, []byte("color=blue"), v)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("wrote version", nv)

	// A second writer still holding version v loses.
	_, err = r.WriteIf(ctx, []byte("color=red"), v)
	var ce *client.ConflictError
	if errors.As(err, &ce) {
		fmt.Printf("conflict: expected version %d, region is at version %d\n", ce.Expected, ce.Current)
	}
	fmt.Println("is ErrConflict:", errors.Is(err, client.ErrConflict))

	b, err := r.Read(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("content: %s\n", b)
	// Output:
	// wrote version 1
	// conflict: expected version 0, region is at version 1
	// is ErrConflict: true
	// content: color=blue
}

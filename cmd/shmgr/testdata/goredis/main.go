// Command goredis drives go-redis, with its defaults (RESP3 through
// HELLO 3, CLIENT SETINFO), against a RESP listener: cmd/shmgr's
// TestRESPGoRedis runs it. It is a module of its own, under testdata, so
// that shmgr's go.mod does not depend on go-redis.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/redis/go-redis/v9"
)

func main() {
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("ok")
}

func run(addr, password string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rdb := redis.NewClient(&redis.Options{Addr: addr, Password: password})
	defer rdb.Close()
	if err := rdb.Set(ctx, "greeting", "hello", 0).Err(); err != nil {
		return fmt.Errorf("SET: %w", err)
	}
	if v, err := rdb.Get(ctx, "greeting").Result(); err != nil || v != "hello" {
		return fmt.Errorf("GET = %q, %v", v, err)
	}
	if _, err := rdb.Get(ctx, "missing").Result(); !errors.Is(err, redis.Nil) {
		return fmt.Errorf("GET missing: %v, want redis.Nil", err)
	}
	cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range 20 {
			p.Set(ctx, fmt.Sprintf("user:%d", i), i, 0)
		}
		return nil
	})
	if err != nil || len(cmds) != 20 {
		return fmt.Errorf("pipeline: %d, %v", len(cmds), err)
	}
	// A transaction at the watched version.
	err = rdb.Watch(ctx, func(tx *redis.Tx) error {
		n, err := tx.Get(ctx, "user:1").Int()
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "user:1", n+1, 0)
			return nil
		})
		return err
	}, "user:1")
	if err != nil {
		return fmt.Errorf("WATCH/MULTI/EXEC: %w", err)
	}
	if v, _ := rdb.Get(ctx, "user:1").Result(); v != "2" {
		return fmt.Errorf("after the transaction user:1 = %q, want 2", v)
	}
	sub := rdb.Subscribe(ctx, "__keyspace@0__:greeting")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		return fmt.Errorf("SUBSCRIBE: %w", err)
	}
	if err := rdb.Set(ctx, "greeting", "again", 0).Err(); err != nil {
		return err
	}
	msg, err := sub.ReceiveMessage(ctx)
	if err != nil || msg.Payload != "set" {
		return fmt.Errorf("keyspace message: %v, %v", msg, err)
	}
	if err := rdb.Set(ctx, "k", "v", time.Minute).Err(); err == nil {
		return errors.New("SET with an expiry was accepted")
	}
	return nil
}

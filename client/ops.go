package client

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/shmgr/shmgr/internal/proto"
)

func unexpected(rep proto.Reply, want string) error {
	return fmt.Errorf("%w: expected %s reply, got %s", ErrProtocol, want, rep.Kind)
}

func (c *Conn) doJSON(ctx context.Context, rt retry, enc func([]byte) []byte, v any) error {
	return c.do(ctx, rt, enc, func(rep proto.Reply) error {
		if rep.Kind != proto.ReplyJSON {
			return unexpected(rep, "JSON")
		}
		if err := json.Unmarshal(rep.Payload, v); err != nil {
			return fmt.Errorf("%w: bad JSON reply: %v", ErrProtocol, err)
		}
		return nil
	})
}

func checkID(id string) error {
	if !proto.ValidID([]byte(id)) {
		return fmt.Errorf("%w: %q: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", ErrBadID, id)
	}
	return nil
}

// Ping checks that the host answers.
func (c *Conn) Ping(ctx context.Context) error {
	return c.do(ctx, retrySafe, proto.AppendPing, func(rep proto.Reply) error {
		if rep.Kind != proto.ReplyPong {
			return unexpected(rep, "PONG")
		}
		return nil
	})
}

// HostInfo returns the host's description.
func (c *Conn) HostInfo(ctx context.Context) (HostInfo, error) {
	var hi HostInfo
	err := c.doJSON(ctx, retrySafe, func(b []byte) []byte { return proto.AppendInfo(b, nil) }, &hi)
	return hi, err
}

// Info returns a region's description.
func (c *Conn) Info(ctx context.Context, id string) (Info, error) {
	var in Info
	if err := checkID(id); err != nil {
		return in, err
	}
	err := c.doJSON(ctx, retrySafe, func(b []byte) []byte { return proto.AppendInfo(b, []byte(id)) }, &in)
	return in, err
}

// List returns every region on the host, sorted by shm_id.
func (c *Conn) List(ctx context.Context) ([]Info, error) {
	var out []Info
	err := c.doJSON(ctx, retrySafe, proto.AppendList, &out)
	return out, err
}

// Create makes a new region on the host.
func (c *Conn) Create(ctx context.Context, id string, o CreateOptions) (Info, error) {
	var in Info
	if err := checkID(id); err != nil {
		return in, err
	}
	err := c.doJSON(ctx, retryNever, func(b []byte) []byte {
		return proto.AppendCreate(b, []byte(id), proto.CreateOptions{Size: o.Size, Layout: o.Layout, Durable: o.Durable, MaxWrite: o.MaxWrite})
	}, &in)
	return in, err
}

// Delete removes a region from the host.
func (c *Conn) Delete(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	return c.do(ctx, retryNever, func(b []byte) []byte { return proto.AppendDelete(b, []byte(id)) }, func(rep proto.Reply) error {
		if rep.Kind != proto.ReplyOK {
			return unexpected(rep, "OK")
		}
		return nil
	})
}

// set writes p as o says and returns the new version. Every write carries
// this connection's client id and a fresh sequence number, so that a retry
// after a lost reply is applied once.
func (c *Conn) set(ctx context.Context, id string, p []byte, o proto.SetOptions) (uint64, error) {
	var v uint64
	o.ClientID = []byte(c.cid)
	err := c.do(ctx, retryKeyed, func(b []byte) []byte {
		// Numbered on the first attempt, under the lock that sends it, so
		// that the host sees a client's writes in sequence order; retries
		// reuse the number.
		if o.Seq == 0 {
			c.seq++
			o.Seq = c.seq
		}
		return proto.AppendSet(b, []byte(id), p, o)
	}, func(rep proto.Reply) error {
		if rep.Kind != proto.ReplyOK {
			return unexpected(rep, "OK")
		}
		var err error
		v, err = strconv.ParseUint(string(rep.Text), 10, 64)
		if err != nil {
			return fmt.Errorf("%w: SET reply without a version: %q", ErrProtocol, rep.Text)
		}
		return nil
	})
	return v, err
}

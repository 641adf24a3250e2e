package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/proto"
)

// codec frames requests and parses replies of one protocol.
type codec interface {
	// request appends request i of a batch (the test decides read or write).
	request(dst []byte, i int) []byte
	// reply parses one reply at the front of buf: n consumed (0: need more),
	// and whether it was an error.
	reply(buf []byte) (n int, isErr bool, err error)
}

func newCodec(cfg Config, test string) (codec, error) {
	payload := bytes.Repeat([]byte{'x'}, cfg.Size)
	switch cfg.Protocol {
	case "shmgr":
		if test == "echo" {
			break
		}
		id := []byte(cfg.ID)
		return &shmgrCodec{test: test, get: proto.AppendGet(nil, id), set: proto.AppendSet(nil, id, payload, proto.SetOptions{}),
			rp: proto.NewReplyParser(proto.DefaultMaxLine, int64(cfg.Size)+1<<20)}, nil
	case "redis":
		if test == "echo" {
			break
		}
		return newRedisCodec(test, cfg.ID, payload), nil
	case "echo":
		if cfg.Size < 1 {
			return nil, errors.New("the echo test needs -d of at least 1")
		}
		return &echoCodec{payload: payload}, nil
	default:
		return nil, fmt.Errorf("unknown protocol %q: use shmgr, redis or echo", cfg.Protocol)
	}
	return nil, fmt.Errorf("test %q does not apply to protocol %q", test, cfg.Protocol)
}

// isWrite says whether request i of test is a write (mixed: every other).
func isWrite(test string, i int) bool { return test == "write" || test == "mixed" && i%2 == 1 }

type shmgrCodec struct {
	test     string
	get, set []byte // the request frames, made once
	rp       *proto.ReplyParser
}

func (c *shmgrCodec) request(dst []byte, i int) []byte {
	if isWrite(c.test, i) {
		return append(dst, c.set...)
	}
	return append(dst, c.get...)
}

func (c *shmgrCodec) reply(buf []byte) (int, bool, error) {
	r, n, err := c.rp.Next(buf)
	if err != nil || n == 0 {
		return n, false, err
	}
	return n, r.Kind == proto.ReplyError, nil
}

type redisCodec struct {
	test     string
	get, set []byte // the request frames, made once
}

func newRedisCodec(test, key string, payload []byte) *redisCodec {
	set := fmt.Appendf(nil, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n", len(key), key, len(payload))
	set = append(append(set, payload...), "\r\n"...)
	return &redisCodec{test: test, get: fmt.Appendf(nil, "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", len(key), key), set: set}
}

func (c *redisCodec) request(dst []byte, i int) []byte {
	if isWrite(c.test, i) {
		return append(dst, c.set...)
	}
	return append(dst, c.get...)
}

// reply parses a RESP simple string, error, integer or bulk string.
func (c *redisCodec) reply(buf []byte) (int, bool, error) {
	i := bytes.Index(buf, []byte("\r\n"))
	if i < 0 {
		return 0, false, nil
	}
	if i == 0 {
		return 0, false, errors.New("redis: empty reply line")
	}
	switch buf[0] {
	case '+', ':':
		return i + 2, false, nil
	case '-':
		return i + 2, true, nil
	case '$':
		n, ok := bulkLen(buf[1:i])
		if !ok {
			return 0, false, fmt.Errorf("redis: bad bulk length %q", buf[1:i])
		}
		if n < 0 {
			return i + 2, false, nil
		}
		if len(buf) < i+2+n+2 {
			return 0, false, nil
		}
		return i + 2 + n + 2, false, nil
	}
	return 0, false, fmt.Errorf("redis: unexpected reply %q", buf[:min(len(buf), 32)])
}

// bulkLen parses a RESP bulk length: -1, or decimal digits.
func bulkLen(b []byte) (int, bool) {
	if string(b) == "-1" {
		return -1, true
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	n := 0
	for _, d := range b {
		if d < '0' || d > '9' {
			return 0, false
		}
		n = n*10 + int(d-'0')
	}
	return n, true
}

type echoCodec struct{ payload []byte }

func (c *echoCodec) request(dst []byte, i int) []byte { return append(dst, c.payload...) }

func (c *echoCodec) reply(buf []byte) (int, bool, error) {
	if len(buf) < len(c.payload) {
		return 0, false, nil
	}
	return len(c.payload), false, nil
}

// dial connects one benchmark connection and gets it ready (metadata line
// and AUTH for shmgr).
func dial(ctx context.Context, cfg Config) (net.Conn, *bufio.Reader, error) {
	var d net.Dialer
	var nc net.Conn
	var err error
	if cfg.Fingerprint != "" {
		var tc *tls.Config
		if tc, err = client.PinnedTLS(cfg.Fingerprint); err != nil {
			return nil, nil, err
		}
		nc, err = (&tls.Dialer{NetDialer: &d, Config: tc}).DialContext(ctx, "tcp", cfg.Addr)
	} else {
		nc, err = d.DialContext(ctx, "tcp", cfg.Addr)
	}
	if err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(nc, 64<<10)
	if cfg.Protocol != "shmgr" {
		return nc, br, nil
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	defer nc.SetDeadline(time.Time{})
	line, err := br.ReadBytes('\n')
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("reading the metadata line: %w", err)
	}
	m, err := proto.ParseMeta(line)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	if m.Auth == "token" {
		if _, err := nc.Write(proto.AppendAuth(nil, []byte(cfg.Token))); err != nil {
			nc.Close()
			return nil, nil, err
		}
		if l, err := br.ReadBytes('\n'); err != nil || !bytes.HasPrefix(l, []byte("OK")) {
			nc.Close()
			return nil, nil, fmt.Errorf("AUTH refused: %q %v (pass --token)", l, err)
		}
	}
	return nc, br, nil
}

// prepare makes sure the region (shmgr) or key (redis) holds a value of
// the right size before reads.
func prepare(ctx context.Context, cfg Config) error {
	if cfg.Protocol == "echo" {
		return nil
	}
	nc, br, err := dial(ctx, cfg)
	if err != nil {
		return err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	payload := bytes.Repeat([]byte{'x'}, cfg.Size)
	var req []byte
	if cfg.Protocol == "shmgr" {
		req = proto.AppendCreate(req, []byte(cfg.ID), proto.CreateOptions{Size: int64(max(cfg.Size, 1)), Layout: "raw"})
		req = proto.AppendSet(req, []byte(cfg.ID), payload, proto.SetOptions{})
	} else {
		req = newRedisCodec("write", cfg.ID, payload).request(req, 0)
	}
	if _, err := nc.Write(req); err != nil {
		return err
	}
	if cfg.Protocol == "redis" {
		l, err := br.ReadString('\n')
		if err != nil || l[0] == '-' {
			return fmt.Errorf("redis SET: %q %v", l, err)
		}
		return nil
	}
	rp := proto.NewReplyParser(proto.DefaultMaxLine, 1<<20)
	var buf []byte
	for got := 0; got < 2; {
		r, n, err := rp.Next(buf)
		if err != nil {
			return err
		}
		if n == 0 {
			b := make([]byte, 4096)
			k, err := br.Read(b)
			if err != nil {
				return err
			}
			buf = append(buf, b[:k]...)
			continue
		}
		if r.Kind == proto.ReplyError && (got == 1 || r.Code != proto.CodeExists) {
			return fmt.Errorf("preparing region %q: %s", cfg.ID, r.Text)
		}
		buf = buf[n:]
		got++
	}
	return nil
}

// runNetwork runs a read, write, mixed or echo test over TCP.
func runNetwork(ctx context.Context, cfg Config, test string) (Result, error) {
	if _, err := newCodec(cfg, test); err != nil {
		return Result{}, err
	}
	if err := prepare(ctx, cfg); err != nil {
		return Result{}, err
	}
	conns := make([]net.Conn, cfg.Conns)
	readers := make([]*bufio.Reader, cfg.Conns)
	for i := range conns {
		nc, br, err := dial(ctx, cfg)
		if err != nil {
			for _, c := range conns[:i] {
				c.Close()
			}
			return Result{}, fmt.Errorf("connection %d: %w", i+1, err)
		}
		conns[i], readers[i] = nc, br
	}
	b := newBudget(cfg)
	hists := make([]Hist, cfg.Conns)
	var errs errorList
	var errCount [64]uint64
	start := time.Now()
	var wg, pwg sync.WaitGroup
	stop := make(chan struct{})
	pwg.Add(1)
	go progress(cfg, test, b, start, stop, &pwg)
	for i := range conns {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer conns[i].Close()
			cd, _ := newCodec(cfg, test)
			n, err := worker(ctx, cfg, cd, conns[i], readers[i], b, &hists[i])
			errCount[i%64] += n
			if err != nil {
				errs.add(err)
			}
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	pwg.Wait()
	var h Hist
	var ne uint64
	for i := range hists {
		h.Merge(&hists[i])
	}
	for _, n := range errCount {
		ne += n
	}
	if err := errs.err(); err != nil && h.Count() == 0 {
		return Result{}, err
	}
	return result(cfg, test, &h, ne, elapsed), errs.err()
}

// A worker's deadline: replyTimeout from when it was last moved on, at
// most rearmEvery ago.
const (
	replyTimeout = 30 * time.Second
	rearmEvery   = time.Second
)

// worker sends pipelined batches on one connection until the budget is
// spent; every reply's latency is measured from its batch's send.
func worker(ctx context.Context, cfg Config, cd codec, nc net.Conn, br *bufio.Reader, b *budget, h *Hist) (errCount uint64, err error) {
	var batch []byte
	ends := make([]int, cfg.Pipeline)
	for i := range cfg.Pipeline {
		batch = cd.request(batch, i)
		ends[i] = len(batch)
	}
	buf := make([]byte, 256<<10)
	r, w := 0, 0
	var armed time.Time // when the deadline was last moved on
	for ctx.Err() == nil {
		n := b.take(cfg.Pipeline)
		if n == 0 {
			return errCount, nil
		}
		t0 := time.Now()
		if t0.Sub(armed) >= rearmEvery {
			// A server that stops answering fails the run after
			// replyTimeout. Moving the deadline on costs two timer
			// updates in the runtime: once per batch, they were a
			// noticeable share of the generator's own CPU, which every
			// server's figures share.
			nc.SetDeadline(t0.Add(replyTimeout))
			armed = t0
		}
		if _, err := nc.Write(batch[:ends[n-1]]); err != nil {
			return errCount, err
		}
		for got := 0; got < n; {
			k, isErr, err := cd.reply(buf[r:w])
			if err != nil {
				return errCount, err
			}
			if k > 0 {
				h.Add(time.Since(t0))
				if isErr {
					errCount++
				}
				r += k
				got++
				continue
			}
			// Need more bytes: make room, then read.
			if r == w {
				r, w = 0, 0
			} else if w == len(buf) {
				if r > 0 {
					w = copy(buf, buf[r:w])
					r = 0
				} else {
					buf = append(buf, make([]byte, len(buf))...)
				}
			}
			m, err := br.Read(buf[w:])
			w += m
			if err != nil && m == 0 {
				if errors.Is(err, io.EOF) {
					err = errors.New("the server closed the connection")
				}
				return errCount, err
			}
		}
		b.done.Add(uint64(n))
	}
	return errCount, ctx.Err()
}

// ServeEcho echoes every byte back on each connection of ln until ln is
// closed: the ceiling any request/reply protocol over TCP can reach.
func ServeEcho(ln net.Listener) error {
	for {
		nc, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer nc.Close()
			buf := make([]byte, 64<<10)
			for {
				n, err := nc.Read(buf)
				if n > 0 {
					if _, werr := nc.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/shmgr/shmgr/client"
)

// runLag measures the replication lag of a cluster: one writer sets the
// region through cfg.Addr (the leader) over TCP, one write at a time, and
// a client on this machine maps the region of the host at cfg.Follower
// and polls its version. Each sample runs from the write's
// acknowledgement (the leader has committed and applied it) to the
// version being visible in the follower's mapping: what a reader on the
// follower waits at most, short of half a loopback round trip.
func runLag(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Protocol != "shmgr" || cfg.Follower == "" {
		return Result{}, errors.New("the lag test needs a shmgr cluster: --host the leader, --follower a follower on this machine")
	}
	if err := prepare(ctx, cfg); err != nil {
		return Result{}, err
	}
	o := client.DefaultOptions()
	o.Token = cfg.Token
	o.Mode = client.ModeTCP
	w, err := client.Dial(ctx, cfg.Addr, cfg.ID, o)
	if err != nil {
		return Result{}, fmt.Errorf("writer: %w", err)
	}
	defer w.Close()
	o.Mode, o.Token = client.ModeLocal, cfg.FollowerToken
	f, err := client.Dial(ctx, cfg.Follower, cfg.ID, o)
	if err != nil {
		return Result{}, fmt.Errorf("follower's mapping: %w", err)
	}
	defer f.Close()
	payload := bytes.Repeat([]byte{'x'}, cfg.Size)
	b := newBudget(cfg)
	var h Hist
	start := time.Now()
	for ctx.Err() == nil && b.take(1) == 1 {
		v, err := w.Write(ctx, payload)
		if err != nil {
			return Result{}, fmt.Errorf("write: %w", err)
		}
		t1 := time.Now()
		for ; ; runtime.Gosched() {
			fv, err := f.Version(ctx)
			if err != nil {
				return Result{}, fmt.Errorf("follower's version: %w", err)
			}
			if fv >= v {
				break
			}
			if time.Since(t1) > 10*time.Second {
				return Result{}, fmt.Errorf("the follower stayed at version %d for 10s, the leader acknowledged %d", fv, v)
			}
		}
		h.Add(time.Since(t1))
		b.done.Add(1)
	}
	return result(cfg, "lag", &h, 0, time.Since(start)), ctx.Err()
}

// runEtcd runs write (put) or read (range) against etcd's JSON gateway
// (/v3/kv/put, /v3/kv/range, base64 keys and values), each of cfg.Conns
// goroutines with its own keep-alive HTTP connection and one request in
// flight. The gateway adds HTTP and JSON work on etcd's side that its
// gRPC clients do not pay.
func runEtcd(ctx context.Context, cfg Config, test string) (Result, error) {
	if cfg.Pipeline != 1 {
		return Result{}, errors.New("etcd: -P must be 1 (one request in flight per HTTP connection)")
	}
	key := base64.StdEncoding.EncodeToString([]byte(cfg.ID))
	val := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{'x'}, cfg.Size))
	put, _ := json.Marshal(map[string]string{"key": key, "value": val})
	rng, _ := json.Marshal(map[string]string{"key": key})
	base := "http://" + cfg.Addr
	if err := etcdCall(ctx, http.DefaultClient, base+"/v3/kv/put", put); err != nil {
		return Result{}, err
	}
	url, body := base+"/v3/kv/put", put
	if test == "read" {
		url, body = base+"/v3/kv/range", rng
	} else if test != "write" {
		return Result{}, fmt.Errorf("test %q does not apply to protocol etcd", test)
	}
	b := newBudget(cfg)
	hists := make([]Hist, cfg.Conns)
	var errs errorList
	start := time.Now()
	var wg, pwg sync.WaitGroup
	stop := make(chan struct{})
	pwg.Add(1)
	go progress(cfg, test, b, start, stop, &pwg)
	for i := range cfg.Conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, DisableCompression: true}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr, Timeout: replyTimeout}
			for ctx.Err() == nil && b.take(1) == 1 {
				t0 := time.Now()
				if err := etcdCall(ctx, hc, url, body); err != nil {
					errs.add(err)
					return
				}
				hists[i].Add(time.Since(t0))
				b.done.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	pwg.Wait()
	var h Hist
	for i := range hists {
		h.Merge(&hists[i])
	}
	if err := errs.err(); err != nil {
		return result(cfg, test, &h, 0, elapsed), err
	}
	return result(cfg, test, &h, 0, elapsed), nil
}

// etcdCall posts one JSON request and reads the whole answer (so that the
// connection is reused); an answer other than 200 is an error.
func etcdCall(ctx context.Context, hc *http.Client, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("etcd: reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("etcd: %s: %s", resp.Status, bytes.TrimSpace(b[:min(len(b), 300)]))
	}
	return nil
}

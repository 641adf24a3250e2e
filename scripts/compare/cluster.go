//go:build linux

package main

// This file measures the cluster: three "shmgr host --node" processes on
// loopback against a three-member etcd (Debian's etcd-server) on the same
// loopback, replicated writes side by side, and the cluster's replication
// lag, local reads and large writes.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shmgr/shmgr/internal/bench"
)

// clusterRounds and clusterDur bound the cluster section (about a minute
// and a half with the defaults): replicated writes are slow to warm and
// the section runs twelve systems a round.
const (
	clusterRounds = 3
	clusterDur    = time.Second
)

// clusterConns are the connection counts of the replicated write rows.
var clusterConns = []int{1, 50}

// clusterResult is what the section found besides bench results.
type clusterResult struct {
	skipped     string // why etcd was not measured ("": it was)
	etcdVersion string
	etcdLarge   string // etcd's answer to a large put
	rounds      int
}

// A member is one node of a three-node cluster under test.
type member struct {
	p      *proc
	url    string // etcd: its client URL
	leader bool
}

// clusterSection runs the whole cluster comparison.
func (l *lab) clusterSection(ctx context.Context, o options, sv *servers, rep *report) error {
	cr := &clusterResult{rounds: min(o.rounds, clusterRounds)}
	rep.cluster = cr
	dur := min(o.dur, clusterDur)
	nodes, err := l.startShmgrCluster(ctx)
	if err != nil {
		return fmt.Errorf("shmgr cluster: %w", err)
	}
	leader, follower := pickRoles(nodes)
	var etcd []member
	if _, err := exec.LookPath("etcd"); err != nil {
		cr.skipped = "etcd is not installed (Debian's etcd-server: scripts/compare/install.sh installs it, as root)"
		l.logf("cluster: %s: the etcd columns are left out", cr.skipped)
	} else if etcd, err = l.startEtcd(ctx); err != nil {
		cr.skipped = "etcd did not start: " + err.Error()
		l.logf("cluster: %s", cr.skipped)
		etcd = nil
	} else if out, err := exec.Command("etcd", "--version").Output(); err == nil {
		cr.etcdVersion = etcdVersion(string(out))
	}
	el, ef := pickRoles(etcd)
	l.logf("cluster: shmgr leader %s, follower %s; etcd %s", leader.p.addr, follower.p.addr, orNone(cr.etcdVersion))
	for round := range cr.rounds {
		for _, c := range clusterConns {
			cfg := bench.Config{ID: "c4096", Conns: c, Pipeline: 1, Size: 4 << 10, Duration: dur}
			steps := []func() error{
				func() error { return l.clusterRun(ctx, rep, round, "shmgr-leader", leader.p, "shmgr", cfg, "write") },
				func() error {
					return l.clusterRun(ctx, rep, round, "shmgr-follower", follower.p, "shmgr", cfg, "write")
				},
			}
			if etcd != nil {
				steps = append(steps,
					func() error { return l.clusterRun(ctx, rep, round, "etcd-leader", etcdProc(el), "etcd", cfg, "write") },
					func() error {
						return l.clusterRun(ctx, rep, round, "etcd-follower", etcdProc(ef), "etcd", cfg, "write")
					})
			}
			if round%2 == 1 {
				slices.Reverse(steps)
			}
			for _, s := range steps {
				if err := s(); err != nil {
					return err
				}
			}
		}
		lag := bench.Config{ID: "c4096", Conns: 1, Pipeline: 1, Size: 4 << 10, Duration: dur,
			Follower: follower.p.addr, FollowerToken: follower.p.token}
		if err := l.clusterRun(ctx, rep, round, "shmgr-lag", leader.p, "shmgr", lag, "lag"); err != nil {
			return err
		}
		reads := []func() error{
			func() error {
				return l.clusterRun(ctx, rep, round, "read-follower", follower.p, "shmgr", localCfg(dur, "c4096"), "local-read")
			},
			func() error {
				return l.clusterRun(ctx, rep, round, "read-single", sv.host, "shmgr", localCfg(dur, "r4096"), "local-read")
			},
		}
		if round%2 == 1 {
			slices.Reverse(reads)
		}
		for _, s := range reads {
			if err := s(); err != nil {
				return err
			}
		}
	}
	large := bench.Config{ID: "c" + strconv.Itoa(o.largeSize), Conns: 1, Pipeline: 1, Size: o.largeSize, Requests: 3}
	for _, m := range []struct {
		name string
		p    *proc
	}{{"large-leader", leader.p}, {"large-follower", follower.p}} {
		if err := l.clusterRun(ctx, rep, 0, m.name, m.p, "shmgr", large, "write"); err != nil {
			return err
		}
	}
	if etcd != nil {
		cfg := bench.Config{Protocol: "etcd", Addr: etcdProc(el).addr, ID: "large", Conns: 1, Pipeline: 1, Size: o.largeSize, Requests: 1, Tests: []string{"write"}}
		if _, err := bench.Run(ctx, cfg); err != nil {
			cr.etcdLarge = err.Error()
		} else {
			cr.etcdLarge = "accepted"
		}
		l.logf("cluster: etcd put of %s: %s", fmtSize(o.largeSize), cr.etcdLarge)
	}
	for _, m := range append(nodes, etcd...) {
		m.p.stop()
	}
	return nil
}

func localCfg(dur time.Duration, id string) bench.Config {
	return bench.Config{ID: id, Conns: 1, Pipeline: 1, Size: 4 << 10, Duration: max(dur/2, 100*time.Millisecond)}
}

// clusterRun measures one system and files the result under
// key("cluster", name, conns).
func (l *lab) clusterRun(ctx context.Context, rep *report, round int, name string, p *proc, protocol string, cfg bench.Config, test string) error {
	var r bench.Result
	var err error
	if cfg.Requests > 0 {
		// A fixed count (the large writes): no warm-up, no CPU.
		cfg.Protocol, cfg.Tests, cfg.Addr, cfg.Token = protocol, []string{test}, p.addr, p.token
		var res []bench.Result
		if res, err = bench.Run(ctx, cfg); err == nil {
			r = res[0]
		}
	} else {
		r, err = l.measure(ctx, p, protocol, cfg, test)
	}
	if err != nil {
		return fmt.Errorf("cluster %s: %w", name, err)
	}
	k := key("cluster", name, strconv.Itoa(cfg.Conns))
	rep.res[k] = append(rep.res[k], r)
	l.logf("cluster round %d %-15s c=%-2d %9s ops/s  p50 %8.0f µs  p99 %8.0f µs", round+1, name, cfg.Conns, fmtRate(r.OpsPerSec), r.P50us, r.P99us)
	return nil
}

// startShmgrCluster starts three hosts forming a cluster and waits for a
// leader.
func (l *lab) startShmgrCluster(ctx context.Context) ([]member, error) {
	names := []string{"a", "b", "c"}
	var peers []string
	for _, n := range names {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		peers = append(peers, n+"=127.0.0.1:"+strconv.Itoa(port))
	}
	var nodes []member
	for _, n := range names {
		p, err := l.startHost(ctx, "node-"+n, "--node", n, "--peers", strings.Join(peers, ","))
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, member{p: p})
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		leader := ""
		for _, m := range nodes {
			if st, err := l.clusterStatus(ctx, m.p); err == nil && st.Leader != "" {
				leader = st.Leader
				break
			}
		}
		if leader != "" {
			for i, n := range names {
				nodes[i].leader = n == leader
			}
			return nodes, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no leader after 60s: %s", nodes[0].p.tail())
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// clusterStatus is the part of "shmgr cluster status --json" used here.
type clusterStatus struct {
	ID     string `json:"id"`
	Leader string `json:"leader"`
}

func (l *lab) clusterStatus(ctx context.Context, p *proc) (clusterStatus, error) {
	args := []string{"cluster", "status", "--host", p.addr, "--json"}
	if p.token != "" {
		args = append(args, "--token", p.token)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, l.bin, args...).Output()
	var st clusterStatus
	if err == nil {
		err = json.Unmarshal(out, &st)
	}
	return st, err
}

// pickRoles returns the leader and a follower of nodes (zero members for
// none).
func pickRoles(nodes []member) (leader, follower member) {
	for _, m := range nodes {
		if m.leader {
			leader = m
		} else if follower.p == nil {
			follower = m
		}
	}
	return leader, follower
}

func etcdProc(m member) *proc { return m.p }

// startEtcd starts a three-member etcd cluster on loopback, each member
// with its own data directory and etcd's defaults otherwise (fsync on
// every commit), and waits for it to elect a leader.
func (l *lab) startEtcd(ctx context.Context) ([]member, error) {
	type ports struct{ client, peer int }
	var ps []ports
	var initial []string
	for i := range 3 {
		c, err := freePort()
		if err != nil {
			return nil, err
		}
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ps = append(ps, ports{c, p})
		initial = append(initial, fmt.Sprintf("e%d=http://127.0.0.1:%d", i, p))
	}
	var ms []member
	for i, p := range ps {
		name := "e" + strconv.Itoa(i)
		cu := fmt.Sprintf("http://127.0.0.1:%d", p.client)
		pu := fmt.Sprintf("http://127.0.0.1:%d", p.peer)
		proc, err := l.startProc("etcd-"+name, "etcd", "--name", name, "--data-dir", filepath.Join(l.dir, "etcd-"+name),
			"--listen-client-urls", cu, "--advertise-client-urls", cu, "--listen-peer-urls", pu, "--initial-advertise-peer-urls", pu,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new", "--initial-cluster-token", "shmgr-compare",
			"--log-level", "warn")
		if err != nil {
			return nil, err
		}
		proc.addr = fmt.Sprintf("127.0.0.1:%d", p.client)
		ms = append(ms, member{p: proc, url: cu})
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		found := false
		for i := range ms {
			st, err := etcdStatus(ctx, ms[i].url)
			if err != nil {
				found = false
				break
			}
			ms[i].leader = st.Leader != "" && st.Leader != "0" && st.Leader == st.Header.MemberID
			found = found || ms[i].leader
		}
		if found {
			return ms, nil
		}
		for _, m := range ms {
			if m.p.exited() {
				return nil, fmt.Errorf("%s exited (%v): %s", m.p.name, m.p.waitErr, m.p.tail())
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no etcd leader after 60s: %s", ms[0].p.tail())
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// etcdStatusReply is the part of /v3/maintenance/status used here (uint64
// fields come as JSON strings from the gateway).
type etcdStatusReply struct {
	Header struct {
		MemberID string `json:"member_id"`
	} `json:"header"`
	Leader string `json:"leader"`
}

func etcdStatus(ctx context.Context, url string) (etcdStatusReply, error) {
	var st etcdStatusReply
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, url+"/v3/maintenance/status", strings.NewReader("{}"))
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return st, err
	}
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return st, json.Unmarshal(b, &st)
}

// etcdVersion extracts "3.4.23" from "etcd Version: 3.4.23\n...".
func etcdVersion(s string) string {
	if v, ok := bannerField(s+"\n", "etcd Version:"); ok {
		return v
	}
	return strings.TrimSpace(strings.SplitN(s, "\n", 2)[0])
}

// clusterMarkdown renders the cluster section.
func (r *report) clusterMarkdown() string {
	cr := r.cluster
	if cr == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n## Cluster: three hosts against a three-member etcd\n\n")
	fmt.Fprintf(&b, "Three `shmgr host --node` processes on loopback (Raft with fsync on every node), and, when it is installed, a three-member etcd %s (Debian's etcd-server, each member with its own data directory and its defaults: fsync on every commit) on the same loopback; servers pinned to the servers' CPU as above, so six server processes share one core. %d interleaved rounds of %v per run (the order reversed every other round); medians, and the median (min–max) of the per-round ratios. 4 KiB values. etcd is driven through its JSON gateway (`/v3/kv/put`, base64 values) with one keep-alive HTTP connection per client connection, which adds HTTP and JSON work to etcd's side that its gRPC clients do not pay.\n\n",
		orNone(cr.etcdVersion), cr.rounds, min(r.opts.dur, clusterDur))
	if cr.skipped != "" {
		fmt.Fprintf(&b, "> etcd was not measured on this run: %s.\n\n", cr.skipped)
	}
	us := func(x float64) string { return fmt.Sprintf("%.2f", x/1e3) }
	header := []string{"4 KiB writes", "c", "ops/s", "p50 ms", "p99 ms"}
	hasEtcd := cr.skipped == ""
	if hasEtcd {
		header = append(header, "etcd ops/s", "etcd p50 ms", "etcd p99 ms", "**ops/s shmgr / etcd**", "p99 shmgr / etcd")
	}
	var rows [][]string
	for _, via := range []string{"leader", "follower"} {
		for _, c := range clusterConns {
			cs := strconv.Itoa(c)
			s, e := "shmgr-"+via, "etcd-"+via
			row := []string{"through the " + via, cs, fmtRate(r.ops("cluster", s, cs)),
				us(median(r.field(p50Of, "cluster", s, cs))), us(median(r.field(p99Of, "cluster", s, cs)))}
			if hasEtcd {
				row = append(row, fmtRate(r.ops("cluster", e, cs)), us(median(r.field(p50Of, "cluster", e, cs))), us(median(r.field(p99Of, "cluster", e, cs))),
					"**"+summarize(ratios(r.field(opsOf, "cluster", s, cs), r.field(opsOf, "cluster", e, cs))).ratioString()+"**",
					summarize(ratios(r.field(p99Of, "cluster", s, cs), r.field(p99Of, "cluster", e, cs))).ratioString())
			}
			rows = append(rows, row)
		}
	}
	b.WriteString(mdTable(header, rows))
	lag50, lag99 := median(r.field(p50Of, "cluster", "shmgr-lag", "1")), median(r.field(p99Of, "cluster", "shmgr-lag", "1"))
	fr, sr := r.field(opsOf, "cluster", "read-follower", "1"), r.field(opsOf, "cluster", "read-single", "1")
	ll, lf := r.res[key("cluster", "large-leader", "1")], r.res[key("cluster", "large-follower", "1")]
	largeMBs := func(rs []bench.Result) string {
		if len(rs) == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2f s (%.0f MB/s), p99 %.2f s", rs[0].P50us/1e6, float64(r.opts.largeSize)/(rs[0].P50us/1e6)/1e6, rs[0].P99us/1e6)
	}
	b.WriteString("\n")
	b.WriteString(mdTable([]string{"cluster", "measured"}, [][]string{
		{"replication lag, write acknowledged by the leader → version visible in a follower's mapping (one writer, 4 KiB)", fmt.Sprintf("p50 %.2f ms, p99 %.2f ms", lag50/1e3, lag99/1e3)},
		{"local read of 4 KiB through a mapping: a follower's / a single host's time", summarize(ratios(sr, fr)).ratioString() + fmt.Sprintf(" (%.1f ns against %.1f ns)", 1e9/median(fr), 1e9/median(sr))},
		{fmt.Sprintf("one %s write through the leader (3 writes, median)", fmtSize(r.opts.largeSize)), largeMBs(ll)},
		{fmt.Sprintf("one %s write through a follower", fmtSize(r.opts.largeSize)), largeMBs(lf)},
		{fmt.Sprintf("etcd: one %s put", fmtSize(r.opts.largeSize)), orNone(cr.etcdLarge)},
	}))
	b.WriteString("\n")
	b.WriteString(r.clusterGoals())
	return b.String()
}

func p50Of(x bench.Result) float64 { return x.P50us }

// clusterGoals is the table of issue 16's performance goals.
func (r *report) clusterGoals() string {
	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**missed**"
	}
	var rows [][]string
	if r.cluster.skipped == "" {
		for _, g := range []struct {
			via  string
			c    string
			want float64
		}{{"leader", "1", 1}, {"follower", "1", 1}, {"leader", "50", 2}, {"follower", "50", 2}} {
			s := summarize(ratios(r.field(opsOf, "cluster", "shmgr-"+g.via, g.c), r.field(opsOf, "cluster", "etcd-"+g.via, g.c)))
			rows = append(rows, []string{fmt.Sprintf("4 KiB write ops/s vs etcd put, c=%s, through the %s", g.c, g.via), fmt.Sprintf("≥ %.0f×", g.want), s.ratioString(), met(s.median >= g.want)})
		}
	}
	lag99 := median(r.field(p99Of, "cluster", "shmgr-lag", "1"))
	rows = append(rows, []string{"replication lag p99", "< 2 ms", fmt.Sprintf("%.2f ms", lag99/1e3), met(lag99 < 2000)})
	rd := summarize(ratios(r.field(opsOf, "cluster", "read-single", "1"), r.field(opsOf, "cluster", "read-follower", "1")))
	rows = append(rows, []string{"follower's local read time vs a single host's", "the same, within noise", rd.ratioString(), met(!math.IsNaN(rd.median) && rd.min <= 1.1 && rd.max >= 0.9)})
	ok := len(r.res[key("cluster", "large-leader", "1")]) > 0
	rows = append(rows, []string{fmt.Sprintf("%s writes", fmtSize(r.opts.largeSize)), "taken (etcd cannot)", map[bool]string{true: "taken", false: "n/a"}[ok], met(ok)})
	return "Issue 16's goals for the cluster:\n\n" + mdTable([]string{"goal", "want", "measured", ""}, rows)
}

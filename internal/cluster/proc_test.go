package cluster

// Cluster nodes as separate processes: the test binary re-executes itself
// with nodeEnv set, and the child runs one host and one node (each with
// its own data directories, so its own shared-memory names) and a small
// HTTP control endpoint on 127.0.0.1:0 that the test drives.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/atomicfile"
	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shm"
	"github.com/shmgr/shmgr/internal/shmerr"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// nodeEnv carries a nodeSpec (JSON) to a child that is to run a node.
const nodeEnv = "SHMGR_CLUSTER_TEST_NODE"

func TestMain(m *testing.M) {
	if spec := os.Getenv(nodeEnv); spec != "" {
		if err := runNode(spec); err != nil {
			fmt.Fprintln(os.Stderr, "node:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// nodeSpec is what a child node runs with.
type nodeSpec struct {
	ID                string
	Bind              string
	Peers             map[string]string
	Dir               string // the child's directory: raft/, host/, ctl
	SnapshotThreshold uint64
	TrailingLogs      uint64
	ChunkSize         int
	LogSegmentSize    int
}

// runNode is the child: a host, a node on it, the control endpoint; it
// stops cleanly on SIGTERM.
func runNode(specJSON string) error {
	var spec nodeSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		return err
	}
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, spec.ID+": "+format+"\n", args...) }
	hc := host.DefaultConfig(filepath.Join(spec.Dir, "host"))
	hc.Logf = logf
	h, _, err := host.Open(hc)
	if err != nil {
		return err
	}
	defer h.Close()
	n, err := Start(Config{ID: spec.ID, Bind: spec.Bind, Peers: spec.Peers, DataDir: filepath.Join(spec.Dir, "raft"), Host: h, Logf: logf,
		SnapshotThreshold: spec.SnapshotThreshold, TrailingLogs: spec.TrailingLogs, SnapshotInterval: 100 * time.Millisecond,
		// Raft's default timeouts: shorter ones lose the leader in the
		// middle of a 64 MiB write on a busy machine under -race.
		ChunkSize: spec.ChunkSize, LogSegmentSize: spec.LogSegmentSize})
	if err != nil {
		return err
	}
	defer n.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /apply", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		cmd, err := Decode(b)
		var v uint64
		if err == nil {
			v, err = n.Apply(r.Context(), cmd)
		}
		json.NewEncoder(w).Encode(applyReply{Version: v, Kind: kindOf(err), Err: errString(err)})
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) { json.NewEncoder(w).Encode(n.Status()) })
	mux.HandleFunc("GET /info", func(w http.ResponseWriter, r *http.Request) {
		reg, err := h.Get(r.URL.Query().Get("id"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode(reg.Info())
	})
	mux.HandleFunc("POST /barrier", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		err := n.Barrier(ctx)
		json.NewEncoder(w).Encode(applyReply{Kind: kindOf(err), Err: errString(err)})
	})
	mux.HandleFunc("POST /snapshot", func(w http.ResponseWriter, r *http.Request) {
		if err := n.Snapshot(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if err := atomicfile.Write(spec.Dir, "ctl", []byte(ln.Addr().String()), 0o600); err != nil && !errors.Is(err, atomicfile.ErrNotDurable) {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	select {
	case <-ctx.Done():
	case err := <-served:
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	<-served
	return nil
}

type applyReply struct {
	Version uint64 `json:"version"`
	Kind    string `json:"kind,omitempty"`
	Err     string `json:"err,omitempty"`
}

// kinds are the errors a reply names by kind, so that the test can match
// them with errors.Is.
var kinds = []struct {
	name string
	err  error
}{{"not_leader", ErrNotLeader}, {"unknown_outcome", shmerr.ErrUnknownOutcome}, {"conflict", shmerr.ErrConflict},
	{"not_found", shmerr.ErrNotFound}, {"exists", shmerr.ErrExists}, {"unavailable", shmerr.ErrUnavailable},
	{"fenced", shmerr.ErrFenced}, {"lock_timeout", shmerr.ErrLockTimeout}}

func kindOf(err error) string {
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	if err != nil {
		return "other"
	}
	return ""
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// proc is a child node as the test sees it. Writers on other goroutines
// look at it while the test kills and restarts it.
type proc struct {
	spec   nodeSpec
	stderr *shmtest.Buffer
	// mu protects cmd and ctl.
	mu  sync.Mutex
	cmd *exec.Cmd
	ctl string
}

func (p *proc) addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ctl
}

// startCluster starts n nodes on free loopback ports and, when the test
// ends, kills them and removes every object their hosts made.
func startCluster(t *testing.T, n int, tweak func(*nodeSpec)) []*proc {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the node processes are stopped with SIGTERM, which Windows does not deliver")
	}
	peers := map[string]string{}
	var procs []*proc
	for i := 0; i < n; i++ {
		id := string(rune('a' + i))
		peers[id] = freeAddr(t)
		spec := nodeSpec{ID: id, Bind: peers[id], Peers: peers, Dir: t.TempDir()}
		if tweak != nil {
			tweak(&spec)
		}
		procs = append(procs, &proc{spec: spec})
	}
	t.Cleanup(func() {
		for _, p := range procs {
			p.kill(t)
			shmtest.RemoveObjects(t, filepath.Join(p.spec.Dir, "host"))
			if t.Failed() {
				t.Logf("node %s stderr:\n%s", p.spec.ID, tail(p.stderr.String(), 3000))
			}
		}
		for _, p := range procs {
			if left := leftObjects(p); len(left) > 0 {
				t.Errorf("node %s left shared-memory objects: %v", p.spec.ID, left)
			}
		}
	})
	for _, p := range procs {
		p.start(t)
	}
	return procs
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// leftObjects lists the objects with the prefix of p's host.
func leftObjects(p *proc) []string {
	b, err := os.ReadFile(filepath.Join(p.spec.Dir, "host", "registry.json"))
	if err != nil {
		return nil
	}
	var reg struct {
		Instance string `json:"instance"`
	}
	if json.Unmarshal(b, &reg) != nil || reg.Instance == "" {
		return nil
	}
	left, _ := shm.List("shmgr-" + reg.Instance + "-")
	return left
}

// freeAddr returns a loopback address with a port free a moment ago (a
// node's Raft address must be known to its peers before it starts).
func freeAddr(t *testing.T) string { return shmtest.FreeAddr(t) }

// start runs the child and waits until its control endpoint is up.
func (p *proc) start(t *testing.T) {
	t.Helper()
	spec, _ := json.Marshal(p.spec)
	os.Remove(filepath.Join(p.spec.Dir, "ctl"))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), nodeEnv+"="+string(spec))
	if p.stderr == nil {
		p.stderr = &shmtest.Buffer{}
	}
	cmd.Stdout, cmd.Stderr = p.stderr, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var ctl []byte
	shmtest.CheckFor(t, 30*time.Second, "node "+p.spec.ID+" did not start", func() bool {
		var err error
		ctl, err = os.ReadFile(filepath.Join(p.spec.Dir, "ctl"))
		return err == nil && len(ctl) > 0
	})
	p.mu.Lock()
	p.cmd, p.ctl = cmd, string(ctl)
	p.mu.Unlock()
}

// signal sends sig to the running child.
func (p *proc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		t.Fatalf("node %s is not running", p.spec.ID)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// pid returns the running child's process id (0 if none).
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// take returns the running child and forgets it.
func (p *proc) take() *exec.Cmd {
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := p.cmd
	p.cmd, p.ctl = nil, ""
	return cmd
}

// kill SIGKILLs the child (if running) and reaps it.
func (p *proc) kill(t *testing.T) {
	if cmd := p.take(); cmd != nil {
		cmd.Process.Kill()
		cmd.Wait()
	}
}

// stop stops the child with SIGTERM (a clean Close) and reaps it.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if cmd := p.take(); cmd != nil {
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("node %s: %v", p.spec.ID, err)
		}
	}
}

func (p *proc) up() bool { return p.addr() != "" }

// httpClient's timeout allows a 256 MiB write to commit on a busy machine.
var httpClient = &http.Client{Timeout: 5 * time.Minute}

// apply sends cmd to the child; errors carry the reply's kind.
func (p *proc) apply(cmd Command) (uint64, error) {
	resp, err := httpClient.Post("http://"+p.addr()+"/apply", "application/octet-stream", bytes.NewReader(cmd.Append(nil)))
	if err != nil {
		return 0, fmt.Errorf("%w: node %s: %v", shmerr.ErrUnknownOutcome, p.spec.ID, err)
	}
	defer resp.Body.Close()
	var r applyReply
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, fmt.Errorf("%w: node %s: reply: %v", shmerr.ErrUnknownOutcome, p.spec.ID, err)
	}
	if r.Kind == "" {
		return r.Version, nil
	}
	for _, k := range kinds {
		if k.name == r.Kind {
			return r.Version, fmt.Errorf("%w: %s", k.err, r.Err)
		}
	}
	return r.Version, errors.New(r.Err)
}

// barrier runs Node.Barrier on the child.
func (p *proc) barrier() error {
	resp, err := httpClient.Post("http://"+p.addr()+"/barrier", "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r applyReply
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return err
	}
	if r.Err != "" {
		return errors.New(r.Err)
	}
	return nil
}

func (p *proc) get(path string, v any) error {
	addr := p.addr()
	if addr == "" {
		return fmt.Errorf("node %s is down", p.spec.ID)
	}
	resp, err := httpClient.Get("http://" + addr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func (p *proc) status(t *testing.T) Status {
	t.Helper()
	var st Status
	if err := p.get("/status", &st); err != nil {
		t.Fatalf("node %s: %v", p.spec.ID, err)
	}
	return st
}

func (p *proc) snapshot(t *testing.T) {
	t.Helper()
	resp, err := httpClient.Post("http://"+p.addr()+"/snapshot", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("snapshot on %s: %s", p.spec.ID, resp.Status)
	}
}

// read maps region id of p's host, as a local client does, and reads it
// under the seqlock: content and version straight from shared memory.
func (p *proc) read(t *testing.T, id string) ([]byte, uint64, error) {
	t.Helper()
	var in host.Info
	if err := p.get("/info?id="+id, &in); err != nil {
		return nil, 0, err
	}
	data, err := shm.Open(in.OSName, in.Size)
	if err != nil {
		return nil, 0, err
	}
	defer data.Close()
	ctl, err := shm.Open(in.CtlName, region.CtlSize(in.Size, in.MaxWrite))
	if err != nil {
		return nil, 0, err
	}
	defer ctl.Close()
	rr, err := region.Attach(data.Bytes(), ctl.Bytes(), ctl.Path())
	if err != nil {
		return nil, 0, err
	}
	defer rr.Close()
	return rr.AppendContent(nil)
}

// leader waits until one reachable node is the leader and every
// reachable node knows it, and returns it.
func leader(t *testing.T, procs []*proc) *proc {
	t.Helper()
	l, err := findLeader(procs, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// findLeader is leader for goroutines other than the test's: it polls
// (bounded by timeout) and returns an error instead of failing the test.
func findLeader(procs []*proc, timeout time.Duration) (*proc, error) {
	deadline := time.Now().Add(timeout)
	for d := time.Millisecond; ; d = min(2*d, 50*time.Millisecond) {
		var l *proc
		ids := map[string]bool{}
		for _, p := range procs {
			var st Status
			if p.get("/status", &st) != nil {
				continue
			}
			ids[st.Leader] = true
			if st.State == "Leader" {
				l = p
			}
		}
		if l != nil && len(ids) == 1 {
			return l, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no leader elected after %v", timeout)
		}
		time.Sleep(d)
	}
}

// noDivergence fails the test if a running node found a region written
// behind the log's back: in these tests only the log writes.
func noDivergence(t *testing.T, procs []*proc) {
	t.Helper()
	for _, p := range procs {
		if p.up() {
			if st := p.status(t); st.Diverged != 0 {
				t.Errorf("node %s reports %d regions written behind the log", p.spec.ID, st.Diverged)
			}
		}
	}
}

// converged waits until region id has the same version and bytes on every
// running node (read through their mappings), and returns them.
func converged(t *testing.T, procs []*proc, id string, timeout time.Duration) ([]byte, uint64) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for d := time.Millisecond; ; d = min(2*d, 50*time.Millisecond) {
		var content []byte
		var version uint64
		seen := false
		why := ""
		for _, p := range procs {
			if !p.up() {
				continue
			}
			b, v, err := p.read(t, id)
			switch {
			case err != nil:
				why = fmt.Sprintf("node %s: %v", p.spec.ID, err)
			case seen && (v != version || !bytes.Equal(b, content)):
				why = fmt.Sprintf("node %s at version %d (%d bytes), another at %d (%d bytes)", p.spec.ID, v, len(b), version, len(content))
			}
			if why != "" {
				break
			}
			content, version, seen = b, v, true
		}
		if why == "" && seen {
			return content, version
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v region %s has not converged: %s", timeout, id, why)
		}
		time.Sleep(d)
	}
}

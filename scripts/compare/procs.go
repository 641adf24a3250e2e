//go:build linux

package main

// This file manages the processes the comparison starts: the lab that owns
// them, starting each server with its output logged, waiting for its
// banner, and stopping it and removing what it left.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A lab owns everything the comparison starts: the temporary directory,
// the server processes and the shared-memory objects of its hosts.
type lab struct {
	dir      string // temporary directory, removed by close
	bin      string // the shmgr binary
	self     string // this program's binary (for --serve-raw)
	taskset  string // path of taskset ("": pin after start instead)
	pin      bool
	allCPUs  []int // the CPUs this process may use at start
	srvCPUs  []int // servers' CPUs when pinned
	loadCPUs []int // the load generator's CPUs when pinned
	procs    []*proc
	start    time.Time
}

func (l *lab) logf(format string, args ...any) {
	el := time.Since(l.start).Round(time.Second)
	fmt.Fprintf(os.Stderr, "[%4s] %s\n", el, fmt.Sprintf(format, args...))
}

// A proc is one server process the lab started.
type proc struct {
	name      string
	pid       int
	addr      string
	token     string
	shmPrefix string // hosts: the OS-name prefix of their regions
	log       *lineLog
	done      chan struct{} // closed when the process has exited
	waitErr   error
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// lineLog keeps the first 64 KiB a process prints (its banner) and copies
// everything to a log file.
type lineLog struct {
	mu      sync.Mutex // protects head
	head    []byte
	f       *os.File
	changed chan struct{}
}

func (w *lineLog) Write(b []byte) (int, error) {
	w.mu.Lock()
	if len(w.head) < 64<<10 {
		w.head = append(w.head, b[:min(len(b), 64<<10-len(w.head))]...)
	}
	w.mu.Unlock()
	w.f.Write(b)
	select {
	case w.changed <- struct{}{}:
	default:
	}
	return len(b), nil
}

// field returns the rest of the first complete line that starts with prefix.
func (w *lineLog) field(prefix string) (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bannerField(string(w.head), prefix)
}

// bannerField returns the trimmed rest of the first complete line of s that
// starts with prefix.
func bannerField(s, prefix string) (string, bool) {
	for {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			return "", false
		}
		line := s[:i]
		s = s[i+1:]
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			return strings.TrimSpace(rest), true
		}
	}
}

// startProc starts a server pinned to the servers' CPU, its output going
// to a log file in the lab's directory.
func (l *lab) startProc(name string, args ...string) (*proc, error) {
	f, err := os.Create(filepath.Join(l.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	lg := &lineLog{f: f, changed: make(chan struct{}, 1)}
	argv := args
	if l.pin && l.taskset != "" {
		argv = append([]string{l.taskset, "-c", cpuList(l.srvCPUs)}, args...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = lg, lg
	// Its own process group, so a Ctrl-C in the terminal reaches only this
	// program, which stops the servers in order; and killed with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, pid: cmd.Process.Pid, log: lg, done: make(chan struct{})}
	l.procs = append(l.procs, p)
	go func() {
		p.waitErr = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	if l.pin && l.taskset == "" {
		if err := setAffinity(p.pid, l.srvCPUs); err != nil {
			return p, err
		}
	}
	return p, nil
}

// waitField waits for a line of p's output that starts with prefix.
func (l *lab) waitField(ctx context.Context, p *proc, prefix string, timeout time.Duration) (string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if v, ok := p.log.field(prefix); ok {
			return v, nil
		}
		select {
		case <-p.log.changed:
		case <-p.done:
			if v, ok := p.log.field(prefix); ok {
				return v, nil
			}
			return "", fmt.Errorf("%s exited (%v): %s", p.name, p.waitErr, p.tail())
		case <-deadline.C:
			return "", fmt.Errorf("%s: no %q line after %v: %s", p.name, prefix, timeout, p.tail())
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

func (p *proc) tail() string {
	p.log.mu.Lock()
	defer p.log.mu.Unlock()
	s := strings.TrimSpace(string(p.log.head))
	if len(s) > 600 {
		s = "…" + s[len(s)-600:]
	}
	return s
}

// stop stops p: SIGINT, then SIGKILL after 10s; then removes the
// shared-memory objects of a host.
func (p *proc) stop() {
	if !p.exited() {
		syscall.Kill(p.pid, syscall.SIGINT)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			syscall.Kill(p.pid, syscall.SIGKILL)
			<-p.done
		}
	}
	if p.shmPrefix != "" {
		names, _ := filepath.Glob(filepath.Join("/dev/shm", p.shmPrefix+"*"))
		for _, n := range names {
			os.Remove(n)
		}
		p.shmPrefix = ""
	}
}

// close stops every process (last started first) and removes the
// temporary directory.
func (l *lab) close() {
	for i := len(l.procs) - 1; i >= 0; i-- {
		l.procs[i].stop()
	}
	l.procs = nil
	if l.dir != "" {
		os.RemoveAll(l.dir)
	}
}

var shmNameRE = regexp.MustCompile(`^(shmgr-[0-9a-f]{8}-)[0-9a-f]+`)

// startHost starts "shmgr host" on a free loopback port with its own data
// directory.
func (l *lab) startHost(ctx context.Context, name string, extra ...string) (*proc, error) {
	data := filepath.Join(l.dir, name+"-data")
	args := append([]string{l.bin, "host", "--listen", "127.0.0.1:0", "--data-dir", data, "--quiet"}, extra...)
	p, err := l.startProc(name, args...)
	if err != nil {
		return nil, err
	}
	if p.addr, err = l.waitField(ctx, p, "listening:", 30*time.Second); err != nil {
		return nil, err
	}
	osName, err := l.waitField(ctx, p, "os name:", 5*time.Second)
	if err != nil {
		return nil, err
	}
	if m := shmNameRE.FindStringSubmatch(osName); m != nil {
		p.shmPrefix = m[1]
	}
	if tok, ok := p.log.field("token:"); ok {
		p.token = tok
	}
	return p, nil
}

func (l *lab) startRedis(ctx context.Context, name string, extra ...string) (*proc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	args := append([]string{"redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "yes", "--dir", l.dir}, extra...)
	p, err := l.startProc(name, args...)
	if err != nil {
		return nil, err
	}
	p.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for range 200 { // up to 10s
		if err := redisPing(p.addr); err == nil {
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("redis-server exited (%v): %s", p.waitErr, p.tail())
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("redis-server does not answer PING on %s: %s", p.addr, p.tail())
}

func redisPing(addr string) error {
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(time.Second))
	if _, err := nc.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := readLine(nc)
	if err != nil {
		return err
	}
	if line != "+PONG" {
		return fmt.Errorf("PING: %q", line)
	}
	return nil
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// servers are the long-running servers of the comparison.
type servers struct {
	host, redis, echo, raw     *proc
	redisVersion, shmgrVersion string
}

func (l *lab) startServers(ctx context.Context) (*servers, error) {
	var sv servers
	var err error
	if sv.host, err = l.startHost(ctx, "host"); err != nil {
		return nil, err
	}
	if v, ok := sv.host.log.field("shmgr host "); ok {
		sv.shmgrVersion, _, _ = strings.Cut(v, " ")
	}
	if sv.redis, err = l.startRedis(ctx, "redis"); err != nil {
		return nil, err
	}
	if out, err := exec.Command("redis-server", "--version").Output(); err == nil {
		sv.redisVersion = redisVersion(string(out))
	}
	if sv.echo, err = l.startProc("echo", l.bin, "bench", "--serve-echo", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	if sv.echo.addr, err = l.waitField(ctx, sv.echo, "echo server listening on", 10*time.Second); err != nil {
		return nil, err
	}
	if sv.raw, err = l.startProc("raw", l.self, "--serve-raw", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	if sv.raw.addr, err = l.waitField(ctx, sv.raw, "raw server listening on", 10*time.Second); err != nil {
		return nil, err
	}
	l.logf("shmgr host %s on %s, redis %s on %s, echo on %s, raw on %s",
		sv.shmgrVersion, sv.host.addr, sv.redisVersion, sv.redis.addr, sv.echo.addr, sv.raw.addr)
	return &sv, nil
}

// redisVersion extracts "7.0.15" from "Redis server v=7.0.15 sha=...".
func redisVersion(s string) string {
	for f := range strings.FieldsSeq(s) {
		if v, ok := strings.CutPrefix(f, "v="); ok {
			return v
		}
	}
	return strings.TrimSpace(s)
}

// readLine reads one line (up to 64 KiB) a byte at a time, so that nothing
// after it is consumed; it returns it without "\r\n".
func readLine(nc net.Conn) (string, error) {
	var line []byte
	var b [1]byte
	for len(line) < 64<<10 {
		if _, err := nc.Read(b[:]); err != nil {
			return string(line), err
		}
		if b[0] == '\n' {
			return strings.TrimSuffix(string(line), "\r"), nil
		}
		line = append(line, b[0])
	}
	return string(line), errors.New("line longer than 64 KiB")
}

package main_test

// Fault tests: the host against the ways operators break things (full
// and read-only disks, hand-edited state files, a second host on the same
// directory, hostile lengths, many short-lived clients, a low file limit,
// objects removed behind its back, a full /dev/shm) and against SIGKILL
// at random instants. Each runs the built binary; the namespaced ones need
// root (unshare, nsenter) and say so when they skip.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// peer is a raw protocol connection whose errors are returned, not
// fatal: the host it talks to may be killed mid-request.
type peer struct {
	nc   net.Conn
	br   *bufio.Reader
	meta string
}

func dialPeer(addr string) (*peer, error) {
	nc, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		return nil, err
	}
	p := &peer{nc: nc, br: bufio.NewReader(nc)}
	nc.SetDeadline(time.Now().Add(ioTimeout))
	if p.meta, err = p.br.ReadString('\n'); err != nil {
		nc.Close()
		return nil, err
	}
	return p, nil
}

func (p *peer) Close() error { return p.nc.Close() }

// do sends req and returns the whole reply (a line, plus the payload of
// VALUE and JSON).
func (p *peer) do(req string) (string, error) {
	p.nc.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(p.nc, req); err != nil {
		return "", err
	}
	l, err := p.br.ReadString('\n')
	if err != nil {
		return l, err
	}
	f := strings.Fields(l)
	n := -1
	switch {
	case len(f) == 3 && f[0] == "VALUE":
		n, _ = strconv.Atoi(f[2])
	case len(f) == 2 && f[0] == "JSON":
		n, _ = strconv.Atoi(f[1])
	}
	if n < 0 {
		return l, nil
	}
	b := make([]byte, n+1)
	if _, err := io.ReadFull(p.br, b); err != nil {
		return l, err
	}
	return l + string(b), nil
}

// mustPeer dials addr and fails the test if it cannot.
func mustPeer(t *testing.T, addr string) *peer {
	t.Helper()
	p, err := dialPeer(addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// mustDo is do that fails the test on an I/O error.
func (p *peer) mustDo(t *testing.T, req string) string {
	t.Helper()
	rep, err := p.do(req)
	if err != nil {
		t.Fatalf("%q: %v (got %q)", trim(req), err, rep)
	}
	return rep
}

// value returns the payload of a VALUE reply to GET id, or ok false.
func (p *peer) value(t *testing.T, id string) (string, bool) {
	t.Helper()
	rep := p.mustDo(t, "GET "+id+"\n")
	if !strings.HasPrefix(rep, "VALUE ") {
		return rep, false
	}
	_, body, _ := strings.Cut(rep, "\n")
	return strings.TrimSuffix(body, "\n"), true
}

func setReq(id, content string) string {
	return fmt.Sprintf("SET %s %d\n%s\n", id, len(content), content)
}

// needRoot skips a test that needs to mount file systems.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: it mounts a small tmpfs in a private mount namespace (unshare -m)")
	}
	for _, tool := range []string{"unshare", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (util-linux): %v", tool, err)
		}
	}
}

// mountNS starts a process in a private mount namespace with a tmpfs of
// size mounted on target, and returns its pid: hosts started with
// nsenter(pid) share the namespace, and the test reaches the tmpfs as
// nsPath(pid, target). The namespace, and the tmpfs, end with the test.
func mountNS(t *testing.T, target, size string) int {
	t.Helper()
	needRoot(t)
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs -o size="$1",mode=0700 tmpfs "$2" && echo ready && exec sleep 600`, "sh", size, target)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Skipf("unshare -m: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Skipf("cannot mount a tmpfs in a private mount namespace: %s", strings.TrimSpace(stderr.String()))
	}
	return cmd.Process.Pid
}

func nsenter(pid int) []string { return []string{"nsenter", "-t", strconv.Itoa(pid), "-m", "--"} }

func nsPath(pid int, path string) string { return fmt.Sprintf("/proc/%d/root%s", pid, path) }

// fillDisk writes into dir until the file system is full, and returns a
// function that frees the space again.
func fillDisk(t *testing.T, dir string) func() {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for i := 0; i < 1<<16; i++ {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			break
		}
	}
	f.Close()
	// Whatever is left in partly used pages goes too.
	for i := 0; ; i++ {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("filler-%d", i)), []byte("x"), 0o600); err != nil {
			break
		}
	}
	return func() {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "filler") {
				os.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
}

// cleanObjects removes, when the test ends, the objects of the host
// whose registry is at regPath (read then) from the real /dev/shm.
// Register it before the host starts, so that it runs after the host is
// killed (a running host restores what is removed).
func cleanObjects(t *testing.T, regPath *string) {
	t.Cleanup(func() { shmtest.RemoveObjects(t, filepath.Dir(*regPath)) })
}

// TestFaultDataDisk: with the data directory's disk full (a 256 KiB
// tmpfs) or read-only, CREATE and DELETE are refused and change nothing:
// the refused region does not exist (not listed, a retry is not
// "exists", SET finds nothing), the region that was to be deleted keeps
// its content, before and after a restart.
func TestFaultDataDisk(t *testing.T) {
	for _, fault := range []string{"full", "readonly"} {
		t.Run("fault="+fault, func(t *testing.T) {
			dir := t.TempDir()
			pid := mountNS(t, dir, "256k")
			regPath := nsPath(pid, filepath.Join(dir, "registry.json"))
			cleanObjects(t, &regPath)
			h := shmtest.StartHostWrapped(t, dir, nsenter(pid))
			p := mustPeer(t, h.Addr)
			if rep := p.mustDo(t, "CREATE keep size=4096\n"); !strings.HasPrefix(rep, "JSON") {
				t.Fatalf("CREATE keep = %q", rep)
			}
			if rep := p.mustDo(t, setReq("keep", "precious")); !strings.HasPrefix(rep, "OK") {
				t.Fatalf("SET keep = %q", rep)
			}

			undo := func() {}
			switch fault {
			case "full":
				undo = fillDisk(t, nsPath(pid, dir))
			case "readonly":
				// Immutable rather than a read-only remount, which the
				// kernel refuses while the host holds its lock file open
				// for writing: nothing can be created, renamed or removed
				// in the directory.
				if _, err := exec.LookPath("chattr"); err != nil {
					t.Skipf("needs chattr (e2fsprogs): %v", err)
				}
				attr := func(flag string) {
					if out, err := exec.Command("chattr", flag, nsPath(pid, dir)).CombinedOutput(); err != nil {
						t.Fatalf("chattr %s: %v: %s", flag, err, out)
					}
				}
				attr("+i")
				undo = func() { attr("-i") }
				t.Cleanup(undo)
			}

			for try := range 2 {
				rep := p.mustDo(t, "CREATE lost size=4096\n")
				if !strings.HasPrefix(rep, "ERROR ") || !strings.Contains(rep, "nothing changed") {
					t.Errorf("CREATE lost (try %d) on a %s disk = %q, want an ERROR saying nothing changed", try+1, fault, trim(rep))
				}
			}
			if rep := p.mustDo(t, setReq("lost", "x")); !strings.HasPrefix(rep, "ERROR not_found") {
				t.Errorf("SET into the refused region = %q, want not_found", trim(rep))
			}
			if rep := p.mustDo(t, "DELETE keep\n"); !strings.HasPrefix(rep, "ERROR ") || !strings.Contains(rep, "nothing changed") {
				t.Errorf("DELETE keep on a %s disk = %q, want an ERROR saying nothing changed", fault, trim(rep))
			}
			check := func(when string) {
				t.Helper()
				q := mustPeer(t, h.Addr)
				if got, ok := q.value(t, "keep"); !ok || got != "precious" {
					t.Errorf("%s: keep = %q (found %v), want its content kept", when, got, ok)
				}
				if rep := q.mustDo(t, "LIST\n"); strings.Contains(rep, `"lost"`) {
					t.Errorf("%s: the refused region is listed: %s", when, rep)
				}
			}
			check("while the disk is " + fault)

			undo()
			h.Kill(t)
			h.Restart(t)
			check("after a restart")
			if strings.Contains(h.Stderr(), "recreated") {
				t.Errorf("the restart recreated a region (content lost):\n%s", h.Stderr())
			}
		})
	}
}

// crashRegion is what the crash loop knows of one region.
type crashRegion struct {
	createSent, created bool
	setAcked            bool
	deleteSent, deleted bool
	content             string
}

// TestFaultCrashCreateDelete: SIGKILL at random instants during bursts
// of CREATE, SET and DELETE. After each restart every region is intact
// or gone, never empty: an acknowledged create with an acknowledged SET
// is there with its content, an acknowledged delete is gone, an
// unanswered one either.
func TestFaultCrashCreateDelete(t *testing.T) {
	if testing.Short() {
		t.Skip("crash loop skipped in -short mode")
	}
	h := startHost(t)
	const rounds = 32
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 13))
	regions := map[string]*crashRegion{}
	var acked struct{ creates, sets, deletes int }
	var inflight string          // the request outstanding (under mu)
	killedIn := map[string]int{} // requests outstanding at the kill
	losses := 0
	for round := range rounds {
		var mu sync.Mutex // regions, acked, inflight, while the burst runs
		done := make(chan struct{})
		go func() {
			defer close(done)
			p, err := dialPeer(h.Addr)
			if err != nil {
				t.Errorf("round %d: dial: %v", round, err)
				return
			}
			defer p.Close()
			for i := 0; i < 1000; i++ {
				id := fmt.Sprintf("r%d-%d", round, i)
				st := &crashRegion{content: "content of " + id, createSent: true}
				mu.Lock()
				regions[id] = st
				inflight = "CREATE"
				mu.Unlock()
				rep, err := p.do("CREATE " + id + " size=4096\n")
				if err != nil {
					return
				}
				mu.Lock()
				st.created = strings.HasPrefix(rep, "JSON")
				if st.created {
					acked.creates++
				}
				mu.Unlock()
				if !st.created {
					t.Errorf("CREATE %s = %q", id, trim(rep))
					return
				}
				mu.Lock()
				inflight = "SET"
				mu.Unlock()
				if rep, err = p.do(setReq(id, st.content)); err != nil {
					return
				}
				mu.Lock()
				st.setAcked = strings.HasPrefix(rep, "OK ")
				if st.setAcked {
					acked.sets++
				}
				var victim string
				live := 0
				for vid, v := range regions {
					if v.created && !v.deleteSent {
						live++
						if v.setAcked && vid != id && (victim == "" || vid < victim) {
							victim = vid
						}
					}
				}
				if live <= 3 {
					victim = ""
				}
				if victim != "" {
					regions[victim].deleteSent = true
					inflight = "DELETE"
				}
				mu.Unlock()
				if victim == "" {
					continue
				}
				if rep, err = p.do("DELETE " + victim + "\n"); err != nil {
					return
				}
				mu.Lock()
				if rep == "OK\n" {
					regions[victim].deleted = true
					acked.deletes++
				} else {
					t.Errorf("DELETE %s = %q", victim, trim(rep))
				}
				mu.Unlock()
			}
		}()
		// A random instant into the burst (not a wait for a state).
		time.Sleep(time.Duration(2+rng.IntN(40)) * time.Millisecond)
		mu.Lock()
		killedIn[inflight]++
		mu.Unlock()
		h.Kill(t)
		<-done
		h.Restart(t)

		p := mustPeer(t, h.Addr)
		var list []info
		rep := p.mustDo(t, "LIST\n")
		_, body, _ := strings.Cut(rep, "\n")
		if err := json.Unmarshal([]byte(body), &list); err != nil {
			t.Fatalf("LIST: %v: %q", err, rep)
		}
		present := map[string]bool{}
		for _, in := range list {
			present[in.ShmID] = true
		}
		for id, st := range regions {
			switch {
			case present[id]:
				got, _ := p.value(t, id)
				if st.deleted {
					losses++
					t.Errorf("round %d: %s: its DELETE was acknowledged, yet it is back (content %q)", round, id, got)
				} else if st.setAcked && got != st.content {
					losses++
					t.Errorf("round %d: %s is back with %q, want its acknowledged content %q (intact or gone, never empty)", round, id, got, st.content)
				} else if !st.setAcked && got != "" && got != st.content {
					t.Errorf("round %d: %s holds %q, neither empty nor what was sent", round, id, got)
				}
				st.created, st.deleteSent = true, false
			case st.created && st.setAcked && !st.deleteSent:
				losses++
				t.Errorf("round %d: %s: created and written (both acknowledged), never deleted, and gone", round, id)
				delete(regions, id)
			default:
				delete(regions, id) // gone, as it may be
			}
		}
		p.Close()
	}
	if strings.Contains(h.Stderr(), "content lost") {
		t.Errorf("a restart recreated a region with its content lost:\n%s", h.Stderr())
	}
	t.Logf("crash loop (seed %d): %d rounds, acknowledged %d creates, %d sets, %d deletes; killed with outstanding %v; %d losses",
		seed, rounds, acked.creates, acked.sets, acked.deletes, killedIn, losses)
	if acked.creates < rounds || acked.deletes == 0 {
		t.Errorf("the bursts acknowledged %d creates and %d deletes in %d rounds: too few to test anything", acked.creates, acked.deletes, rounds)
	}
}

// TestFaultStateFiles: each state file in the data directory (registry,
// tokens, session) garbage, empty, truncated, of the wrong type, or
// valid JSON with a field missing or null. A registry or token file the
// host cannot use stops it with a message saying what to do, keeping
// the file and every region's objects; a session file it cannot use is
// set aside (the session is new, so a retried write is unknown_outcome,
// never applied twice).
func TestFaultStateFiles(t *testing.T) {
	const token = "tok_0123456789abcdef"
	tests := []struct {
		file, name, content string
		// want: what the host's error says ("" for a start that
		// succeeds).
		want []string
	}{
		{"registry.json", "garbage", "\x00\xffnot json", []string{"not valid JSON", "move it aside"}},
		{"registry.json", "empty", "", []string{"not valid JSON", "move it aside"}},
		{"registry.json", "truncated", "", []string{"not valid JSON", "move it aside"}}, // content: the real file, cut
		{"registry.json", "wrong-type", `["default"]`, []string{"not valid JSON", "move it aside"}},
		{"registry.json", "regions-null", "", []string{`"regions" is missing or null`, "move it aside"}},
		{"registry.json", "regions-missing", "", []string{`"regions" is missing or null`, "move it aside"}},
		{"registry.json", "instance-missing", "", []string{"bad instance", "move it aside"}},
		{"tokens.json", "garbage", "\x00\xffnot json", []string{"tokens.json", "move it aside"}},
		{"tokens.json", "empty", "", []string{"tokens.json", "move it aside"}},
		{"tokens.json", "truncated", `{"tokens":[{"name":"admin","tok`, []string{"tokens.json", "move it aside"}},
		{"tokens.json", "wrong-type", `{"tokens":{"name":"admin"}}`, []string{"tokens.json", "move it aside"}},
		{"tokens.json", "tokens-null", `{"tokens":null}`, []string{`"tokens" is missing or null`, "move it aside"}},
		{"tokens.json", "tokens-missing", `{}`, []string{`"tokens" is missing or null`, "move it aside"}},
		{"tokens.json", "secret-missing", `{"tokens":[{"name":"admin","access":"rw"}]}`, []string{"tokens.json", "shorter than 16"}},
		{"tokens.json", "no-admin", `{"tokens":[]}`, nil},
		{"session.json", "garbage", "\x00\xffnot json", nil},
		{"session.json", "empty", "", nil},
		{"session.json", "truncated", "", nil},
		{"session.json", "wrong-type", `[1,2]`, nil},
		{"session.json", "clients-null", "", nil},
		{"session.json", "key-missing", "", nil},
	}
	for _, tt := range tests {
		t.Run("file="+strings.TrimSuffix(tt.file, ".json")+"/"+tt.name, func(t *testing.T) {
			t.Parallel()
			h := startHost(t, "--token", token)
			p := mustPeer(t, h.Addr)
			p.mustDo(t, "AUTH "+token+"\n")
			p.mustDo(t, "CREATE notes size=4096\n")
			if rep := p.mustDo(t, "SET notes 4 cid=c1 seq=1\nkept\n"); !strings.HasPrefix(rep, "OK") {
				t.Fatalf("SET = %q", rep)
			}
			oldSession := jsonField(t, p.meta, "session")
			var notes info
			_, body, _ := strings.Cut(p.mustDo(t, "INFO notes\n"), "\n")
			if err := json.Unmarshal([]byte(body), &notes); err != nil || notes.OSName == "" {
				t.Fatalf("INFO notes: %v: %q", err, body)
			}
			p.Close()
			h.Stop(t)

			path := filepath.Join(h.DataDir, tt.file)
			orig, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			content := tt.content
			switch tt.name {
			case "truncated":
				if content == "" {
					content = string(orig[:len(orig)/2])
				}
			case "regions-null", "regions-missing", "instance-missing", "clients-null", "key-missing":
				var m map[string]any
				if err := json.Unmarshal(orig, &m); err != nil {
					t.Fatal(err)
				}
				switch tt.name {
				case "regions-null":
					m["regions"] = nil
				case "regions-missing":
					delete(m, "regions")
				case "instance-missing":
					delete(m, "instance")
				case "clients-null":
					m["clients"] = nil
				case "key-missing":
					delete(m, "key")
				}
				b, _ := json.Marshal(m)
				content = string(b)
			}
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}

			if tt.want != nil {
				out, errOut, code := shmtest.Run(t, nil, "host", "--listen", "127.0.0.1:0", "--data-dir", h.DataDir, "--token", token)
				if code == 0 {
					t.Fatalf("host started with a bad %s:\n%s", tt.file, out)
				}
				for _, w := range tt.want {
					if !strings.Contains(errOut, w) {
						t.Errorf("host error lacks %q:\n%s", w, errOut)
					}
				}
				if b, _ := os.ReadFile(path); string(b) != content {
					t.Errorf("the refused %s was changed", tt.file)
				}
				for _, n := range []string{notes.OSName, notes.CtlName} {
					if !exists(t, filepath.Join(shmDir, n)) {
						t.Errorf("object %s is gone after a start refused for its bad %s", n, tt.file)
					}
				}
				// Putting the file back brings everything back.
				if err := os.WriteFile(path, orig, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tt.name == "no-admin" {
				// A host uses the admin token of tokens.json when no
				// --token says otherwise: on an address other than
				// loopback. That address is 0.0.0.0 in a network
				// namespace of its own (unshare -n), where nothing else
				// can reach it.
				needRoot(t)
				g := shmtest.StartHostWrapped(t, h.DataDir, []string{"unshare", "-n"}, "--listen", "0.0.0.0:0")
				admin := ""
				for _, l := range strings.Split(g.Banner, "\n") {
					if v, ok := strings.CutPrefix(l, "token:"); ok {
						admin = strings.TrimSpace(v)
					}
				}
				shmtest.CheckFor(t, 5*time.Second, "no warning about the missing admin token:\n"+g.Stderr(), func() bool {
					return strings.Contains(g.Stderr(), "held no admin token: made a new one")
				})
				b, _ := os.ReadFile(path)
				if len(admin) < 16 || !strings.Contains(string(b), admin) {
					t.Fatalf("host with no admin token printed token %q; tokens.json now:\n%s\nbanner:\n%s", admin, b, g.Banner)
				}
				return
			}
			h.Restart(t)
			q := mustPeer(t, h.Addr)
			q.mustDo(t, "AUTH "+token+"\n")
			if got, ok := q.value(t, "notes"); !ok || got != "kept" {
				t.Errorf("after the restart notes = %q, want %q", got, "kept")
			}
			if tt.file == "session.json" {
				if s := jsonField(t, q.meta, "session"); s == oldSession {
					t.Errorf("the host resumed session %s from a bad session file", s)
				}
				if !strings.Contains(h.Stderr(), "not resuming the previous session") {
					t.Errorf("the host did not say it set the session file aside:\n%s", h.Stderr())
				}
				if rep := q.mustDo(t, "SET notes 4 cid=c1 seq=1\nkept\n"); !strings.HasPrefix(rep, "OK") {
					t.Errorf("a write after a new session = %q", trim(rep))
				}
			}
		})
	}
}

// jsonField returns a string field of a metadata line.
func jsonField(t *testing.T, line, field string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("not JSON: %q", line)
	}
	s, _ := m[field].(string)
	return s
}

// TestFaultSecondHost: a second host started on a data directory in use
// is refused, and changes nothing there: the first host's admin token
// still works, on a connection it authenticated and on a new one.
func TestFaultSecondHost(t *testing.T) {
	const t1, t2 = "first_0123456789abcdef", "second_0123456789abcdef"
	for _, flag := range [][]string{{"--token", t2}, {"--rotate-token"}} {
		t.Run("flag="+strings.TrimPrefix(flag[0], "--"), func(t *testing.T) {
			t.Parallel()
			a := startHost(t, "--token", t1)
			p := mustPeer(t, a.Addr)
			if rep := p.mustDo(t, "AUTH "+t1+"\n"); !strings.HasPrefix(rep, "OK") {
				t.Fatalf("AUTH = %q", rep)
			}
			tokens := filepath.Join(a.DataDir, "tokens.json")
			before, err := os.ReadFile(tokens)
			if err != nil {
				t.Fatal(err)
			}
			_, errOut, code := shmtest.Run(t, nil, append([]string{"host", "--listen", "127.0.0.1:0", "--data-dir", a.DataDir}, flag...)...)
			if code == 0 || !strings.Contains(errOut, "in use by another host") {
				t.Fatalf("second host: exit %d, stderr:\n%s", code, errOut)
			}
			if after, _ := os.ReadFile(tokens); !bytes.Equal(after, before) {
				t.Errorf("the refused second host changed tokens.json:\nbefore %s\nafter  %s", before, after)
			}
			if rep := p.mustDo(t, setReq("default", "still")); !strings.HasPrefix(rep, "OK") {
				t.Errorf("SET on the first host's authenticated connection = %q", trim(rep))
			}
			q := mustPeer(t, a.Addr)
			if rep := q.mustDo(t, "AUTH "+t1+"\n"); !strings.HasPrefix(rep, "OK") {
				t.Errorf("AUTH with the first host's token = %q", trim(rep))
			}
		})
	}
}

// procStatus returns a field of /proc/pid/status in KiB.
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc/%d/status: %v", pid, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	t.Fatalf("/proc/%d/status has no %s", pid, field)
	return 0
}

// TestFaultAnnouncedPayload: connections that announce 1 GiB payloads
// and send nothing more do not make the host allocate what they
// announce: its peak RSS stays far below one announcement (eight at a
// time, three rounds, 24 GiB announced).
func TestFaultAnnouncedPayload(t *testing.T) {
	h := startHost(t)
	pid := h.PID()
	info := mustPeer(t, h.Addr)
	rss0, vm0 := procStatus(t, pid, "VmHWM"), procStatus(t, pid, "VmPeak")
	const conns, rounds, announced = 8, 3, 1 << 30
	for round := range rounds {
		for i := range conns {
			p := mustPeer(t, h.Addr)
			cmd := "WRITE"
			if i%2 == 1 {
				cmd = "SET default"
			}
			p.nc.SetDeadline(time.Now().Add(ioTimeout))
			fmt.Fprintf(p.nc, "%s %d\n", cmd, announced)
			p.nc.Write(make([]byte, 1000)) // a little of it
			p.Close()
		}
		// Each connection is served until the host reads its end: once
		// only the INFO one is left, every header has been read.
		shmtest.CheckFor(t, 20*time.Second, fmt.Sprintf("round %d: the host still has the attackers' connections open", round), func() bool {
			var hi struct {
				Connections int `json:"connections"`
			}
			rep := info.mustDo(t, "INFO\n")
			_, body, _ := strings.Cut(rep, "\n")
			json.Unmarshal([]byte(body), &hi)
			return hi.Connections == 1
		})
	}
	rss, vm := procStatus(t, pid, "VmHWM"), procStatus(t, pid, "VmPeak")
	t.Logf("%d rounds x %d connections announcing %d MiB each: peak RSS %d -> %d MiB, peak VM %d -> %d MiB",
		rounds, conns, announced>>20, rss0>>10, rss>>10, vm0>>10, vm>>10)
	if limit := int64(announced >> 10 / 8); rss > limit {
		t.Errorf("peak RSS %d MiB after announcements the host had no bytes for; one announcement is %d MiB: the host allocates announced lengths", rss>>10, announced>>20)
	}
	if rep := info.mustDo(t, "PING\n"); rep != "PONG\n" {
		t.Errorf("PING after the attack = %q", rep)
	}
}

// TestFaultRetryAfterManyClients: a write whose reply was lost, retried
// after more other clients wrote than the host keeps windows for (4200 >
// 4096), is not applied again: the retry is unknown_outcome and the
// region's version does not move.
func TestFaultRetryAfterManyClients(t *testing.T) {
	h := startHost(t)
	p := mustPeer(t, h.Addr)
	first := p.mustDo(t, "SET default 5 cid=retrier seq=1\nfirst\n")
	if !strings.HasPrefix(first, "OK ") {
		t.Fatalf("first SET = %q", first)
	}
	const others = 4200
	var batch strings.Builder
	for i := range others {
		fmt.Fprintf(&batch, "SET scratch 1 cid=other-%d seq=1\nx\n", i)
	}
	p.mustDo(t, "CREATE scratch size=64\n")
	p.nc.SetDeadline(time.Now().Add(60 * time.Second))
	sent := make(chan error, 1)
	go func() { _, err := io.WriteString(p.nc, batch.String()); sent <- err }()
	for i := range others {
		l, err := p.br.ReadString('\n')
		if err != nil || !strings.HasPrefix(l, "OK ") {
			t.Fatalf("SET %d of %d: %q, %v", i, others, l, err)
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	before := regionInfo(t, h, "default").Version
	retry := p.mustDo(t, "SET default 5 cid=retrier seq=1\nfirst\n")
	after := regionInfo(t, h, "default").Version
	if !strings.HasPrefix(retry, "ERROR unknown_outcome") || after != before {
		t.Errorf("retry after %d other clients = %q, version %d -> %d; want unknown_outcome and no new version (first answer %q)",
			others, trim(retry), before, after, trim(first))
	}
	if rep := p.mustDo(t, "SET default 6 cid=retrier seq=2\nsecond\n"); !strings.HasPrefix(rep, "OK ") {
		t.Errorf("the next write of that client = %q, want OK", trim(rep))
	}
}

// TestFaultFileLimit: a host whose open-file limit is below
// --max-connections says so at start, and a connection beyond what it
// can serve gets an ERROR line, never silence.
func TestFaultFileLimit(t *testing.T) {
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skipf("needs prlimit (util-linux): %v", err)
	}
	const limit, dial = 64, 100
	h := shmtest.StartHostWrapped(t, t.TempDir(), []string{"prlimit", fmt.Sprintf("--nofile=%d:%d", limit, limit)})
	regPath := filepath.Join(h.DataDir, "registry.json")
	cleanObjects(t, &regPath)
	served, refused := dialCount(t, h.Addr, dial, "")
	t.Logf("file limit %d: %d connections served, %d refused with ERROR limit", limit, served, refused)
	shmtest.CheckFor(t, 5*time.Second, "no warning about the file limit:\n"+h.Stderr(), func() bool {
		return strings.Contains(h.Stderr(), fmt.Sprintf("open-file limit is %d, too low for --max-connections", limit))
	})
	if served == 0 || refused == 0 {
		t.Errorf("%d served, %d refused; want both", served, refused)
	}
}

// TestFaultFileLimitLowered: a host whose file limit is lowered under
// it (prlimit --pid), so that it runs out of files below its connection
// limit, still answers each connection it cannot serve with an ERROR
// line, through a spare descriptor it gives up for that.
func TestFaultFileLimitLowered(t *testing.T) {
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skipf("needs prlimit (util-linux): %v", err)
	}
	h := startHost(t)
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", h.PID()))
	if err != nil {
		t.Skipf("cannot count the host's files: %v", err)
	}
	limit := len(ents) + 16
	if out, err := exec.Command("prlimit", "--pid", strconv.Itoa(h.PID()), fmt.Sprintf("--nofile=%d:%d", limit, limit)).CombinedOutput(); err != nil {
		t.Skipf("prlimit --pid: %v: %s", err, out)
	}
	const dial = 60
	served, refused := dialCount(t, h.Addr, dial, "open files")
	t.Logf("%d files open at start, limit lowered to %d: %d connections served, %d refused with ERROR limit", len(ents), limit, served, refused)
	if served == 0 || refused == 0 {
		t.Errorf("%d served, %d refused; want both", served, refused)
	}
}

// dialCount opens n connections to addr, keeping each open until the
// test ends, and counts those served (the metadata line) and those
// refused with "ERROR limit" (whose line must also hold refusal, if not
// empty); any other first line fails the test.
func dialCount(t *testing.T, addr string, n int, refusal string) (served, refused int) {
	t.Helper()
	for i := range n {
		nc, err := net.DialTimeout("tcp", addr, ioTimeout)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		t.Cleanup(func() { nc.Close() })
		nc.SetReadDeadline(time.Now().Add(ioTimeout))
		l, err := bufio.NewReader(nc).ReadString('\n')
		switch {
		case strings.HasPrefix(l, "{"):
			served++
		case strings.HasPrefix(l, "ERROR limit") && strings.Contains(l, refusal):
			refused++
		default:
			t.Fatalf("connection %d (%d served, %d refused so far) got %q, %v: want the metadata line or ERROR limit", i, served, refused, l, err)
		}
	}
	return served, refused
}

// TestFaultSilentHostHint: a host that accepts but sends nothing (here
// stopped with SIGSTOP) gets a hint naming the likely causes, not TLS
// alone.
func TestFaultSilentHostHint(t *testing.T) {
	h := startHost(t)
	if err := syscall.Kill(h.PID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(h.PID(), syscall.SIGCONT)
	_, errOut, code := h.CLI(t, nil, "read", "--timeout", "1s")
	if code == 0 {
		t.Fatal("read from a stopped host succeeded")
	}
	for _, w := range []string{"stopped", "overloaded", "--tls", "port"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("hint lacks %q:\n%s", w, errOut)
		}
	}
}

// TestFaultObjectRemoved: a region's object removed behind the host's
// back is restored within seconds (or, while it cannot be, writes to it
// are refused), and a write acknowledged after that survives a SIGKILL
// and restart.
func TestFaultObjectRemoved(t *testing.T) {
	h := startHost(t)
	p := mustPeer(t, h.Addr)
	p.mustDo(t, "CREATE notes size=4096\n")
	p.mustDo(t, setReq("notes", "before"))
	in := regionInfo(t, h, "notes")
	obj := filepath.Join(shmDir, in.OSName)
	if err := os.Remove(obj); err != nil {
		t.Fatal(err)
	}
	shmtest.CheckFor(t, 10*time.Second, "the host did not restore "+obj, func() bool {
		return exists(t, obj) && strings.Contains(h.Stderr(), "removed behind the host's back: restored")
	})
	// Removed again, with a directory squatting its name: the host cannot
	// restore it, and refuses writes until it can.
	if err := os.Remove(obj); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(obj, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(obj) })
	last := "before" // the content of the last SET acknowledged
	shmtest.CheckFor(t, 10*time.Second, "SET not refused while the object cannot be restored", func() bool {
		// Until the host notices, a write goes into its mapping.
		c := fmt.Sprintf("written %d", time.Now().UnixNano())
		rep := p.mustDo(t, setReq("notes", c))
		if strings.HasPrefix(rep, "OK") {
			last = c
		}
		return strings.HasPrefix(rep, "ERROR unavailable")
	})
	if got, _ := p.value(t, "notes"); got != last {
		t.Errorf("notes while writes are refused = %q, want the last acknowledged %q", got, last)
	}
	if err := os.Remove(obj); err != nil {
		t.Fatal(err)
	}
	shmtest.CheckFor(t, 10*time.Second, "SET still refused after the object could be restored", func() bool {
		return strings.HasPrefix(p.mustDo(t, setReq("notes", "after")), "OK")
	})
	h.Kill(t)
	h.Restart(t)
	q := mustPeer(t, h.Addr)
	if got, _ := q.value(t, "notes"); got != "after" {
		t.Errorf("after restart notes = %q, want the acknowledged %q", got, "after")
	}
	if strings.Contains(h.Stderr(), "content lost") {
		t.Errorf("the restart lost content:\n%s", h.Stderr())
	}
}

// TestFaultShmFull: a create refused because /dev/shm (a small tmpfs in
// a private mount namespace) has no room for its pages is a limit, not
// an internal error, and leaves no object behind. The first size fits
// the free bytes but not the free pages.
func TestFaultShmFull(t *testing.T) {
	pid := mountNS(t, "/dev/shm", "64k")
	h := shmtest.StartHostWrapped(t, t.TempDir(), nsenter(pid))
	shmRoot := nsPath(pid, "/dev/shm")
	var st syscall.Statfs_t
	if err := syscall.Statfs(shmRoot, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	before, _ := os.ReadDir(shmRoot)
	// size + CtlSize(size) <= free, but in whole pages they need more.
	size := (free - region.CtlSize(0, 0)) / 2
	p := mustPeer(t, h.Addr)
	for _, n := range []int64{size, free, 1 << 20} {
		rep := p.mustDo(t, fmt.Sprintf("CREATE big size=%d layout=raw\n", n))
		if !strings.HasPrefix(rep, "ERROR limit ") {
			t.Errorf("CREATE size=%d with %d bytes free in /dev/shm = %q, want ERROR limit", n, free, trim(rep))
		}
	}
	if after, _ := os.ReadDir(shmRoot); len(after) != len(before) {
		t.Errorf("/dev/shm held %d objects before the refused creates, %d after", len(before), len(after))
	}
	if rep := p.mustDo(t, "CREATE small size=64\n"); !strings.HasPrefix(rep, "JSON") {
		t.Errorf("CREATE small = %q, want it to fit", trim(rep))
	}
}

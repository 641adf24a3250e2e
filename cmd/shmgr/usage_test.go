package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shmgr/shmgr/internal/shmtest"
)

// TestCLIExitCodes runs commands a newcomer gets wrong, and checks the
// exit code (0 success, 1 failure, 2 bad usage) and that the message says
// what was wrong and what to do.
func TestCLIExitCodes(t *testing.T) {
	t.Parallel()
	h := startHost(t)
	tests := []struct {
		name     string
		args     []string // a client command gets --host h.Addr unless it names one
		code     int
		stderr   []string // each must appear
		unwanted []string // none may appear
	}{
		{name: "host/default-size-negative", args: []string{"host", "--default-size", "-1", "--data-dir", "DIR"}, code: 2,
			stderr:   []string{"--default-size -1", "at least 6 bytes", "--max-region-size", "Run 'shmgr --help'"},
			unwanted: []string{"6 to 4294967300 bytes"}},
		{name: "host/default-size-huge", args: []string{"host", "--default-size", "99999999999", "--max-region-size", "999999999999", "--data-dir", "DIR"}, code: 2,
			stderr: []string{"--default-size 99999999999", "at most 4294967300 (4.0 GiB, the utf8 layout's"}},
		{name: "host/log-level-unknown", args: []string{"host", "--log-level", "loud", "--data-dir", "DIR"}, code: 2,
			stderr: []string{`--log-level "loud": use debug, info, warn or error`}},
		{name: "read/port-out-of-range", args: []string{"read", "--host", "127.0.0.1:99999"}, code: 2,
			stderr: []string{`--host "127.0.0.1:99999": port "99999" is not a TCP port: use 1 to 65535, such as 127.0.0.1:9410`, "Run 'shmgr --help'"}},
		{name: "read/port-not-a-number", args: []string{"read", "--host", "127.0.0.1:http"}, code: 2,
			stderr: []string{`port "http" is not a TCP port`}},
		{name: "read/length-negative", args: []string{"read", "--length", "-1"}, code: 2,
			stderr: []string{"--length -1: must be 0 or more (leave it out to read to the end)"}},
		{name: "read/offset-negative", args: []string{"read", "--offset", "-1"}, code: 2,
			stderr: []string{"--offset -1: must be 0 or more"}},
		{name: "read/not-found", args: []string{"read", "--id", "notes"}, code: 1,
			stderr: []string{"create it with 'shmgr create notes --host " + h.Addr + "'", "'shmgr ls --host " + h.Addr + "'"}},
		{name: "write/not-found", args: []string{"write", "--id", "sensors", "x"}, code: 1,
			stderr: []string{"create it with 'shmgr create sensors"}},
		{name: "watch/not-found", args: []string{"watch", "--id", "sensors", "--json"}, code: 1,
			stderr: []string{"create it with 'shmgr create sensors"}},
		{name: "watch/port-out-of-range", args: []string{"watch", "--host", "[::1]:70000"}, code: 2,
			stderr: []string{`port "70000" is not a TCP port`}},
		{name: "read/ok", args: []string{"read"}, code: 0},
		{name: "read/bracketed-no-port", args: []string{"read", "--host", "[::1", "--timeout", "1s"}, code: 2,
			stderr: []string{`--host "[::1": `, "use HOST or HOST:PORT"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := slicesReplace(tt.args, "DIR", t.TempDir())
			if args[0] != "host" && !contains(args, "--host") {
				args = append(args, "--host", h.Addr)
			}
			_, errOut, code := shmtest.Run(t, nil, args...)
			if code != tt.code {
				t.Errorf("shmgr %v: exit %d, want %d\nstderr: %s", args, code, tt.code, errOut)
			}
			for _, s := range tt.stderr {
				if !strings.Contains(errOut, s) {
					t.Errorf("shmgr %v: stderr lacks %q:\n%s", args, s, errOut)
				}
			}
			for _, s := range tt.unwanted {
				if strings.Contains(errOut, s) {
					t.Errorf("shmgr %v: stderr has %q:\n%s", args, s, errOut)
				}
			}
		})
	}
}

func slicesReplace(in []string, old, new string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		if s == old {
			s = new
		}
		out[i] = s
	}
	return out
}

func contains(in []string, s string) bool {
	for _, x := range in {
		if x == s {
			return true
		}
	}
	return false
}

// TestCLIEmptyContent: write from an empty standard input (/dev/null)
// writes empty content and says so, without the Ctrl-D prompt meant for
// a terminal; read --json and watch --json then still carry "content".
func TestCLIEmptyContent(t *testing.T) {
	t.Parallel()
	h := startHost(t)
	h.MustCLI(t, "write", "something")
	// shmtest.Run with nil stdin gives the command /dev/null.
	_, errOut, code := h.CLI(t, nil, "write")
	if code != 0 {
		t.Fatalf("write < /dev/null: exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, "standard input was empty: writing empty content (0 bytes)") || strings.Contains(errOut, "Ctrl-D") {
		t.Errorf("write < /dev/null: stderr = %q, want it to say the input was empty, and no Ctrl-D prompt", errOut)
	}
	if got := readContent(t, h, ""); got != "" {
		t.Errorf("read after writing empty stdin = %q, want empty", got)
	}
	for _, args := range [][]string{{"read", "--json"}, {"watch", "--json", "--count", "1"}} {
		out := h.MustCLI(t, args...)
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("shmgr %v: %v\n%s", args, err, out)
		}
		if c, ok := m["content"]; !ok || c != "" {
			t.Errorf("shmgr %v on an empty region: content = %v (present %v), want \"\" always present\n%s", args, c, ok, out)
		}
	}
}

// TestCLILocalTokenOwner: a second host on this machine, with another
// data directory, is not offered the first one's token (it used to
// answer "invalid token"); the hint says where the token came from and
// how to pass the right one. The host's own data directory's token is
// offered and works.
func TestCLILocalTokenOwner(t *testing.T) {
	t.Parallel()
	first := startHost(t, "--rotate-token") // loopback, but requires its token
	second := startHost(t, "--rotate-token")
	if !exists(t, filepath.Join(first.DataDir, "tokens.json")) {
		t.Fatal("the first host made no tokens.json")
	}
	// The first host's directory, against the second host.
	_, errOut, code := shmtest.Run(t, nil, "read", "--host", second.Addr, "--data-dir", first.DataDir)
	if code != 1 {
		t.Errorf("read from the second host with the first's data directory: exit %d, want 1\n%s", code, errOut)
	}
	for _, s := range []string{"requires a token", filepath.Join(first.DataDir, "tokens.json") + " was not offered: it belongs to the host of that data directory", "--token", "--data-dir"} {
		if !strings.Contains(errOut, s) {
			t.Errorf("stderr lacks %q:\n%s", s, errOut)
		}
	}
	if strings.Contains(errOut, "invalid token") {
		t.Errorf("the first host's token was offered to the second host:\n%s", errOut)
	}
	// Its own data directory's token is offered to each host.
	for _, h := range []*shmtest.Host{first, second} {
		if _, errOut, code := shmtest.Run(t, nil, "read", "--host", h.Addr, "--data-dir", h.DataDir); code != 0 {
			t.Errorf("read with the host's own data directory: exit %d\n%s", code, errOut)
		}
	}
	// A wrong token, by flag and by environment: the hint names it.
	_, errOut, _ = shmtest.Run(t, nil, "read", "--host", second.Addr, "--token", "shm_wrong", "--data-dir", t.TempDir())
	if !strings.Contains(errOut, "the host refused the token given with --token") {
		t.Errorf("a wrong --token: stderr lacks where it came from:\n%s", errOut)
	}
	_, errOut, _ = shmtest.RunEnv(t, nil, []string{"SHMGR_TOKEN=shm_wrong"}, "read", "--host", second.Addr, "--data-dir", t.TempDir())
	if !strings.Contains(errOut, "the host refused the token in $SHMGR_TOKEN") {
		t.Errorf("a wrong SHMGR_TOKEN: stderr lacks where it came from:\n%s", errOut)
	}
	// A directory that claims to be the second host's (its instance id)
	// with another admin token: offered, refused, and the hint names the
	// file it came from.
	fake := t.TempDir()
	b, err := os.ReadFile(filepath.Join(second.DataDir, "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tf struct {
		Tokens []map[string]any `json:"tokens"`
	}
	if err := json.Unmarshal(b, &tf); err != nil || len(tf.Tokens) == 0 {
		t.Fatalf("tokens.json: %v\n%s", err, b)
	}
	for _, tok := range tf.Tokens {
		tok["token"] = "shm_" + strings.Repeat("0", 40)
	}
	b, _ = json.Marshal(tf)
	reg, _ := json.Marshal(map[string]any{"format": 1, "instance": shmtest.Instance(t, second.DataDir)})
	if os.WriteFile(filepath.Join(fake, "tokens.json"), b, 0o600) != nil || os.WriteFile(filepath.Join(fake, "registry.json"), reg, 0o600) != nil {
		t.Fatal("writing the fake data directory")
	}
	_, errOut, code = shmtest.Run(t, nil, "read", "--host", second.Addr, "--data-dir", fake)
	if want := "the token came from " + filepath.Join(fake, "tokens.json") + " (the data directory of a host on this machine), and this host refused it"; code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("a refused local token: exit %d, stderr lacks %q:\n%s", code, want, errOut)
	}
}

// TestHostLogLevel: an ordinary client's connection opening and closing
// is logged at debug level, so a CLI call adds nothing to the host's log
// at the default level; --log-level debug shows them, and --quiet keeps
// the start-up lines out too.
func TestHostLogLevel(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		args   []string
		conns  bool // "connection from" lines expected
		starts bool // the INFO start-up lines expected
	}{
		{name: "default", conns: false, starts: true},
		{name: "debug", args: []string{"--log-level", "debug"}, conns: true, starts: true},
		{name: "warn", args: []string{"--log-level", "warn"}, conns: false, starts: false},
		{name: "quiet", args: []string{"--quiet"}, conns: false, starts: false},
	} {
		t.Run("level="+tt.name, func(t *testing.T) {
			t.Parallel()
			h := startHost(t, tt.args...)
			h.MustCLI(t, "write", "x")
			h.MustCLI(t, "read")
			h.Stop(t)
			log := h.Stderr()
			if got := strings.Contains(log, "connection from 127.0.0.1:"); got != tt.conns {
				t.Errorf("%v: connection lines in the log = %v, want %v\n%s", tt.args, got, tt.conns, log)
			}
			if got := strings.Contains(log, "level=INFO"); got != tt.starts {
				t.Errorf("%v: INFO lines in the log = %v, want %v\n%s", tt.args, got, tt.starts, log)
			}
		})
	}
}

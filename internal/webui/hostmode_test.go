package webui

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/daemon"
)

// TestHostSettings: Host mode runs the host "shmgr host" runs, with the
// settings the page sends (or the CLI's defaults), and says which are in
// force; settings no host could run with are refused with bad_setting.
func TestHostSettings(t *testing.T) {
	def := daemon.DefaultConfig("")
	defaults := map[string]any{
		"tls": false, "lock_timeout_ms": float64(def.LockTimeout.Milliseconds()), "idle_timeout_ms": float64(def.IdleTimeout.Milliseconds()),
		"max_connections": float64(def.MaxConns), "max_request": float64(def.MaxRequest), "max_regions": float64(def.MaxRegions),
		"max_region_size": float64(def.MaxRegionSize),
	}
	for _, tc := range []struct {
		name string
		req  map[string]any
		// want are the settings in force that differ from the defaults.
		want map[string]any
		// code, if set, is the error the start must fail with.
		code string
		// check tests the running host's behaviour.
		check func(t *testing.T, st map[string]any)
	}{{
		name: "settings=defaults",
		check: func(t *testing.T, st map[string]any) {
			if st["tls_fingerprint"] != nil {
				t.Errorf("tls_fingerprint %v without TLS", st["tls_fingerprint"])
			}
		},
	}, {
		name: "tls=on",
		req:  map[string]any{"tls": true},
		want: map[string]any{"tls": true},
		check: func(t *testing.T, st map[string]any) {
			fp, _ := st["tls_fingerprint"].(string)
			if fp == "" {
				t.Fatalf("status %v has no tls_fingerprint", st)
			}
			d := &net.Dialer{Timeout: 10 * time.Second}
			c, err := tls.DialWithDialer(d, "tcp", st["listen"].(string), &tls.Config{InsecureSkipVerify: true})
			if err != nil {
				t.Fatalf("TLS dial of the host: %v", err)
			}
			defer c.Close()
			sum := sha256.Sum256(c.ConnectionState().PeerCertificates[0].Raw)
			if got := hex.EncodeToString(sum[:]); !strings.EqualFold(strings.ReplaceAll(fp, ":", ""), got) {
				t.Errorf("tls_fingerprint %s, but the certificate served hashes to %s", fp, got)
			}
		},
	}, {
		name: "limits=set",
		req:  map[string]any{"lock_timeout_ms": 250, "idle_timeout_ms": 0, "max_connections": 1, "max_request": 4096, "max_regions": 3, "max_region_size": 1 << 20},
		want: map[string]any{"lock_timeout_ms": float64(250), "idle_timeout_ms": float64(0), "max_connections": float64(1), "max_request": float64(4096),
			"max_regions": float64(3), "max_region_size": float64(1 << 20)},
		check: func(t *testing.T, st map[string]any) {
			// The limit is the host's: a second connection is refused.
			addr := st["listen"].(string)
			first := dialLine(t, addr)
			if !strings.HasPrefix(first, "{") {
				t.Fatalf("first connection: %q, want the metadata line", first)
			}
			if second := dialLine(t, addr); !strings.HasPrefix(second, "ERROR limit") {
				t.Errorf("second connection with max_connections 1: %q, want ERROR limit", second)
			}
		},
	}, {
		name: "lock_timeout_ms=0",
		req:  map[string]any{"lock_timeout_ms": 0},
		code: "bad_setting",
	}, {
		name: "idle_timeout_ms=-1",
		req:  map[string]any{"idle_timeout_ms": -1},
		code: "bad_setting",
	}, {
		name: "max_connections=0",
		req:  map[string]any{"max_connections": 0},
		code: "bad_setting",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t)
			s := ts.login(t)
			_, stopped := s.do("GET", "/api/state", nil, nil)
			if host, _ := stopped["host"].(map[string]any); !sameSettings(host["settings"], defaults) {
				t.Errorf("stopped status settings %v, want the defaults of shmgr host %v", host["settings"], defaults)
			}
			req := map[string]any{"bind": "127.0.0.1", "port": 0}
			for k, v := range tc.req {
				req[k] = v
			}
			if tc.code != "" {
				resp, out := s.post("/api/host/start", req)
				wantError(t, "start with "+tc.name, resp, out, http.StatusBadRequest, tc.code)
				return
			}
			st := s.mustPost("/api/host/start", req)
			t.Cleanup(func() { s.mustPost("/api/host/stop", map[string]any{}) })
			want := map[string]any{}
			for k, v := range defaults {
				want[k] = v
			}
			for k, v := range tc.want {
				want[k] = v
			}
			if !sameSettings(st["settings"], want) {
				t.Errorf("settings in force %v, want %v", st["settings"], want)
			}
			tc.check(t, st)
		})
	}
}

// sameSettings reports whether a status's settings are want.
func sameSettings(got any, want map[string]any) bool {
	m, ok := got.(map[string]any)
	if !ok || len(m) != len(want) {
		return false
	}
	for k, v := range want {
		if m[k] != v {
			return false
		}
	}
	return true
}

// dialLine connects to addr and returns the first line it sends.
func dialLine(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("first line from %s: %v", addr, err)
	}
	return line
}

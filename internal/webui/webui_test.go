package webui

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shmtest"
	"github.com/shmgr/shmgr/internal/webui/dist"
)

// testToken is the per-launch token of the test servers.
const testToken = "0123456789abcdef0123456789abcdef"

// testAssets stand in for internal/webui/dist.
var testAssets = fstest.MapFS{
	"index.html":     {Data: []byte(`<!doctype html><meta name="csrf-token" content="{{.CSRF}}"><title>shmgr {{.Version}}</title>`)},
	"app.js":         {Data: []byte(`"use strict";`)},
	"style.css":      {Data: []byte(`body{}`)},
	"img/logo.svg":   {Data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`)},
	".hidden":        {Data: []byte(`secret`)},
	"img/.gitignore": {Data: []byte(`x`)},
}

// testServer is a Server behind httptest, with a data directory whose
// shared-memory objects are removed when the test ends.
type testServer struct {
	s    *Server
	ts   *httptest.Server
	host string // 127.0.0.1:port
	port string
	dir  string
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	dir := t.TempDir()
	s, err := New(Config{Assets: testAssets, DataDir: dir, Version: "test", Token: testToken, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown = %v", err)
		}
		ts.Close()
		shmtest.RemoveObjects(t, dir)
	})
	u := strings.TrimPrefix(ts.URL, "http://")
	_, port, _ := net.SplitHostPort(u)
	return &testServer{s: s, ts: ts, host: u, port: port, dir: dir}
}

// session is a signed-in browser: cookie jar, CSRF token, Origin.
type session struct {
	t    *testing.T
	ts   *testServer
	c    *http.Client
	csrf string
}

var csrfMeta = regexp.MustCompile(`name="csrf-token" content="([0-9a-f]+)"`)

func (ts *testServer) login(t *testing.T) *session {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Get(ts.ts.URL + "/?token=" + testToken)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfMeta.FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("login: %s, body %q; want 200 and the index with a CSRF token", resp.Status, body)
	}
	return &session{t: t, ts: ts, c: c, csrf: string(m[1])}
}

// do sends a request with the session's cookie; hdr adds headers.
func (s *session) do(method, path string, body []byte, hdr map[string]string) (*http.Response, map[string]any) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.ts.ts.URL+path, bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			// The client looks cookies up by req.Host: send the session's.
			req.Host = v
			for _, c := range s.c.Jar.Cookies(req.URL) {
				req.AddCookie(c)
			}
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := s.c.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out); err != nil {
			s.t.Fatalf("%s %s: bad JSON %q: %v", method, path, raw, err)
		}
	}
	return resp, out
}

// post sends a JSON POST as the page does: Origin, CSRF header, JSON.
func (s *session) post(path string, v any) (*http.Response, map[string]any) {
	s.t.Helper()
	b, _ := json.Marshal(v)
	return s.do("POST", path, b, map[string]string{"Origin": "http://" + s.ts.host, csrfHeader: s.csrf, "Content-Type": "application/json"})
}

// mustPost is post that fails the test unless the reply is 200.
func (s *session) mustPost(path string, v any) map[string]any {
	s.t.Helper()
	resp, out := s.post(path, v)
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("POST %s = %s %v; want 200", path, resp.Status, out)
	}
	return out
}

// startHost starts Host mode on a free loopback port.
func (s *session) startHost() map[string]any {
	s.t.Helper()
	return s.mustPost("/api/host/start", map[string]any{"bind": "127.0.0.1", "port": 0})
}

func num(v any) uint64 { f, _ := v.(float64); return uint64(f) }

// wantError checks a JSON error reply.
func wantError(t *testing.T, what string, resp *http.Response, out map[string]any, status int, code string) {
	t.Helper()
	if resp.StatusCode != status || out["code"] != code || out["error"] == "" || out["error"] == nil {
		t.Errorf("%s = %d %v; want %d with code %q and an error message", what, resp.StatusCode, out, status, code)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want JSON", what, ct)
	}
}

func TestHostHeader(t *testing.T) {
	ts := newTestServer(t)
	s := ts.login(t)
	for _, h := range []string{"evil.example:" + ts.port, "127.0.0.1:1", "127.0.0.1", "localhost.evil.example:" + ts.port,
		"127.0.0.1.nip.io:" + ts.port, "0.0.0.0:" + ts.port, "[::2]:" + ts.port} {
		resp, out := s.do("GET", "/api/state", nil, map[string]string{"Host": h})
		wantError(t, "GET /api/state with Host "+h, resp, out, http.StatusMisdirectedRequest, "bad_host")
	}
	for _, h := range []string{"127.0.0.1:" + ts.port, "localhost:" + ts.port, "LocalHost:" + ts.port, "[::1]:" + ts.port} {
		resp, out := s.do("GET", "/api/state", nil, map[string]string{"Host": h})
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /api/state with Host %s = %s %v; want 200", h, resp.Status, out)
		}
	}
}

func TestOrigin(t *testing.T) {
	ts := newTestServer(t)
	s := ts.login(t)
	body := []byte(`{}`)
	base := map[string]string{csrfHeader: s.csrf, "Content-Type": "application/json"}
	with := func(extra map[string]string) map[string]string {
		h := map[string]string{}
		for k, v := range base {
			h[k] = v
		}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	for name, hdr := range map[string]map[string]string{
		"foreign origin":     with(map[string]string{"Origin": "http://evil.example"}),
		"other port":         with(map[string]string{"Origin": "http://127.0.0.1:1"}),
		"null origin":        with(map[string]string{"Origin": "null"}),
		"https origin":       with(map[string]string{"Origin": "https://" + ts.host}),
		"other name":         with(map[string]string{"Origin": "http://localhost:" + ts.port}),
		"no origin":          with(nil),
		"sec-fetch cross":    with(map[string]string{"Origin": "http://" + ts.host, "Sec-Fetch-Site": "cross-site"}),
		"sec-fetch samesite": with(map[string]string{"Origin": "http://" + ts.host, "Sec-Fetch-Site": "same-site"}),
	} {
		resp, out := s.do("POST", "/api/host/stop", body, hdr)
		wantError(t, "POST with "+name, resp, out, http.StatusForbidden, "cross_origin")
	}
	// A cross-site page cannot read state either, even with the cookie.
	resp, out := s.do("GET", "/api/state", nil, map[string]string{"Sec-Fetch-Site": "cross-site"})
	wantError(t, "GET with Sec-Fetch-Site cross-site", resp, out, http.StatusForbidden, "cross_origin")
	resp, out = s.do("GET", "/api/state", nil, map[string]string{"Origin": "http://evil.example"})
	wantError(t, "GET with a foreign Origin", resp, out, http.StatusForbidden, "cross_origin")
	// The page's own requests pass.
	resp, out = s.do("POST", "/api/host/stop", body, with(map[string]string{"Origin": "http://" + ts.host, "Sec-Fetch-Site": "same-origin"}))
	if resp.StatusCode != http.StatusOK {
		t.Errorf("same-origin POST = %s %v; want 200", resp.Status, out)
	}
}

func TestTokenExchange(t *testing.T) {
	ts := newTestServer(t)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(url string, cookies ...*http.Cookie) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		for _, c := range cookies {
			req.AddCookie(c)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, tok := range []string{"wrong", "", testToken + "0", strings.ToUpper(testToken)} {
		resp := get(ts.ts.URL + "/?token=" + tok)
		if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
			t.Errorf("GET /?token=%s = %s with %d cookies; want 403 and none", tok, resp.Status, len(resp.Cookies()))
		}
	}
	resp := get(ts.ts.URL + "/?token=" + testToken)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("GET /?token=<right> = %s, Location %q; want 303 to /", resp.Status, resp.Header.Get("Location"))
	}
	cs := resp.Cookies()
	if len(cs) != 1 {
		t.Fatalf("token exchange set %d cookies, want 1", len(cs))
	}
	c := cs[0]
	if c.Name != cookiePrefix+ts.port || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Value == testToken || len(c.Value) < 32 {
		t.Errorf("cookie = %+v; want %s, HttpOnly, SameSite=Strict, Path=/, a secret other than the URL token", c, cookiePrefix+ts.port)
	}
	if sc := resp.Header.Get("Set-Cookie"); !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Strict") {
		t.Errorf("Set-Cookie = %q", sc)
	}
	for _, p := range []string{"/", "/api/state", "/app.js", "/api/events"} {
		if r := get(ts.ts.URL + p); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without the cookie = %s, want 401", p, r.Status)
		}
		if r := get(ts.ts.URL+p, &http.Cookie{Name: c.Name, Value: strings.Repeat("0", len(c.Value))}); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s with a forged cookie = %s, want 401", p, r.Status)
		}
		if r := get(ts.ts.URL+p, &http.Cookie{Name: cookiePrefix + "1", Value: c.Value}); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s with another port's cookie name = %s, want 401", p, r.Status)
		}
	}
	if r := get(ts.ts.URL+"/api/state", c); r.StatusCode != http.StatusOK {
		t.Errorf("GET /api/state with the cookie = %s, want 200", r.Status)
	}
}

func TestCSRF(t *testing.T) {
	ts := newTestServer(t)
	s := ts.login(t)
	origin := "http://" + ts.host
	for name, hdr := range map[string]map[string]string{
		"missing": {"Origin": origin, "Content-Type": "application/json"},
		"wrong":   {"Origin": origin, "Content-Type": "application/json", csrfHeader: strings.Repeat("f", len(s.csrf))},
		"short":   {"Origin": origin, "Content-Type": "application/json", csrfHeader: s.csrf[:8]},
		"token":   {"Origin": origin, "Content-Type": "application/json", csrfHeader: testToken},
	} {
		for _, p := range []string{"/api/host/start", "/api/host/stop", "/api/write", "/api/client/connect"} {
			resp, out := s.do("POST", p, []byte(`{}`), hdr)
			wantError(t, "POST "+p+" with a "+name+" CSRF header", resp, out, http.StatusForbidden, "csrf")
		}
	}
	resp, out := s.do("POST", "/api/host/stop", []byte(`{}`), map[string]string{"Origin": origin, csrfHeader: s.csrf, "Content-Type": "text/plain"})
	wantError(t, "POST text/plain", resp, out, http.StatusUnsupportedMediaType, "bad_request")
	resp, out = s.do("POST", "/api/host/stop", []byte(`{}`), map[string]string{"Origin": origin, csrfHeader: s.csrf, "Content-Type": "application/json; charset=utf-8"})
	if resp.StatusCode != http.StatusOK {
		t.Errorf("POST with the CSRF header = %s %v, want 200", resp.Status, out)
	}
	resp, out = s.do("GET", "/api/host/stop", nil, nil)
	wantError(t, "GET /api/host/stop", resp, out, http.StatusMethodNotAllowed, "method")
	resp, out = s.do("PUT", "/api/host/stop", []byte(`{}`), map[string]string{"Origin": origin, csrfHeader: s.csrf, "Content-Type": "application/json"})
	wantError(t, "PUT /api/host/stop", resp, out, http.StatusMethodNotAllowed, "method")
	resp, out = s.do("POST", "/api/state", []byte(`{}`), map[string]string{"Origin": origin, csrfHeader: s.csrf, "Content-Type": "application/json"})
	wantError(t, "POST /api/state", resp, out, http.StatusMethodNotAllowed, "method")
}

func TestSecurityHeaders(t *testing.T) {
	ts := newTestServer(t)
	s := ts.login(t)
	check := func(what string, h http.Header) {
		t.Helper()
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "object-src 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: Content-Security-Policy %q lacks %q", what, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: Content-Security-Policy %q allows inline or eval", what, csp)
		}
		for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"} {
			if got := h.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", what, k, got, v)
			}
		}
	}
	for _, p := range []string{"/", "/app.js", "/style.css", "/api/state", "/nope", "/api/nope"} {
		resp, _ := s.do("GET", p, nil, nil)
		check("GET "+p, resp.Header)
	}
	resp, _ := s.do("GET", "/api/state", nil, map[string]string{"Host": "evil.example:" + ts.port})
	check("bad Host", resp.Header)
	resp, _ = s.post("/api/write", map[string]any{"target": "host"})
	check("POST error", resp.Header)
	r, err := http.Get(ts.ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	check("no cookie", r.Header)
}

func TestErrorsAreJSON(t *testing.T) {
	ts := newTestServer(t)
	s := ts.login(t)
	resp, out := s.do("GET", "/api/nope", nil, nil)
	wantError(t, "GET /api/nope", resp, out, http.StatusNotFound, "not_found")
	resp, out = s.do("GET", "/nope.js", nil, nil)
	wantError(t, "GET /nope.js", resp, out, http.StatusNotFound, "not_found")
	origin := map[string]string{"Origin": "http://" + ts.host, csrfHeader: s.csrf, "Content-Type": "application/json"}
	resp, out = s.do("POST", "/api/host/start", []byte(`{"bind":`), origin)
	wantError(t, "POST truncated JSON", resp, out, http.StatusBadRequest, "bad_request")
	resp, out = s.do("POST", "/api/host/start", []byte(`{"bind":"127.0.0.1","colour":"blue"}`), origin)
	wantError(t, "POST an unknown field", resp, out, http.StatusBadRequest, "bad_request")
	big := append(append([]byte(`{"target":"host","content":"`), bytes.Repeat([]byte("a"), maxBody)...), `"}`...)
	resp, out = s.do("POST", "/api/write", big, origin)
	wantError(t, "POST a body over the limit", resp, out, http.StatusRequestEntityTooLarge, "body_too_large")
	resp, out = s.post("/api/write", map[string]any{"target": "host", "content": "x"})
	wantError(t, "write with no host", resp, out, http.StatusConflict, "host_stopped")
	resp, out = s.post("/api/write", map[string]any{"target": "client", "content": "x"})
	wantError(t, "write with no client", resp, out, http.StatusConflict, "not_connected")
	resp, out = s.post("/api/write", map[string]any{"target": "elsewhere", "content": "x"})
	wantError(t, "write to no target", resp, out, http.StatusBadRequest, "bad_request")
	s.startHost()
	resp, out = s.post("/api/host/start", map[string]any{"port": 0})
	wantError(t, "start a second host", resp, out, http.StatusConflict, "host_running")
	resp, out = s.post("/api/host/create", map[string]any{"id": "-bad"})
	wantError(t, "create a bad id", resp, out, http.StatusBadRequest, "bad_id")
	resp, out = s.post("/api/host/create", map[string]any{"id": "default"})
	wantError(t, "create an existing id", resp, out, http.StatusConflict, "exists")
	resp, out = s.post("/api/host/delete", map[string]any{"id": "default"})
	wantError(t, "delete the default region", resp, out, http.StatusForbidden, "forbidden")
	resp, out = s.post("/api/write", map[string]any{"target": "host", "region": "nope", "content": "x"})
	wantError(t, "write a missing region", resp, out, http.StatusNotFound, "no_region")
}

func TestStatic(t *testing.T) {
	ts := newTestServer(t)
	s := ts.login(t)
	for p, ct := range map[string]string{"/app.js": "text/javascript", "/style.css": "text/css", "/img/logo.svg": "image/svg+xml", "/": "text/html"} {
		resp, _ := s.do("GET", p, nil, nil)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), ct) {
			t.Errorf("GET %s = %s, %q; want 200 %s", p, resp.Status, resp.Header.Get("Content-Type"), ct)
		}
	}
	for _, p := range []string{"/.hidden", "/img/.gitignore", "/img", "/img/", "/../webui_test.go", "/index.html/x"} {
		resp, out := s.do("GET", p, nil, nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %s %v, want 404", p, resp.Status, out)
		}
	}
	resp, _ := s.do("HEAD", "/app.js", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD /app.js = %s, want 200", resp.Status)
	}
	if _, err := New(Config{Assets: fstest.MapFS{"app.js": {}}}); err == nil {
		t.Error("New without index.html succeeded, want an error")
	}
}

// TestWriteLimit checks that content over the region's maximum is refused
// whole, with the maximum in the message, and leaves the region as it
// was.
func TestWriteLimit(t *testing.T) {
	ts := newTestServer(t)
	s := ts.login(t)
	s.startHost()
	max := strings.Repeat("é", 2045) + "a" // 4091 bytes
	out := s.mustPost("/api/write", map[string]any{"target": "host", "content": max})
	v := num(out["version"])
	resp, out := s.post("/api/write", map[string]any{"target": "host", "content": max + "b"})
	wantError(t, "write 4092 bytes", resp, out, http.StatusRequestEntityTooLarge, "too_large")
	if msg, _ := out["error"].(string); !strings.Contains(msg, "4091") || !strings.Contains(msg, "4092") {
		t.Errorf("refusal %q does not name the size (4092) and the maximum (4091)", msg)
	}
	if num(out["max"]) != 4091 || num(out["size"]) != 4092 {
		t.Errorf("refusal = %v, want max 4091 and size 4092", out)
	}
	b, cur := readDefault(t, ts)
	if string(b) != max || cur != v {
		t.Errorf("after the refusal the region holds %d bytes at version %d, want the 4091 bytes at version %d", len(b), cur, v)
	}
}

func readDefault(t *testing.T, ts *testServer) ([]byte, uint64) {
	t.Helper()
	hs, _ := ts.s.sessions()
	r, err := hs.h.Default()
	if err != nil {
		t.Fatal(err)
	}
	b, v, err := hostTarget{hs: hs, r: r}.read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return b, v
}

// TestWriteConflict checks that a write at an old version is refused with
// the current version and content, and that the region keeps the other
// writer's content.
func TestWriteConflict(t *testing.T) {
	ts := newTestServer(t)
	s := ts.login(t)
	s.startHost()
	_, v0 := readDefault(t, ts)
	out := s.mustPost("/api/write", map[string]any{"target": "host", "content": "theirs", "if_version": v0})
	v1 := num(out["version"])
	if v1 != v0+1 {
		t.Fatalf("write at version %d gave version %d, want %d", v0, v1, v0+1)
	}
	resp, out := s.post("/api/write", map[string]any{"target": "host", "content": "mine", "if_version": v0})
	wantError(t, "write at a stale version", resp, out, http.StatusConflict, "conflict")
	if num(out["current"]) != v1 || num(out["expected"]) != v0 || out["content"] != "theirs" {
		t.Errorf("conflict reply = %v; want current %d, expected %d, content \"theirs\"", out, v1, v0)
	}
	if msg, _ := out["error"].(string); !strings.Contains(msg, "version "+strconv.FormatUint(v1, 10)) {
		t.Errorf("conflict message %q does not name version %d", msg, v1)
	}
	if b, v := readDefault(t, ts); string(b) != "theirs" || v != v1 {
		t.Errorf("region = %q at %d, want \"theirs\" at %d", b, v, v1)
	}
	// Overwrite: conditional on the version the conflict reported.
	out = s.mustPost("/api/write", map[string]any{"target": "host", "content": "mine", "if_version": v1})
	if b, _ := readDefault(t, ts); string(b) != "mine" || num(out["version"]) != v1+1 {
		t.Errorf("after overwrite region = %q, reply %v", b, out)
	}
}

// event is one Server-Sent Event.
type event struct {
	name string
	data map[string]any
	at   time.Time
}

// openStream reads GET /api/events?region= in the background.
func (s *session) openStream(region string) <-chan event {
	s.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", s.ts.ts.URL+"/api/events?region="+region, nil)
	resp, err := s.c.Do(req)
	if err != nil {
		cancel()
		s.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		s.t.Fatalf("GET /api/events = %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	ch := make(chan event, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 4<<20)
		var name string
		var data []byte
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				name = line[7:]
			case strings.HasPrefix(line, "data: "):
				data = []byte(line[6:])
			case line == "" && name != "":
				ev := event{name: name, at: time.Now()}
				json.Unmarshal(data, &ev.data)
				select {
				case ch <- ev:
				case <-ctx.Done():
					return
				}
				name, data = "", nil
			}
		}
	}()
	s.t.Cleanup(func() {
		cancel()
		resp.Body.Close()
		<-done
	})
	return ch
}

// waitEvent returns the first event called name for which ok holds.
func waitEvent(t *testing.T, ch <-chan event, name string, ok func(map[string]any) bool) event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, open := <-ch:
			if !open {
				t.Fatalf("stream ended while waiting for %s", name)
			}
			if ev.name == name && ok(ev.data) {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event after 10s", name)
		}
	}
}

// TestEventsPush checks that the stream pushes the host's state and every
// commit, from the GUI and from any other writer.
func TestEventsPush(t *testing.T) {
	ts := newTestServer(t)
	s := ts.login(t)
	ch := s.openStream("")
	waitEvent(t, ch, "host", func(d map[string]any) bool { return d["running"] == false })
	s.startHost()
	waitEvent(t, ch, "host", func(d map[string]any) bool { return d["running"] == true && d["default"] == "default" })
	first := waitEvent(t, ch, "hostContent", func(d map[string]any) bool { return d["region"] == "default" })
	v0 := num(first.data["version"])
	if first.data["max"] != float64(4091) || first.data["layout"] != "utf8" {
		t.Errorf("hostContent = %v, want max 4091 and layout utf8", first.data)
	}
	s.mustPost("/api/write", map[string]any{"target": "host", "content": "from the page", "if_version": v0})
	waitEvent(t, ch, "hostContent", func(d map[string]any) bool { return d["content"] == "from the page" && num(d["version"]) == v0+1 })

	// Another writer: straight into the region, as a local client would.
	hs, _ := ts.s.sessions()
	r, _ := hs.h.Default()
	var worst time.Duration
	for i := range 5 {
		want := "from elsewhere " + strconv.Itoa(i)
		start := time.Now()
		if err := r.Do(func(rr *region.Region) error { _, err := rr.Write([]byte(want), region.WriteOptions{}); return err }); err != nil {
			t.Fatal(err)
		}
		ev := waitEvent(t, ch, "hostContent", func(d map[string]any) bool { return d["content"] == want })
		worst = max(worst, ev.at.Sub(start))
	}
	t.Logf("a commit reached the stream within %v (worst of 5)", worst)
	if worst > time.Second {
		t.Errorf("a commit took %v to reach the stream, want well under a second", worst)
	}

	// A region created elsewhere appears; one the page shows and that is
	// deleted is reported gone.
	s.mustPost("/api/host/create", map[string]any{"id": "notes", "size": 8192})
	waitEvent(t, ch, "host", func(d map[string]any) bool {
		regions, _ := d["regions"].([]any)
		return len(regions) == 2
	})
	notes := s.openStream("notes")
	waitEvent(t, notes, "hostContent", func(d map[string]any) bool { return d["region"] == "notes" && d["max"] == float64(8187) })
	s.mustPost("/api/host/delete", map[string]any{"id": "notes"})
	waitEvent(t, notes, "hostContent", func(d map[string]any) bool { return d["region"] == "notes" && d["gone"] == true })

	s.mustPost("/api/host/stop", map[string]any{})
	waitEvent(t, ch, "host", func(d map[string]any) bool { return d["running"] == false })
}

// TestClientMode connects Client mode to the GUI's own host: direct
// mapping, then TCP, then the failures the page explains.
func TestClientMode(t *testing.T) {
	ts := newTestServer(t)
	s := ts.login(t)
	st := s.startHost()
	port := int(num(st["port"]))
	ch := s.openStream("")

	out := s.mustPost("/api/client/connect", map[string]any{"host": "127.0.0.1", "port": port, "shm_id": "default"})
	if out["state"] != "connected" || out["mode"] != "local" || out["max"] != float64(4091) {
		t.Errorf("connect = %v, want connected, local, max 4091", out)
	}
	if num(out["max_write"]) != 4096 || int64(num(out["footprint"])) != region.Footprint(4096, 0) {
		t.Errorf("connect = %v, want max_write 4096 and footprint %d", out, region.Footprint(4096, 0))
	}
	ev := waitEvent(t, ch, "clientContent", func(d map[string]any) bool { return d["region"] == "default" })
	v := num(ev.data["version"])
	s.mustPost("/api/write", map[string]any{"target": "client", "content": "via the client", "if_version": v})
	waitEvent(t, ch, "clientContent", func(d map[string]any) bool { return d["content"] == "via the client" })
	resp, e := s.post("/api/write", map[string]any{"target": "client", "content": "stale", "if_version": v})
	wantError(t, "client write at a stale version", resp, e, http.StatusConflict, "conflict")
	if e["content"] != "via the client" || num(e["current"]) != v+1 {
		t.Errorf("conflict = %v, want the current content and version %d", e, v+1)
	}
	resp, e = s.post("/api/write", map[string]any{"target": "client", "content": strings.Repeat("x", 4092)})
	wantError(t, "client write of 4092 bytes", resp, e, http.StatusRequestEntityTooLarge, "too_large")
	if !strings.Contains(e["error"].(string), "4091") {
		t.Errorf("refusal %q does not mention 4091", e["error"])
	}

	out = s.mustPost("/api/client/connect", map[string]any{"host": "127.0.0.1", "port": port, "mode": "tcp"})
	if out["state"] != "connected" || out["mode"] != "tcp" || out["why_not_local"] != "TCP mode was requested" || out["shm_id"] != "default" {
		t.Errorf("connect over TCP = %v", out)
	}
	hs, _ := ts.s.sessions()
	r, _ := hs.h.Default()
	r.Do(func(rr *region.Region) error {
		_, err := rr.Write([]byte("pushed over TCP"), region.WriteOptions{})
		return err
	})
	waitEvent(t, ch, "clientContent", func(d map[string]any) bool { return d["content"] == "pushed over TCP" })

	resp, e = s.post("/api/client/connect", map[string]any{"host": "127.0.0.1", "port": port, "shm_id": "nope"})
	wantError(t, "connect to a missing region", resp, e, http.StatusNotFound, "no_region")
	if e["error"] != `no region "nope" on that host` {
		t.Errorf("error = %q, want %q", e["error"], `no region "nope" on that host`)
	}
	waitEvent(t, ch, "client", func(d map[string]any) bool { return d["state"] == "failed" && d["code"] == "no_region" })

	closed := closedPort(t)
	resp, e = s.post("/api/client/connect", map[string]any{"host": "127.0.0.1", "port": closed})
	wantError(t, "connect to a closed port", resp, e, http.StatusBadGateway, "refused")

	s.mustPost("/api/client/disconnect", map[string]any{})
	waitEvent(t, ch, "client", func(d map[string]any) bool { return d["state"] == "" })
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return p
}

func TestHostPortBusy(t *testing.T) {
	ts := newTestServer(t)
	s := ts.login(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := ln.Addr().(*net.TCPAddr).Port
	resp, out := s.post("/api/host/start", map[string]any{"bind": "127.0.0.1", "port": p})
	wantError(t, "start on a busy port", resp, out, http.StatusConflict, "port_busy")
}

// TestShutdown checks that Shutdown ends the streams, the client session
// and the host, and leaves no goroutine behind.
func TestShutdown(t *testing.T) {
	before := runtime.NumGoroutine()
	dir := t.TempDir()
	t.Cleanup(func() { shmtest.RemoveObjects(t, dir) })
	srv, err := New(Config{Assets: testAssets, DataDir: dir, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	ts := &testServer{s: srv, ts: &httptest.Server{URL: "http://" + ln.Addr().String()}, host: ln.Addr().String()}
	_, ts.port, _ = net.SplitHostPort(ts.host)
	s := ts.login(t)
	st := s.startHost()
	s.mustPost("/api/client/connect", map[string]any{"port": num(st["port"]), "mode": "tcp"})
	ch := s.openStream("")
	waitEvent(t, ch, "clientContent", func(map[string]any) bool { return true })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if err := <-served; err != http.ErrServerClosed {
		t.Errorf("Serve = %v, want http.ErrServerClosed", err)
	}
	for range ch {
		// The stream ends.
	}
	s.c.CloseIdleConnections()
	shmtest.CheckFor(t, 5*time.Second, "goroutines left after Shutdown", func() bool { return runtime.NumGoroutine() <= before })
}

// TestContentShown checks what the page is given to show and edit: text
// as it is, raw content as a hex window from an offset, binary and very
// large content read-only.
func TestContentShown(t *testing.T) {
	raw := make([]byte, 3*hexPreview)
	for i := range raw {
		raw[i] = byte(i)
	}
	for _, tc := range []struct {
		name     string
		b        []byte
		layout   string
		off      int64
		readOnly string
		content  string
		hex      string
		hexOff   int64
	}{
		{"text", []byte("héllo"), "utf8", 0, "", "héllo", "", 0},
		{"empty", nil, "utf8", 0, "", "", "", 0},
		{"raw", []byte{0, 1, 0xff}, "raw", 0, "", "", "0001ff", 0},
		{"raw from an offset", []byte{0, 1, 0xff}, "raw", 1, "", "", "01ff", 1},
		{"raw offset past the end", []byte{0, 1, 0xff}, "raw", 9, "", "", "", 3},
		{"raw window", raw, "raw", hexPreview + 2, "", "", hex.EncodeToString(raw[hexPreview+2 : 2*hexPreview+2]), hexPreview + 2},
		{"binary", []byte{'a', 0xff}, "utf8", 5, "binary", "", "61ff", 0},
	} {
		ev := makeContent("r", 7, tc.b, tc.layout, 4091, tc.off)
		if ev.ReadOnly != tc.readOnly || ev.Content != tc.content || ev.Hex != tc.hex || ev.HexOffset != tc.hexOff || ev.Size != len(tc.b) || ev.Version != 7 {
			t.Errorf("%s: makeContent = %+v", tc.name, ev)
		}
	}
	big := []byte(strings.Repeat("a", maxShown-1) + "é" + "tail")
	ev := makeContent("r", 1, big, "utf8", int64(len(big)), 0)
	if ev.ReadOnly != "large" || len(ev.Content) != maxShown-1 || ev.Size != len(big) {
		t.Errorf("large: read_only %q, %d bytes shown of %d; want large, cut before the split character", ev.ReadOnly, len(ev.Content), ev.Size)
	}
}

// TestRawWrite checks editing a raw region from the page: a hex window
// from an offset in the event stream, hex bytes written at an offset
// (the rest kept), conditional on the version, and every bad request
// refused with a message, leaving the region as it was. Host mode and
// Client mode, locally and over TCP.
func TestRawWrite(t *testing.T) {
	ts := newTestServer(t)
	s := ts.login(t)
	st := s.startHost()
	port := int(num(st["port"]))
	s.mustPost("/api/host/create", map[string]any{"id": "frames", "size": 4096, "layout": "raw"})
	ch := s.openStream("frames&host_offset=16")
	ev := waitEvent(t, ch, "hostContent", func(d map[string]any) bool { return d["region"] == "frames" })
	if ev.data["hex"] != strings.Repeat("00", hexPreview) || num(ev.data["hex_offset"]) != 16 || ev.data["read_only"] != nil {
		t.Fatalf("raw content event = hex %.40q… at %v, read_only %v; want %d zero bytes from 16, editable", ev.data["hex"], ev.data["hex_offset"], ev.data["read_only"], hexPreview)
	}
	v0 := num(ev.data["version"])
	out := s.mustPost("/api/write", map[string]any{"target": "host", "region": "frames", "hex": "de ad\nbe ef", "offset": 16, "if_version": v0})
	if num(out["version"]) != v0+1 || num(out["size"]) != 4 || num(out["offset"]) != 16 {
		t.Errorf("write = %v, want version %d, 4 bytes at 16", out, v0+1)
	}
	waitEvent(t, ch, "hostContent", func(d map[string]any) bool {
		h, _ := d["hex"].(string)
		return strings.HasPrefix(h, "deadbeef00") && num(d["hex_offset"]) == 16
	})
	hs, _ := ts.s.sessions()
	r, err := hs.h.Get("frames")
	if err != nil {
		t.Fatal(err)
	}
	ht := hostTarget{hs: hs, r: r}
	check := func(what string, wantV uint64) {
		t.Helper()
		b, v, err := ht.read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := make([]byte, 4096)
		copy(want[16:], []byte{0xde, 0xad, 0xbe, 0xef})
		if !bytes.Equal(b, want) || v != wantV {
			t.Errorf("%s: region holds %x… at version %d, want deadbeef at 16, the rest zero, at version %d", what, b[:24], v, wantV)
		}
	}
	check("after the write", v0+1)

	for _, tc := range []struct {
		name   string
		req    map[string]any
		status int
		code   string
		msg    string
	}{
		{"not hex", map[string]any{"hex": "zz"}, http.StatusBadRequest, "bad_hex", `'z' is not a hex digit`},
		{"odd digits", map[string]any{"hex": "abc"}, http.StatusBadRequest, "bad_hex", "3 hex digits"},
		{"nothing", map[string]any{"hex": " \n"}, http.StatusBadRequest, "bad_request", "no bytes to write"},
		{"text to raw", map[string]any{"content": "text"}, http.StatusBadRequest, "bad_request", "send them as hex"},
		{"past the end", map[string]any{"hex": "00", "offset": 4096}, http.StatusRequestEntityTooLarge, "out_of_range", "1 bytes at offset 4096 pass the end of the region (4096 bytes)"},
		{"across the end", map[string]any{"hex": "0000", "offset": 4095}, http.StatusRequestEntityTooLarge, "out_of_range", "2 bytes at offset 4095"},
		{"negative offset", map[string]any{"hex": "00", "offset": -1}, http.StatusRequestEntityTooLarge, "out_of_range", "offset -1"},
		{"stale version", map[string]any{"hex": "11", "offset": 16, "if_version": v0}, http.StatusConflict, "conflict", "changed by someone else"},
	} {
		req := map[string]any{"target": "host", "region": "frames"}
		maps.Copy(req, tc.req)
		resp, e := s.post("/api/write", req)
		wantError(t, tc.name, resp, e, tc.status, tc.code)
		if msg, _ := e["error"].(string); !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: error %q, want it to say %q", tc.name, msg, tc.msg)
		}
		if tc.code == "conflict" && (num(e["current"]) != v0+1 || !strings.HasPrefix(e["hex"].(string), "deadbeef") || num(e["hex_offset"]) != 16) {
			t.Errorf("conflict = %v, want the current version %d and the bytes at 16", e, v0+1)
		}
	}
	check("after the refusals", v0+1)
	resp, e := s.post("/api/write", map[string]any{"target": "host", "hex": "00"})
	wantError(t, "hex to a utf8 region", resp, e, http.StatusBadRequest, "bad_request")
	resp, _ = s.do("GET", "/api/events?host_offset=-1", nil, nil)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("events with host_offset=-1: %s, want 400", resp.Status)
	}

	// Client mode: mapped locally, then over TCP.
	for _, mode := range []string{"local", "tcp"} {
		s.mustPost("/api/client/connect", map[string]any{"host": "127.0.0.1", "port": port, "shm_id": "frames", "mode": mode})
		_, v, _ := ht.read(context.Background())
		out := s.mustPost("/api/write", map[string]any{"target": "client", "hex": "0102", "offset": 100, "if_version": v})
		if num(out["version"]) != v+1 {
			t.Errorf("%s client write = %v, want version %d", mode, out, v+1)
		}
		if b, _, _ := ht.readAt(context.Background(), 100, 2); !bytes.Equal(b, []byte{1, 2}) {
			t.Errorf("%s client write: bytes at 100 = %x, want 0102", mode, b)
		}
		resp, e := s.post("/api/write", map[string]any{"target": "client", "hex": "ffff", "offset": 100, "if_version": v})
		wantError(t, mode+" client write at a stale version", resp, e, http.StatusConflict, "conflict")
		if e["hex"] == nil || !strings.HasPrefix(e["hex"].(string), "0102") {
			t.Errorf("%s client conflict = %v, want the current bytes at 100", mode, e)
		}
		resp, e = s.post("/api/write", map[string]any{"target": "client", "hex": "00", "offset": 4096})
		wantError(t, mode+" client write past the end", resp, e, http.StatusRequestEntityTooLarge, "out_of_range")
		// Reset for the next mode.
		ht.writeAt(context.Background(), 100, []byte{0, 0}, nil)
	}
}

// FuzzDecodeHex checks the raw editor's hex parser: it never panics, and
// what it accepts is exactly the digits given, whitespace aside.
func FuzzDecodeHex(f *testing.F) {
	for _, s := range []string{"00", "de ad\nbe ef", "zz", "abc", " ", "0G", "\t41\r\n42 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := decodeHex(s)
		digits := strings.ToLower(strings.Join(strings.Fields(s), ""))
		if err != nil {
			if _, herr := hex.DecodeString(digits); herr == nil && digits != "" {
				t.Fatalf("decodeHex(%q) refused valid hex: %v", s, err)
			}
			return
		}
		if got := hex.EncodeToString(p); got != digits {
			t.Fatalf("decodeHex(%q) = %x, want the digits %s", s, p, digits)
		}
	})
}

// TestTranslations checks that the GUI speaks both its languages whole:
// English and Chinese have the same keys, and every data-i18n key of the
// page has its words.
func TestTranslations(t *testing.T) {
	t.Parallel()
	js, err := fs.ReadFile(dist.FS(), "i18n.js")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]map[string]bool{}
	var lang string
	for _, line := range strings.Split(string(js), "\n") {
		if m := regexp.MustCompile(`^  (\w+): \{$`).FindStringSubmatch(line); m != nil {
			lang = m[1]
			keys[lang] = map[string]bool{}
		} else if m := regexp.MustCompile(`^    (\w+): `).FindStringSubmatch(line); m != nil && lang != "" {
			keys[lang][m[1]] = true
		}
	}
	en, zh := keys["en"], keys["zh"]
	if len(en) < 50 || len(zh) < 50 {
		t.Fatalf("found %d English and %d Chinese keys in i18n.js: the parse is broken", len(en), len(zh))
	}
	for k := range en {
		if !zh[k] {
			t.Errorf("%q has no Chinese words", k)
		}
	}
	for k := range zh {
		if !en[k] {
			t.Errorf("%q has no English words", k)
		}
	}
	page, err := fs.ReadFile(dist.FS(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`data-i18n="(\w+)"`).FindAllStringSubmatch(string(page), -1) {
		if !en[m[1]] {
			t.Errorf("index.html asks for %q, which i18n.js lacks", m[1])
		}
	}
}

// TestDataDirBusy: Host mode on a data directory another host uses says
// so once (not "data directory in use: data directory ...") and points to
// Client mode.
func TestDataDirBusy(t *testing.T) {
	ts := newTestServer(t)
	s := ts.login(t)
	h, _, err := host.Open(host.DefaultConfig(ts.dir))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	resp, out := s.post("/api/host/start", map[string]any{"bind": "127.0.0.1", "port": 0})
	wantError(t, "start on a data directory in use", resp, out, http.StatusConflict, "data_dir_busy")
	msg, _ := out["error"].(string)
	if !strings.Contains(msg, "Client mode") || strings.Count(msg, ts.dir) != 1 || strings.Contains(msg, "data directory in use") || out["dir"] != ts.dir {
		t.Errorf("refusal = %v, want the directory named once (also as dir) and Client mode suggested", out)
	}
}

// TestClientLockOwner: a Client mode write that waits for a lock held by
// another program shows who holds it (the client state's lock_owner),
// and the write goes through once the lock is released.
func TestClientLockOwner(t *testing.T) {
	ts := newTestServer(t)
	s := ts.login(t)
	st := s.startHost()
	port := int(num(st["port"]))
	ch := s.openStream("")
	s.mustPost("/api/client/connect", map[string]any{"host": "127.0.0.1", "port": port, "shm_id": "default", "mode": "tcp"})
	waitEvent(t, ch, "clientContent", func(d map[string]any) bool { return d["region"] == "default" })

	// Another program on this machine holds the lock (a lease).
	other, err := client.Dial(t.Context(), "127.0.0.1:"+strconv.Itoa(port), "", client.Options{Mode: client.ModeLocal})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	l, err := other.Lock(t.Context(), client.LockOptions{Lease: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan map[string]any, 1)
	go func() {
		_, out := s.post("/api/write", map[string]any{"target": "client", "content": "after the lock"})
		done <- out
	}()
	ev := waitEvent(t, ch, "client", func(d map[string]any) bool { o, _ := d["lock_owner"].(string); return o != "" })
	if o := ev.data["lock_owner"].(string); !strings.Contains(o, "shmgr client pid") {
		t.Errorf("lock_owner = %q, want the holder's label", o)
	}
	if err := l.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	if out := <-done; out["version"] == nil {
		t.Fatalf("the write after the lock was released = %v", out)
	}
	waitEvent(t, ch, "client", func(d map[string]any) bool { return d["lock_owner"] == nil })
}

// TestCreateMaxWrite checks the create form's API with a max write: the
// region view reports max_write and footprint (and the host status the
// control block's overhead the page adds up as the user types), a bad
// max write is refused with its own code, and a hex write larger than the
// max write is refused before it reaches the region, in Host mode.
func TestCreateMaxWrite(t *testing.T) {
	ts := newTestServer(t)
	s := ts.login(t)
	st := s.startHost()
	if got := int64(num(st["ctl_overhead"])); got != region.CtlSize(0, 0) {
		t.Errorf("status ctl_overhead = %d, want region.CtlSize(0, 0) = %d", got, region.CtlSize(0, 0))
	}
	if runtime.GOOS == "linux" && st["shm_dir"] != "/dev/shm" {
		t.Errorf("status shm_dir = %v, want /dev/shm", st["shm_dir"])
	}
	out := s.mustPost("/api/host/create", map[string]any{"id": "frames", "size": 65536, "layout": "raw", "max_write": 16})
	if num(out["max_write"]) != 16 || int64(num(out["footprint"])) != region.Footprint(65536, 16) {
		t.Errorf("create = %v, want max_write 16, footprint %d", out, region.Footprint(65536, 16))
	}
	out = s.mustPost("/api/host/create", map[string]any{"id": "whole", "size": 100, "layout": "raw"})
	if num(out["max_write"]) != 100 || int64(num(out["footprint"])) != region.Footprint(100, 0) {
		t.Errorf("create without max_write = %v, want max_write 100 (the whole size)", out)
	}
	for _, c := range []struct {
		name string
		body map[string]any
	}{
		{"utf8", map[string]any{"id": "a", "size": 100, "max_write": 10}},
		{"over-size", map[string]any{"id": "b", "size": 100, "layout": "raw", "max_write": 101}},
		{"negative", map[string]any{"id": "c", "size": 100, "layout": "raw", "max_write": -1}},
		{"durable", map[string]any{"id": "d", "size": 100, "layout": "raw", "max_write": 10, "durable": true}},
	} {
		resp, out := s.post("/api/host/create", c.body)
		wantError(t, "create with a bad max write ("+c.name+")", resp, out, http.StatusBadRequest, "bad_max_write")
	}
	resp, out := s.post("/api/write", map[string]any{"target": "host", "region": "frames", "hex": strings.Repeat("ab", 17), "offset": 0})
	wantError(t, "write over the max write", resp, out, http.StatusRequestEntityTooLarge, "too_large_write")
	if num(out["max_write"]) != 16 || num(out["size"]) != 17 {
		t.Errorf("too_large_write extra = %v, want size 17, max_write 16", out)
	}
	out = s.mustPost("/api/write", map[string]any{"target": "host", "region": "frames", "hex": strings.Repeat("ab", 16), "offset": 65536 - 16})
	if num(out["size"]) != 16 {
		t.Errorf("write of exactly max write = %v", out)
	}
	resp, state := s.do("GET", "/api/state", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/state = %s", resp.Status)
	}
	var found bool
	host, _ := state["host"].(map[string]any)
	regions, _ := host["regions"].([]any)
	for _, r := range regions {
		if m := r.(map[string]any); m["id"] == "frames" {
			found = num(m["max_write"]) == 16 && int64(num(m["footprint"])) == region.Footprint(65536, 16)
		}
	}
	if !found {
		t.Errorf("the region list lacks frames with its max write and footprint")
	}
}

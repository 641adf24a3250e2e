// End-to-end tests of "shmgr gui": the real binary serves the GUI, a real
// headless Chromium drives the page (chromedp), and the CLI and the client
// library read and write the same regions from outside.
package webui_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/shmtest"
)

func TestMain(m *testing.M) { os.Exit(shmtest.Main(m)) }

// updateScreenshots names the environment variable that makes the tests
// write docs/gui-host.png and docs/gui-client.png.
const updateScreenshots = "SHMGR_UPDATE_SCREENSHOTS"

// chromiumPath finds a Chromium (or Chrome) binary, or skips the test.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SHMGR_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium binary found (install Debian's chromium, or set SHMGR_CHROMIUM): skipping the browser tests")
	return ""
}

// guiProc is a "shmgr gui" process.
type guiProc struct {
	url     string // with the token
	dataDir string
	stderr  *bytes.Buffer
}

// startGUI runs "shmgr gui --no-browser --listen 127.0.0.1:0" with its own
// data directory, and stops it (SIGTERM, expecting a clean exit) and
// removes the shared-memory objects its host made when the test ends.
func startGUI(t *testing.T) *guiProc {
	t.Helper()
	g := &guiProc{dataDir: t.TempDir(), stderr: &bytes.Buffer{}}
	cmd := exec.Command(shmtest.Binary(t), "gui", "--no-browser", "--listen", "127.0.0.1:0", "--data-dir", g.dataDir)
	cmd.Env = append(os.Environ(), "SHMGR_HOST=", "SHMGR_DATA_DIR=")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	cmd.Stderr = lockedWriter{&mu, g.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "url:"); ok {
				urls <- strings.TrimSpace(u)
			}
		}
		io.Copy(io.Discard, out)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
			if !cmd.ProcessState.Success() {
				mu.Lock()
				t.Errorf("shmgr gui exited with %v after SIGTERM; stderr:\n%s", cmd.ProcessState, g.stderr)
				mu.Unlock()
			}
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("shmgr gui did not stop within 15s of SIGTERM")
		}
		shmtest.RemoveObjects(t, g.dataDir)
	})
	select {
	case g.url = <-urls:
	case <-done:
		t.Fatalf("shmgr gui exited before printing its URL: %v\n%s", cmd.ProcessState, g.stderr)
	case <-time.After(30 * time.Second):
		t.Fatal("shmgr gui printed no URL within 30s")
	}
	if !strings.HasPrefix(g.url, "http://127.0.0.1:") || !strings.Contains(g.url, "/?token=") {
		t.Fatalf("URL %q: want http://127.0.0.1:PORT/?token=...", g.url)
	}
	return g
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// browser is a headless Chromium with one tab, and the page errors it
// reported (exceptions, console errors, CSP violations).
type browser struct {
	ctx    context.Context
	mu     sync.Mutex
	errors []string
	// ended is set once the test body has returned: the GUI then stops
	// before the browser, and the page's stream retrying is no error.
	ended bool
}

// newBrowser starts a fresh headless Chromium (its own profile and
// temporary directory) and ends it when the test ends.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath(t)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Env("TMPDIR="+t.TempDir()),
		chromedp.WindowSize(1280, 860),
	)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	b := &browser{ctx: ctx}
	if err := chromedp.Listen(ctx, func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg = "exception: " + ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				msg += " " + ev.ExceptionDetails.Exception.Description
			}
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				msg = "console.error"
			}
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError && !strings.Contains(ev.Entry.Text, "status of 4") && !strings.Contains(ev.Entry.Text, "status of 5") {
				// 4xx/5xx replies are expected (refusals); anything else,
				// such as a CSP violation, is a bug.
				msg = "log: " + ev.Entry.Text
			}
		}
		if msg != "" {
			b.mu.Lock()
			if !b.ended {
				b.errors = append(b.errors, msg)
			}
			b.mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, e := range b.errors {
			t.Errorf("the page reported: %s", e)
		}
	})
	return b
}

// do runs actions, failing the test on error.
func (b *browser) do(t *testing.T, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatal(err)
	}
}

// eval evaluates a JavaScript expression.
func eval[T any](t *testing.T, b *browser, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript condition in the page (every 5 ms, no
// sleeping in the test) until it holds, for at most timeout.
func (b *browser) waitFor(t *testing.T, timeout time.Duration, cond string) time.Duration {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(b.ctx, timeout+5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingInterval(5*time.Millisecond), chromedp.WithPollingTimeout(timeout))); err != nil {
		state := eval[string](t, b, `JSON.stringify({host: document.getElementById("h-msg").textContent, client: document.getElementById("c-msg").textContent, clientState: document.getElementById("client-state").dataset.state || "", reason: document.getElementById("client-reason").hidden ? "(hidden) " + document.getElementById("client-reason").textContent : document.getElementById("client-reason").textContent, hostErr: document.getElementById("host-error").textContent,
			hVersion: document.getElementById("h-version").textContent, hText: document.getElementById("h-text").value.slice(0, 80), hNotice: document.getElementById("h-notice").hidden ? "" : document.getElementById("h-notice-text").textContent,
			cVersion: document.getElementById("c-version").textContent, cText: document.getElementById("c-text").value.slice(0, 80), cNotice: document.getElementById("c-notice").hidden ? "" : document.getElementById("c-notice-text").textContent})`)
		t.Fatalf("waiting %v for %s: %v\npage: %s", timeout, cond, err, state)
	}
	return time.Since(start)
}

// connectClient fills Client mode's form (host 127.0.0.1) and submits it;
// the Client mode tab must be open.
func (b *browser) connectClient(t *testing.T, port, shmID, mode string) {
	t.Helper()
	b.do(t,
		chromedp.SetValue(chromedp.ID("client-host"), "127.0.0.1"),
		chromedp.SetValue(chromedp.ID("client-port"), port),
		chromedp.SetValue(chromedp.ID("client-shmid"), shmID),
		chromedp.SetValue(chromedp.ID("client-mode"), mode),
		chromedp.Click(chromedp.ID("client-connect")),
	)
}

// clientPage starts a browser, a host and a GUI, and opens the GUI's
// Client mode tab.
func clientPage(t *testing.T) (*browser, *shmtest.Host) {
	t.Helper()
	b := newBrowser(t)
	h := shmtest.StartHost(t)
	b.open(t, startGUI(t))
	b.do(t, chromedp.Click(chromedp.ID("tab-client")))
	return b, h
}

// setText replaces a field's value as typing would (an input event).
func (b *browser) setText(t *testing.T, id, text string) {
	t.Helper()
	eval[chromedp.Void](t, b, fmt.Sprintf(`(() => { const el = document.getElementById(%q); el.value = %s; el.dispatchEvent(new Event("input", {bubbles: true})); })()`, id, strconv.Quote(text)))
}

// cli runs "shmgr ARGS --host addr" and returns its stdout.
func cli(t *testing.T, addr string, args ...string) string {
	t.Helper()
	out, errOut, code := shmtest.Run(t, nil, append(args, "--host", addr)...)
	if code != 0 {
		t.Fatalf("shmgr %v: exit %d: %s", args, code, errOut)
	}
	return out
}

// screenshot captures the viewport; with SHMGR_UPDATE_SCREENSHOTS=1 it
// writes docs/<name>, else a file in the test's temporary directory.
func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	// No focus ring or caret in the picture.
	chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)`))
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(t.TempDir(), name)
	if os.Getenv(updateScreenshots) == "1" {
		path = filepath.Join("..", "..", "docs", name)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
}

// open loads the GUI (exchanging the URL's token for the session cookie)
// in English with the light theme, and waits until the stream is live.
// startHost starts a host on a free port from the page's Host mode,
// waits until the page can write to it, and returns its port.
func (b *browser) startHost(t *testing.T) (port string) {
	t.Helper()
	b.do(t, chromedp.SetValue(chromedp.ID("host-port"), "0"), chromedp.Click(chromedp.ID("host-start")))
	b.waitFor(t, 10*time.Second, `document.getElementById("host-badge").dataset.state === "running" && !document.getElementById("h-text").disabled`)
	return eval[string](t, b, `document.getElementById("fact-port").textContent`)
}

func (b *browser) open(t *testing.T, g *guiProc) {
	t.Helper()
	// Registered after the GUI's cleanup, so run before it.
	t.Cleanup(func() {
		b.mu.Lock()
		b.ended = true
		b.mu.Unlock()
	})
	b.do(t, chromedp.EmulateViewport(1280, 860), chromedp.Navigate(g.url))
	if u := eval[string](t, b, `location.href`); strings.Contains(u, "token") {
		t.Errorf("after the token exchange the page is at %s, want the clean URL", u)
	}
	if c := eval[string](t, b, `document.cookie`); c != "" {
		t.Errorf("document.cookie = %q: the session cookie must be HttpOnly", c)
	}
	eval[chromedp.Void](t, b, `localStorage.setItem("shmgr.lang", "en"); localStorage.setItem("shmgr.theme", "light"); localStorage.setItem("shmgr.mode", "host")`)
	b.do(t, chromedp.Reload())
	b.waitFor(t, 10*time.Second, `document.getElementById("host-badge").dataset.state === "stopped"`)
}

// TestBrowserHostMode drives Host mode in the page: start a host, write
// through the page and read it with the CLI, write with the CLI (and the
// library) and see the page follow, the over-limit refusal, the conflict
// flow with both Overwrite and Reload, and a new region.
func TestBrowserHostMode(t *testing.T) {
	t.Parallel()
	b := newBrowser(t)
	g := startGUI(t)
	b.open(t, g)

	port := b.startHost(t)
	addr := "127.0.0.1:" + port
	if id := eval[string](t, b, `document.getElementById("fact-shmid").textContent`); id != "default" {
		t.Errorf("shm_id shown = %q, want default", id)
	}
	if name := eval[string](t, b, `document.getElementById("fact-osname").textContent`); !strings.HasPrefix(name, "shmgr-") {
		t.Errorf("OS name shown = %q, want shmgr-...", name)
	}
	if a := eval[string](t, b, `document.getElementById("fact-addresses").textContent`); !strings.Contains(a, "127.0.0.1") {
		t.Errorf("addresses shown = %q, want 127.0.0.1", a)
	}

	// Write through the page with the keyboard (Ctrl+Enter); read it
	// back with the CLI.
	b.do(t, chromedp.SendKeys(chromedp.ID("h-text"), "hello from the page"), chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierCtrl)))
	b.waitFor(t, 5*time.Second, `document.getElementById("h-msg").textContent.startsWith("Written")`)
	if got := cli(t, addr, "read"); got != "hello from the page" {
		t.Errorf("shmgr read = %q, want the page's write", got)
	}

	// Write with the CLI: the page follows.
	cli(t, addr, "write", "written by the CLI")
	b.waitFor(t, 5*time.Second, `document.getElementById("h-text").value === "written by the CLI"`)

	// Write with the library: measure how soon the page shows it.
	r, err := client.Dial(context.Background(), addr, "", client.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var worst time.Duration
	for i := range 3 {
		want := "library write " + strconv.Itoa(i)
		start := time.Now()
		if _, err := r.Write(context.Background(), []byte(want)); err != nil {
			t.Fatal(err)
		}
		b.waitFor(t, 5*time.Second, `document.getElementById("h-text").value === `+strconv.Quote(want))
		worst = max(worst, time.Since(start))
	}
	t.Logf("a library write appeared in the page within %v (worst of 3, including the DevTools round trips)", worst)

	// Over the limit: the counter says so, and the write is refused whole.
	before := cli(t, addr, "read")
	b.setText(t, "h-text", strings.Repeat("a", 4092))
	if c := eval[string](t, b, `document.getElementById("h-counter").textContent`); !strings.Contains(c, "4092 / 4091") {
		t.Errorf("counter = %q, want 4092 / 4091", c)
	}
	// Write is disabled and says why before the click; Ctrl+Enter gets
	// the refusal.
	b.waitFor(t, 2*time.Second, `document.getElementById("h-write").disabled && document.getElementById("h-write").title.startsWith("Over the limit by 1 bytes")`)
	b.do(t, chromedp.Focus(chromedp.ID("h-text")), chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierCtrl)))
	b.waitFor(t, 5*time.Second, `document.getElementById("h-msg").textContent.includes("4091")`)
	msg := eval[string](t, b, `document.getElementById("h-msg").textContent`)
	if !strings.Contains(msg, "4092") || !strings.Contains(msg, "Not written") {
		t.Errorf("refusal = %q, want it to say 4092 bytes were not written", msg)
	}
	if got := cli(t, addr, "read"); got != before {
		t.Errorf("after the refusal shmgr read = %d bytes, want the content before (%q)", len(got), before)
	}

	// Conflict, then Overwrite: an edit in progress survives a write made
	// meanwhile; Write is refused and explained; Overwrite wins.
	b.setText(t, "h-text", "my edit")
	cli(t, addr, "write", "their edit")
	b.waitFor(t, 5*time.Second, `!document.getElementById("h-notice").hidden && document.getElementById("h-notice-text").textContent.startsWith("Changed by someone else at version")`)
	if v := eval[string](t, b, `document.getElementById("h-text").value`); v != "my edit" {
		t.Fatalf("the edit in progress became %q", v)
	}
	b.do(t, chromedp.Click(chromedp.ID("h-write")))
	b.waitFor(t, 5*time.Second, `document.getElementById("h-notice-text").textContent.startsWith("Not written: changed by someone else")`)
	if got := cli(t, addr, "read"); got != "their edit" {
		t.Errorf("after the refused write shmgr read = %q, want \"their edit\"", got)
	}
	b.do(t, chromedp.Click(chromedp.ID("h-overwrite")))
	b.waitFor(t, 5*time.Second, `document.getElementById("h-notice").hidden && document.getElementById("h-msg").textContent.startsWith("Written")`)
	if got := cli(t, addr, "read"); got != "my edit" {
		t.Errorf("after Overwrite shmgr read = %q, want \"my edit\"", got)
	}

	// Conflict, then Reload: the other writer's content is loaded.
	b.setText(t, "h-text", "second edit")
	cli(t, addr, "write", "their second edit")
	b.waitFor(t, 5*time.Second, `!document.getElementById("h-notice").hidden`)
	b.do(t, chromedp.Click(chromedp.ID("h-write")))
	b.waitFor(t, 5*time.Second, `document.getElementById("h-notice-text").textContent.startsWith("Not written")`)
	b.do(t, chromedp.Click(chromedp.ID("h-reload")))
	b.waitFor(t, 5*time.Second, `document.getElementById("h-notice").hidden && document.getElementById("h-text").value === "their second edit"`)
	if got := cli(t, addr, "read"); got != "their second edit" {
		t.Errorf("after Reload shmgr read = %q, want \"their second edit\"", got)
	}

	// A new region, made in the page and written with the CLI.
	b.do(t, chromedp.Click(chromedp.CSS("#create summary")), chromedp.SendKeys(chromedp.ID("create-id"), "sensors"), chromedp.Click(chromedp.ID("create-btn")))
	b.waitFor(t, 5*time.Second, `document.getElementById("h-region").textContent === "sensors" && !document.getElementById("h-text").disabled`)
	cli(t, addr, "write", "--id", "sensors", "t=21.5")
	b.waitFor(t, 5*time.Second, `document.getElementById("h-text").value === "t=21.5"`)
	if ls := cli(t, addr, "ls"); !strings.Contains(ls, "sensors") {
		t.Errorf("shmgr ls lacks the region made in the page:\n%s", ls)
	}

	// The create form says what a region will cost as the size and max
	// write are typed (the max write field only for raw), and the region's
	// facts say what it costs once made; the CLI agrees.
	b.do(t, chromedp.Click(chromedp.CSS("#create summary")), chromedp.SendKeys(chromedp.ID("create-id"), "wide"))
	b.setText(t, "create-size", "1048576")
	b.waitFor(t, 2*time.Second, `document.getElementById("create-maxwrite-field").hidden && document.getElementById("create-cost").textContent.includes("(2101256 B)")`)
	eval[chromedp.Void](t, b, `(() => { const el = document.getElementById("create-layout"); el.value = "raw"; el.dispatchEvent(new Event("change", {bubbles: true})); })()`)
	b.waitFor(t, 2*time.Second, `!document.getElementById("create-maxwrite-field").hidden && document.getElementById("create-cost").textContent.includes("(2101256 B)")`)
	b.setText(t, "create-maxwrite", "4096")
	b.waitFor(t, 2*time.Second, `document.getElementById("create-cost").textContent.includes("1.0 MiB (1056776 B)") && document.getElementById("create-cost").textContent.includes("up to 4.0 KiB")`)
	if goruntime.GOOS == "linux" {
		b.waitFor(t, time.Second, `document.getElementById("create-cost").textContent.includes("of /dev/shm")`)
	}
	b.do(t, chromedp.Click(chromedp.ID("create-btn")))
	b.waitFor(t, 5*time.Second, `document.getElementById("h-region").textContent === "wide" && document.getElementById("fact-cost").textContent.includes("(1056776 B)") && document.getElementById("fact-cost").textContent.includes("max write 4.0 KiB")`)
	if info := cli(t, addr, "info", "--id", "wide"); !strings.Contains(info, "max write:  4096 bytes") || !strings.Contains(info, "1056776 bytes") {
		t.Errorf("shmgr info of the region made in the page:\n%s\nwant max write 4096 and a cost of 1056776 bytes", info)
	}

	// A raw region, edited as hex: a window from an offset, bytes written
	// there and read back with the CLI, bad hex refused in the page, and
	// a write elsewhere followed.
	cli(t, addr, "create", "frames", "--layout", "raw", "--size", "64")
	b.waitFor(t, 5*time.Second, `[...document.querySelectorAll("#regions li")].some(li => li.textContent.includes("frames"))`)
	eval[chromedp.Void](t, b, `[...document.querySelectorAll("#regions li")].find(li => li.textContent.includes("frames")).querySelector(".pick").click()`)
	zeros := strings.TrimSuffix(strings.Repeat(strings.TrimSuffix(strings.Repeat("00 ", 16), " ")+"\n", 4), "\n")
	b.waitFor(t, 5*time.Second, fmt.Sprintf(`document.getElementById("h-region").textContent === "frames" && !document.getElementById("h-hexnav").hidden && document.getElementById("h-text").value === %q`, zeros))
	b.setText(t, "h-off", "16")
	b.do(t, chromedp.Click(chromedp.ID("h-go")))
	b.waitFor(t, 5*time.Second, `document.getElementById("h-counter").textContent === "48 bytes at offset 16 · region 64 bytes"`)
	b.setText(t, "h-text", "zz")
	b.waitFor(t, 2*time.Second, `document.getElementById("h-write").disabled && document.getElementById("h-counter").textContent.startsWith("Not hex")`)
	b.setText(t, "h-text", "de ad be ef")
	b.waitFor(t, 2*time.Second, `!document.getElementById("h-write").disabled && document.getElementById("h-counter").textContent === "4 bytes at offset 16 · region 64 bytes"`)
	b.do(t, chromedp.Click(chromedp.ID("h-write")))
	b.waitFor(t, 5*time.Second, `document.getElementById("h-msg").textContent.startsWith("Written")`)
	b.waitFor(t, 5*time.Second, `document.getElementById("h-text").value.startsWith("de ad be ef 00 00") && document.getElementById("h-counter").textContent === "48 bytes at offset 16 · region 64 bytes"`)
	want := make([]byte, 64)
	copy(want[16:], []byte{0xde, 0xad, 0xbe, 0xef})
	if got := cli(t, addr, "read", "--id", "frames"); got != string(want) {
		t.Errorf("after the page's hex write shmgr read = %x, want %x", got, want)
	}
	cli(t, addr, "write", "--id", "frames", "--offset", "20", "AB")
	b.waitFor(t, 5*time.Second, `document.getElementById("h-text").value.startsWith("de ad be ef 41 42 00")`)
	b.screenshot(t, "gui-raw.png")

	// The picture: the default region with some content, and a client
	// connected (the library's watch).
	b.do(t, chromedp.Click(chromedp.CSS(`#regions li:first-child .pick`)))
	b.waitFor(t, 5*time.Second, `document.getElementById("h-region").textContent === "default"`)
	o := client.DefaultOptions()
	o.Mode = client.ModeTCP
	rt, err := client.Dial(context.Background(), addr, "", o)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	w, err := rt.Watch(context.Background(), client.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	cli(t, addr, "write", "line 1: pump A running\nline 2: pressure 2.4 bar\nline 3: temperature 21.5 °C\n")
	b.waitFor(t, 3*time.Second, `document.getElementById("h-text").value.startsWith("line 1") && document.querySelectorAll("#clients tbody tr").length > 0`)
	b.do(t, chromedp.EmulateViewport(1280, 960))
	b.screenshot(t, "gui-host.png")
	b.do(t, chromedp.EmulateViewport(1280, 860))

	// Stopping the host in the page stops serving.
	b.do(t, chromedp.Click(chromedp.ID("host-stop")))
	b.waitFor(t, 10*time.Second, `document.getElementById("host-badge").dataset.state === "stopped"`)
	if _, errOut, code := shmtest.Run(t, nil, "read", "--host", addr, "--timeout", "2s", "--mode", "tcp"); code == 0 {
		t.Errorf("shmgr read after the page stopped the host succeeded, want a failure")
	} else if !strings.Contains(errOut, "refused") {
		t.Logf("read after stop: %s", errOut)
	}
}

// TestBrowserClientMode drives Client mode against a host process: the
// failures it explains (wrong shm_id, nothing listening), a local
// connection (mode and state shown), writes both ways, the limit, TCP
// mode, and the language switch.
func TestBrowserClientMode(t *testing.T) {
	t.Parallel()
	b := newBrowser(t)
	h := shmtest.StartHost(t)
	g := startGUI(t)
	b.open(t, g)
	_, port, _ := net.SplitHostPort(h.Addr)

	b.do(t, chromedp.Click(chromedp.ID("tab-client")))
	b.waitFor(t, 5*time.Second, `!document.getElementById("panel-client").hidden && document.getElementById("panel-host").hidden`)
	connect := func(port, id, mode string) { t.Helper(); b.connectClient(t, port, id, mode) }

	// A wrong shm_id.
	connect(port, "nope", "auto")
	b.waitFor(t, 10*time.Second, `document.getElementById("client-state").dataset.state === "failed" && !document.getElementById("client-reason").hidden`)
	if reason := eval[string](t, b, `document.getElementById("client-reason").textContent`); !strings.Contains(reason, "No region “nope” on that host") {
		t.Errorf("reason = %q, want it to say there is no region \"nope\" on that host", reason)
	}

	// Nothing listening.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	connect(closed, "default", "auto")
	b.waitFor(t, 10*time.Second, `document.getElementById("client-reason").textContent.startsWith("Connection refused")`)

	// The host on this machine: mapped directly.
	connect(port, "default", "auto")
	b.waitFor(t, 10*time.Second, `document.getElementById("client-state").dataset.state === "connected" && !document.getElementById("c-text").disabled`)
	if access := eval[string](t, b, `document.getElementById("client-access").textContent`); !strings.HasPrefix(access, "local") {
		t.Errorf("access = %q, want local (mapped directly)", access)
	}
	if !eval[bool](t, b, `document.getElementById("client-reason").hidden`) {
		t.Errorf("a failure reason is still shown once connected")
	}

	// Writes both ways.
	h.MustCLI(t, "write", "from the CLI")
	b.waitFor(t, 5*time.Second, `document.getElementById("c-text").value === "from the CLI"`)
	b.setText(t, "c-text", "from the client page")
	b.do(t, chromedp.Click(chromedp.ID("c-write")))
	b.waitFor(t, 5*time.Second, `document.getElementById("c-msg").textContent.startsWith("Written")`)
	if got := h.MustCLI(t, "read"); got != "from the client page" {
		t.Errorf("shmgr read = %q, want the page's write", got)
	}
	b.setText(t, "c-text", strings.Repeat("é", 2046)) // 4092 bytes
	b.waitFor(t, 2*time.Second, `document.getElementById("c-write").disabled && document.getElementById("c-write").title.startsWith("Over the limit")`)
	b.do(t, chromedp.Focus(chromedp.ID("c-text")), chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierCtrl)))
	b.waitFor(t, 5*time.Second, `document.getElementById("c-msg").textContent.includes("4091")`)
	if got := h.MustCLI(t, "read"); got != "from the client page" {
		t.Errorf("after the refusal shmgr read = %d bytes, want the content before", len(got))
	}
	// The refused edit is still in the box: a write meanwhile does not
	// clobber it; Reload takes the new content.
	h.MustCLI(t, "write", "Sensor 7\nstatus: ok\nlast update: 12:04:31\n")
	b.waitFor(t, 5*time.Second, `!document.getElementById("c-notice").hidden && document.getElementById("c-text").value.length === 2046`)
	b.do(t, chromedp.Click(chromedp.ID("c-reload")))
	b.waitFor(t, 5*time.Second, `document.getElementById("c-text").value.startsWith("Sensor 7") && document.getElementById("c-notice").hidden`)
	b.screenshot(t, "gui-client.png")

	// Over TCP, with the reason it is not mapped.
	b.do(t, chromedp.Click(chromedp.ID("client-disconnect")))
	b.waitFor(t, 5*time.Second, `document.getElementById("client-state").dataset.state === "idle"`)
	connect(port, "default", "tcp")
	b.waitFor(t, 10*time.Second, `document.getElementById("client-state").dataset.state === "connected" && document.getElementById("client-access").textContent.startsWith("TCP")`)
	if why := eval[string](t, b, `document.getElementById("client-why").textContent`); !strings.Contains(why, "TCP mode was requested") {
		t.Errorf("why not local = %q", why)
	}
	h.MustCLI(t, "write", "pushed over TCP")
	b.waitFor(t, 5*time.Second, `document.getElementById("c-text").value === "pushed over TCP"`)

	// Chinese, chosen in the page and kept across a reload.
	b.do(t, chromedp.SetValue(chromedp.ID("lang"), "zh"))
	eval[chromedp.Void](t, b, `document.getElementById("lang").dispatchEvent(new Event("change"))`)
	b.waitFor(t, 5*time.Second, `document.getElementById("tab-client").textContent === "客户端 Client" && document.documentElement.lang === "zh-CN"`)
	b.do(t, chromedp.Reload())
	b.waitFor(t, 5*time.Second, `document.getElementById("client-state").textContent === "已连接" && document.getElementById("c-text").value === "pushed over TCP"`)

	// The theme toggle: light, then following the system, then dark.
	b.do(t, chromedp.Click(chromedp.ID("theme")), chromedp.Click(chromedp.ID("theme")))
	if th := eval[string](t, b, `document.documentElement.dataset.theme || "" + "/" + localStorage.getItem("shmgr.theme")`); th != "dark" {
		t.Errorf("after two clicks on the theme toggle data-theme = %q, want dark", th)
	}
}

// TestBrowserClientOutages: the client page says so when a host accepts
// the connection and never answers (timed out), and when the host it is
// connected to goes away (reconnecting), and it comes back by itself,
// with the content, when the host restarts.
func TestBrowserClientOutages(t *testing.T) {
	t.Parallel()
	b, h := clientPage(t)
	connect := func(port, mode string) { t.Helper(); b.connectClient(t, port, "default", mode) }

	// A listener that accepts and never says a word.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	_, silentPort, _ := net.SplitHostPort(silent.Addr().String())
	connect(silentPort, "tcp")
	took := b.waitFor(t, 20*time.Second, `document.getElementById("client-state").dataset.state === "failed" && !document.getElementById("client-reason").hidden`)
	if reason := eval[string](t, b, `document.getElementById("client-reason").textContent`); !strings.HasPrefix(reason, "Timed out") {
		t.Errorf("reason = %q, want it to say the connection timed out", reason)
	}
	t.Logf("a silent host was reported after %v", took)

	// Connected over TCP; the host stops, then comes back.
	_, port, _ := net.SplitHostPort(h.Addr)
	h.MustCLI(t, "write", "before the outage")
	connect(port, "tcp")
	b.waitFor(t, 10*time.Second, `document.getElementById("client-state").dataset.state === "connected" && document.getElementById("c-text").value === "before the outage"`)
	h.Stop(t)
	// The watch learns of the outage when its connection ends, or after
	// two keepalives (10 s) of silence; a loaded machine adds to both.
	b.waitFor(t, 40*time.Second, `document.getElementById("client-state").dataset.state === "reconnecting" && !document.getElementById("client-reason").hidden`)
	if reason := eval[string](t, b, `document.getElementById("client-reason").textContent`); !strings.Contains(reason, "reconnecting") {
		t.Errorf("reason while the host is down = %q, want it to say it is reconnecting", reason)
	}
	h.Restart(t)
	h.MustCLI(t, "write", "after the outage")
	b.waitFor(t, 30*time.Second, `document.getElementById("client-state").dataset.state === "connected" && document.getElementById("c-text").value === "after the outage"`)
}

// TestGUIRefusesRemote checks that the GUI will not listen beyond
// loopback unless told to.
func TestGUIRefusesRemote(t *testing.T) {
	t.Parallel()
	_, errOut, code := shmtest.Run(t, nil, "gui", "--no-browser", "--listen", "0.0.0.0:0", "--data-dir", t.TempDir())
	if code != 2 || !strings.Contains(errOut, "--allow-remote") {
		t.Errorf("shmgr gui --listen 0.0.0.0:0 = exit %d, %q; want exit 2 naming --allow-remote", code, errOut)
	}
}

package webui_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shmgr/shmgr/client"
)

// TestBrowserMappedClientOutage: a Client mode page that maps the region
// (local) says "host unreachable" within seconds of the host stopping,
// and that the region stays readable and writable; a write through the
// page works meanwhile and is there when the host returns, and the page
// says connected again.
func TestBrowserMappedClientOutage(t *testing.T) {
	t.Parallel()
	b, h := clientPage(t)
	_, port, _ := net.SplitHostPort(h.Addr)
	h.MustCLI(t, "write", "before the outage")
	b.connectClient(t, port, "default", "local")
	b.waitFor(t, 10*time.Second, `document.getElementById("client-state").dataset.state === "connected" && document.getElementById("c-text").value === "before the outage"`)

	h.Stop(t)
	took := b.waitFor(t, 10*time.Second, `document.getElementById("client-state").dataset.state === "unreachable" && !document.getElementById("client-reason").hidden`)
	t.Logf("the page said host unreachable %v after the host stopped", took)
	if s := eval[string](t, b, `document.getElementById("client-state").textContent`); s != "host unreachable" {
		t.Errorf("state shown = %q, want \"host unreachable\"", s)
	}
	if reason := eval[string](t, b, `document.getElementById("client-reason").textContent`); !strings.Contains(reason, "stays readable and writable") {
		t.Errorf("reason = %q, want it to say the mapped region stays readable and writable", reason)
	}
	b.setText(t, "c-text", "written while the host was down")
	b.do(t, chromedp.Click(chromedp.ID("c-write")))
	b.waitFor(t, 5*time.Second, `document.getElementById("c-msg").textContent.startsWith("Written")`)

	h.Restart(t)
	b.waitFor(t, 10*time.Second, `document.getElementById("client-state").dataset.state === "connected" && document.getElementById("client-reason").hidden`)
	if got := h.MustCLI(t, "read"); got != "written while the host was down" {
		t.Errorf("after the restart shmgr read = %q, want the page's write", got)
	}
}

// TestBrowserLockWait: a page write that waits for a lock another program
// holds says who holds it, in Host mode and in Client mode, and is
// written once the lock is released.
func TestBrowserLockWait(t *testing.T) {
	t.Parallel()
	b := newBrowser(t)
	g := startGUI(t)
	b.open(t, g)
	port := b.startHost(t)
	other, err := client.Dial(t.Context(), "127.0.0.1:"+port, "", client.Options{Mode: client.ModeLocal})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for _, p := range []string{"h", "c"} {
		if p == "c" {
			b.do(t, chromedp.Click(chromedp.ID("tab-client")))
			b.connectClient(t, port, "default", "tcp")
			b.waitFor(t, 10*time.Second, `document.getElementById("client-state").dataset.state === "connected" && !document.getElementById("c-text").disabled`)
		}
		l, err := other.Lock(t.Context(), client.LockOptions{Lease: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		b.setText(t, p+"-text", "written after the lock, "+p)
		eval[chromedp.Void](t, b, `document.getElementById("`+p+`-write").click()`)
		b.waitFor(t, 5*time.Second, `document.getElementById("`+p+`-msg").textContent.startsWith("Waiting for the region's lock, held by shmgr client pid")`)
		if err := l.Unlock(t.Context()); err != nil {
			t.Fatal(err)
		}
		b.waitFor(t, 5*time.Second, `document.getElementById("`+p+`-msg").textContent.startsWith("Written")`)
		if got, _ := other.Read(t.Context()); string(got) != "written after the lock, "+p {
			t.Errorf("%s: after the lock the region holds %q", p, got)
		}
	}
}

// TestBrowserConnectAnswerOvertaken: the connect request's answer is the
// state when the host answered it; the page's stream may have shown a
// newer one by the time that answer reaches the page (the host went away
// in between, on a loaded machine). The late answer must not put back
// "connected": nothing would correct it, since the stream sends a state
// only when it changes. The page's fetch of /api/client/connect is held
// until the stream has shown the outage.
func TestBrowserConnectAnswerOvertaken(t *testing.T) {
	t.Parallel()
	b, h := clientPage(t)
	eval[chromedp.Void](t, b, `(() => {
		const f = window.fetch;
		window.connectHeld = new Promise((release) => { window.releaseConnect = release; });
		window.fetch = async (path, init) => {
			const res = await f(path, init);
			if (String(path).includes("/api/client/connect")) await window.connectHeld;
			return res;
		};
	})()`)
	_, port, _ := net.SplitHostPort(h.Addr)
	b.connectClient(t, port, "default", "tcp")
	b.waitFor(t, 10*time.Second, `document.getElementById("client-state").dataset.state === "connected" && document.getElementById("client-connect").disabled`)
	h.Stop(t)
	b.waitFor(t, 40*time.Second, `document.getElementById("client-state").dataset.state === "reconnecting"`)
	eval[chromedp.Void](t, b, `window.releaseConnect()`)
	b.waitFor(t, 10*time.Second, `!document.getElementById("client-connect").disabled`)
	if st := eval[string](t, b, `document.getElementById("client-state").dataset.state`); st != "reconnecting" {
		t.Errorf("after the connect request's late answer the page shows %q, want reconnecting (the stream's newer state)", st)
	}
	if hidden := eval[bool](t, b, `document.getElementById("client-reason").hidden`); hidden {
		t.Error("after the connect request's late answer the reason (reconnecting) is hidden")
	}
}

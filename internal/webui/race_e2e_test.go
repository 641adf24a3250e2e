package webui_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// rounds bounds TestBrowserWriteRaces, per page.
const rounds = 20

// TestBrowserWriteRaces races the page's Write against a write from the
// CLI or the library, round after round, and checks after every round
// that the page tells the truth: its version label and content are the
// region's, and the conflict notice shows exactly when the page's write
// was refused (never when nothing of the user's is at stake). Half of the
// rounds write the moment the page's write commits, so that the other
// write's push and the page's HTTP reply arrive in either order; the
// others write and click after random delays of up to 40 ms, so that
// the other write sometimes goes first and makes the page's conditional write a real conflict.
func TestBrowserWriteRaces(t *testing.T) {
	t.Parallel()
	b := newBrowser(t)
	g := startGUI(t)
	b.open(t, g)
	addr := "127.0.0.1:" + b.startHost(t)

	r, err := client.Dial(t.Context(), addr, "", client.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	for _, p := range []string{"h", "c"} {
		if p == "c" {
			// The same races in a Client mode page (mapped, as the CLI's).
			b.do(t, chromedp.Click(chromedp.ID("tab-client")))
			b.connectClient(t, strings.TrimPrefix(addr, "127.0.0.1:"), "default", "auto")
			b.waitFor(t, 10*time.Second, `document.getElementById("client-state").dataset.state === "connected" && !document.getElementById("c-text").disabled`)
		}
		t.Run("page="+map[string]string{"h": "host", "c": "client"}[p], func(t *testing.T) { raceRounds(t, b, r, addr, p) })
	}
}

// raceRounds runs the rounds of TestBrowserWriteRaces against the editor
// with prefix p ("h": Host mode, "c": Client mode).
func raceRounds(t *testing.T, b *browser, r *client.Region, addr, p string) {
	id := func(s string) string { return p + "-" + s }
	// shows is the condition that the page shows content at version v,
	// with no conflict notice.
	shows := func(content []byte, v uint64) string {
		return fmt.Sprintf(`document.getElementById(%q).textContent === %q && document.getElementById(%q).value === %s && document.getElementById(%q).hidden`,
			id("version"), "version "+strconv.FormatUint(v, 10), id("text"), strconv.Quote(string(content)), id("notice"))
	}
	// notBusy: the page's write has its answer (its Write button is
	// enabled again; it is disabled while a write is in flight).
	notBusy := `!document.getElementById("` + id("write") + `").disabled`
	outcomes := map[string]int{}
	for i := range rounds {
		cur, v0, err := r.ReadVersion(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		b.waitFor(t, 5*time.Second, shows(cur, v0))

		byCLI := i%2 == 1
		afterCommit := i%4 < 2
		mine := fmt.Sprintf("page %d", i)
		theirs := fmt.Sprintf("library %d", i)
		if byCLI {
			theirs = fmt.Sprintf("cli %d", i)
		}
		b.setText(t, id("text"), mine) // as if typed

		w, err := r.Watch(t.Context(), client.WatchOptions{From: v0, HasFrom: true})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		done := make(chan error, 1)
		go func() {
			if afterCommit {
				// The moment the page's write commits (or, if it is
				// refused, gives up after the deadline).
				for {
					ev, err := w.Next(ctx)
					if err != nil || string(ev.Content) == mine {
						break
					}
				}
			} else {
				select {
				case <-time.After(time.Duration(rand.IntN(40)) * time.Millisecond):
				case <-ctx.Done():
				}
			}
			if byCLI {
				_, errOut, code := shmtest.Run(t, nil, "write", theirs, "--host", addr)
				if code != 0 {
					done <- fmt.Errorf("shmgr write: exit %d: %s", code, errOut)
					return
				}
				done <- nil
				return
			}
			_, err := r.Write(context.Background(), []byte(theirs))
			done <- err
		}()
		if !afterCommit {
			// The click comes after a random delay too: either write may
			// go first. (A deliberate offset, not a wait for a state.)
			<-time.After(time.Duration(rand.IntN(40)) * time.Millisecond)
		}
		eval[chromedp.Void](t, b, `document.getElementById("`+id("write")+`").click()`)
		if afterCommit {
			// Refused writes never commit "mine": stop waiting for it once
			// the page has its answer.
			b.waitFor(t, 10*time.Second, notBusy)
			if !strings.HasPrefix(eval[string](t, b, `document.getElementById("`+id("msg")+`").textContent`), "Written") {
				cancel()
			}
		}
		err = <-done
		cancel()
		w.Close()
		if err != nil {
			t.Fatalf("round %d: the other write: %v", i, err)
		}
		b.waitFor(t, 10*time.Second, notBusy)

		final, vf, err := r.ReadVersion(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if string(final) != theirs {
			t.Fatalf("round %d: the region holds %q, want the other write's %q (it is unconditional and came after, or before a refused page write)", i, final, theirs)
		}
		msg := eval[string](t, b, `document.getElementById("`+id("msg")+`").textContent`)
		switch {
		case strings.HasPrefix(msg, "Written: version "):
			// The page's write went first; the other write replaced it.
			// The page follows it, with no notice: nothing was typed since.
			if vf != v0+2 || msg != "Written: version "+strconv.FormatUint(v0+1, 10) {
				t.Fatalf("round %d: the page says %q and the region is at version %d, from %d", i, msg, vf, v0)
			}
			b.waitFor(t, 5*time.Second, shows(final, vf))
			outcomes["written"]++
		default:
			// The other write went first: the page's conditional write was
			// refused, the edit kept, and the notice names the version.
			wantNotice := fmt.Sprintf("Not written: changed by someone else at version %d", vf)
			b.waitFor(t, 5*time.Second, fmt.Sprintf(`!document.getElementById(%q).hidden && document.getElementById(%q).textContent.startsWith(%q) && document.getElementById(%q).value === %q`, id("notice"), id("notice-text"), wantNotice, id("text"), mine))
			if vf != v0+1 {
				t.Fatalf("round %d: refused page write, but the region went from version %d to %d", i, v0, vf)
			}
			b.do(t, chromedp.Click(chromedp.ID(id("reload"))))
			b.waitFor(t, 5*time.Second, shows(final, vf))
			outcomes["conflict"]++
		}
		// The page still follows pushes: a write now appears.
		after := fmt.Sprintf("after round %d", i)
		va, err := r.Write(t.Context(), []byte(after))
		if err != nil {
			t.Fatal(err)
		}
		b.waitFor(t, 5*time.Second, shows([]byte(after), va))
	}
	t.Logf("outcomes of %d rounds: %v", rounds, outcomes)
}

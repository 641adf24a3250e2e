package webui_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserHostSettings drives Host mode's settings in the page: the
// form starts from "shmgr host"'s defaults, a host started with TLS and
// chosen limits shows its certificate's fingerprint and a connect line
// that pins it, and the CLI reaches it with that line's flags.
func TestBrowserHostSettings(t *testing.T) {
	t.Parallel()
	b := newBrowser(t)
	g := startGUI(t)
	b.open(t, g)

	// The form is filled from the first host status the stream sends.
	b.waitFor(t, 10*time.Second, `document.getElementById("host-max-region-size").value !== ""`)
	for id, want := range map[string]string{"host-idle-timeout": "600", "host-lock-timeout": "5", "host-max-conns": "4096", "host-max-regions": "1024"} {
		if got := eval[string](t, b, `document.getElementById("`+id+`").value`); got != want {
			t.Errorf("%s shows %q before a start, want the default %q", id, got, want)
		}
	}
	eval[chromedp.Void](t, b, `document.getElementById("host-settings").open = true`)
	b.do(t, chromedp.Click(chromedp.ID("host-tls")))
	b.setText(t, "host-lock-timeout", "2.5")
	b.setText(t, "host-max-conns", "50")
	port := b.startHost(t)
	b.waitFor(t, 10*time.Second, `!document.getElementById("fact-tls-dd").hidden`)
	fp := eval[string](t, b, `document.getElementById("fact-tls").textContent`)
	if len(fp) != 95 || strings.Count(fp, ":") != 31 {
		t.Errorf("fingerprint shown = %q, want 32 hex bytes joined by colons", fp)
	}
	connect := eval[string](t, b, `document.getElementById("fact-connect").textContent`)
	if !strings.HasSuffix(connect, " --tls-fingerprint "+fp) {
		t.Errorf("connect line %q does not pin the fingerprint %s", connect, fp)
	}
	for id, want := range map[string]string{"host-lock-timeout": "2.5", "host-max-conns": "50"} {
		if got := eval[string](t, b, `document.getElementById("`+id+`").value`); got != want {
			t.Errorf("%s shows %q while the host runs, want the setting in force %q", id, got, want)
		}
	}
	if !eval[bool](t, b, `document.getElementById("host-tls").disabled && document.getElementById("host-max-conns").disabled`) {
		t.Error("the settings can be edited while the host runs")
	}
	info := cli(t, "127.0.0.1:"+port, "info", "--tls-fingerprint", fp)
	for _, want := range []string{"lock timeout 2.5s", "50 connections"} {
		if !strings.Contains(info, want) {
			t.Errorf("shmgr info over TLS does not show %q:\n%s", want, info)
		}
	}
}

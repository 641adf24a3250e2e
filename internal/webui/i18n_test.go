package webui_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestEveryErrorTranslated checks that every error code the GUI's Go code
// can send has words in both languages of dist/i18n.js (err_<code>), and
// that the Chinese ones are not the English ones: the page otherwise
// shows the server's English message.
func TestEveryErrorTranslated(t *testing.T) {
	srcs, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	codeRE := regexp.MustCompile(`(?:errorf\(http\.\w+, |Code: +)"([a-z_]+)"`)
	codes := map[string]string{} // code -> file
	for _, f := range srcs {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range codeRE.FindAllSubmatch(b, -1) {
			codes[string(m[1])] = f
		}
	}
	if len(codes) < 20 {
		t.Fatalf("found only %d error codes in %v: the pattern no longer matches the code", len(codes), srcs)
	}
	js, err := os.ReadFile(filepath.Join("dist", "i18n.js"))
	if err != nil {
		t.Fatal(err)
	}
	en, zh := i18nSection(t, string(js), "en"), i18nSection(t, string(js), "zh")
	var missing []string
	for code, file := range codes {
		key := "err_" + code
		e, okE := en[key]
		z, okZ := zh[key]
		switch {
		case !okE || !okZ:
			missing = append(missing, key+" (sent by "+file+")")
		case e == z:
			t.Errorf("%s: the Chinese text is the English one: %q", key, z)
		}
	}
	slices.Sort(missing)
	for _, m := range missing {
		t.Errorf("no English or Chinese words for %s", m)
	}
	for k := range en {
		if _, ok := zh[k]; !ok {
			t.Errorf("%s has English words but no Chinese ones", k)
		}
	}
}

// i18nSection returns the keys and texts of one language of i18n.js.
func i18nSection(t *testing.T, js, lang string) map[string]string {
	t.Helper()
	start := strings.Index(js, "\n  "+lang+": {")
	if start < 0 {
		t.Fatalf("i18n.js has no %q section", lang)
	}
	end := strings.Index(js[start:], "\n  }")
	if end < 0 {
		t.Fatalf("i18n.js: the %q section does not end", lang)
	}
	out := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(\w+): "((?:[^"\\]|\\.)*)"`).FindAllStringSubmatch(js[start:start+end], -1) {
		out[m[1]] = m[2]
	}
	return out
}

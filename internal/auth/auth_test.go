package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/proto"
)

// secretRE is the form of a secret NewSecret makes: "shm_" and 40 hex
// digits (160 random bits).
var secretRE = regexp.MustCompile(`^shm_[0-9a-f]{40}$`)

// open opens a store in a fresh directory.
func open(t *testing.T) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s, dir
}

// writeFile replaces the token file in dir with b and gives it a
// modification time later than any before, so a Store sees the change
// whatever the file system's timestamp granularity.
func writeFile(t *testing.T, dir string, b []byte) {
	t.Helper()
	p := filepath.Join(dir, FileName)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	bumpMtime(t, p)
}

// mtimeStep makes every bumpMtime distinct.
var mtimeStep struct {
	sync.Mutex
	n int
}

// bumpMtime moves path's modification time forward by a whole second
// more than the last bump: a change a Store must notice.
func bumpMtime(t *testing.T, path string) {
	t.Helper()
	mtimeStep.Lock()
	mtimeStep.n++
	d := time.Duration(mtimeStep.n) * time.Second
	mtimeStep.Unlock()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	m := st.ModTime().Add(d)
	if err := os.Chtimes(path, m, m); err != nil {
		t.Fatal(err)
	}
}

func TestOpenCreatesAdmin(t *testing.T) {
	t.Parallel()
	s, dir := open(t)
	p := filepath.Join(dir, FileName)
	if s.Path() != p {
		t.Errorf("Path() = %q, want %q", s.Path(), p)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatalf("token file not created: %v", err)
	}
	if got := st.Mode().Perm(); got != 0o600 {
		t.Errorf("token file mode = %v, want 0600 (it holds secrets)", got)
	}
	admin := s.Admin()
	if !secretRE.MatchString(admin) {
		t.Errorf("Admin() = %q, want shm_ and 40 hex digits", admin)
	}
	ts, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 1 || ts[0].Name != AdminName || ts[0].Access != ReadWrite || len(ts[0].Regions) != 0 || ts[0].Secret != admin {
		t.Errorf("List() = %+v, want one read-write admin token with the admin secret", ts)
	}
	if ts[0].Created.IsZero() || time.Since(ts[0].Created) > time.Hour {
		t.Errorf("admin token Created = %v, want about now", ts[0].Created)
	}
	// No temporary file is left beside it.
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != FileName {
			t.Errorf("Open left %s in the data directory", e.Name())
		}
	}

	// A second Open reuses the token, and ReadAdmin reads the same one.
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := s2.Admin(); got != admin {
		t.Errorf("second Open: Admin() = %q, want the first one %q", got, admin)
	}
	if got, err := ReadAdmin(dir); err != nil || got != admin {
		t.Errorf("ReadAdmin = %q, %v; want %q", got, err, admin)
	}
}

func TestNewSecret(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		s := NewSecret()
		if !secretRE.MatchString(s) {
			t.Fatalf("NewSecret() = %q, want shm_ and 40 hex digits", s)
		}
		if seen[s] {
			t.Fatalf("NewSecret() repeated %q", s)
		}
		seen[s] = true
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	admin := s.Admin()
	ro, err := s.Add(Token{Name: "viewer", Access: ReadOnly, Regions: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		secret  string
		want    Grant
		wantErr error
	}{
		{"admin", admin, Grant{Name: AdminName}, nil},
		{"read-only", ro.Secret, Grant{Name: "viewer", ReadOnly: true, Regions: []string{"a", "b"}}, nil},
		{"empty", "", Grant{}, ErrNoToken},
		{"wrong", "shm_0000000000000000000000000000000000000000", Grant{}, ErrBadToken},
		{"prefix", admin[:len(admin)-1], Grant{}, ErrBadToken},
		{"half", admin[:len(admin)/2], Grant{}, ErrBadToken},
		{"extended", admin + "0", Grant{}, ErrBadToken},
		{"upper-case", strings.ToUpper(admin), Grant{}, ErrBadToken},
		{"space", admin + " ", Grant{}, ErrBadToken},
		{"one-byte", "s", Grant{}, ErrBadToken},
		{"other-token-with-admin-prefix", admin[:20] + ro.Secret[20:], Grant{}, ErrBadToken},
	}
	for _, tt := range tests {
		t.Run("token="+tt.name, func(t *testing.T) {
			g, err := s.Check(tt.secret)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Check(%s) error = %v, want %v", tt.name, err, tt.wantErr)
			}
			if g.Name != tt.want.Name || g.ReadOnly != tt.want.ReadOnly || !slices.Equal(g.Regions, tt.want.Regions) {
				t.Errorf("Check(%s) = %+v, want %+v", tt.name, g, tt.want)
			}
		})
	}
	// The grant's Regions is a copy: changing it does not change the store.
	g, _ := s.Check(ro.Secret)
	g.Regions[0] = "changed"
	if g2, _ := s.Check(ro.Secret); g2.Regions[0] != "a" {
		t.Errorf("changing a returned grant changed the store: Regions = %v", g2.Regions)
	}
}

func TestGrantRegion(t *testing.T) {
	t.Parallel()
	all := Grant{Name: "all"}
	some := Grant{Name: "some", Regions: []string{"sensors", "alerts"}}
	for _, id := range []string{"default", "sensors", "x"} {
		if !all.Region(id) {
			t.Errorf("a grant without regions does not cover %q", id)
		}
	}
	for id, want := range map[string]bool{"sensors": true, "alerts": true, "default": false, "Sensors": false, "sensor": false, "": false} {
		if got := some.Region(id); got != want {
			t.Errorf("Grant{Regions: sensors,alerts}.Region(%q) = %v, want %v", id, got, want)
		}
	}
	if AllGrant.ReadOnly || len(AllGrant.Regions) != 0 {
		t.Errorf("AllGrant = %+v, want read-write on every region", AllGrant)
	}
}

func TestAddRemoveList(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	tok, err := s.Add(Token{Name: "sensor-7", Regions: []string{"sensors"}})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Access != ReadWrite || !secretRE.MatchString(tok.Secret) || tok.Created.IsZero() {
		t.Errorf("Add with defaults = %+v, want rw, a fresh secret and a creation time", tok)
	}
	mine, err := s.Add(Token{Name: "mine", Secret: "0123456789abcdef", Access: ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	if mine.Secret != "0123456789abcdef" {
		t.Errorf("Add with a secret stored %q", mine.Secret)
	}
	ts, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, x := range ts {
		names = append(names, x.Name)
	}
	if want := []string{AdminName, "sensor-7", "mine"}; !slices.Equal(names, want) {
		t.Errorf("List names = %v, want %v", names, want)
	}

	// Adding a name again replaces the token: the old secret stops working.
	repl, err := s.Add(Token{Name: "sensor-7"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(tok.Secret); !errors.Is(err, ErrBadToken) {
		t.Errorf("replaced token still accepted: Check = %v", err)
	}
	if g, err := s.Check(repl.Secret); err != nil || g.Name != "sensor-7" || len(g.Regions) != 0 {
		t.Errorf("replacement: Check = %+v, %v; want sensor-7 on every region", g, err)
	}
	if ts, _ := s.List(); len(ts) != 3 {
		t.Errorf("after replacing: %d tokens, want 3", len(ts))
	}

	if err := s.Remove("mine"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(mine.Secret); !errors.Is(err, ErrBadToken) {
		t.Errorf("removed token still accepted: Check = %v", err)
	}
	if err := s.Remove("mine"); err == nil || !strings.Contains(err.Error(), `"mine"`) {
		t.Errorf("Remove of a missing token = %v, want an error naming it", err)
	}
	// The file stays owner-only after rewrites.
	if st, err := os.Stat(s.Path()); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("token file after Add/Remove: %v, %v; want mode 0600", st.Mode(), err)
	}
}

func TestAddRefuses(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	tests := []struct {
		name string
		tok  Token
		want string // in the error
	}{
		{"empty-name", Token{}, "name"},
		{"name-with-space", Token{Name: "a b"}, "without spaces"},
		{"name-with-newline", Token{Name: "a\nb"}, "without spaces"},
		{"short-secret", Token{Name: "x", Secret: "0123456789abcde"}, "16"},
		{"secret-with-space", Token{Name: "x", Secret: "0123456789 abcdef"}, "without spaces"},
		{"secret-with-tab", Token{Name: "x", Secret: "0123456789\tabcdef"}, "without spaces"},
		{"bad-access", Token{Name: "x", Access: "admin"}, `"admin"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Add(tt.tok)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Add(%+v) = %v, want an error mentioning %q", tt.tok, err, tt.want)
			}
		})
	}
	if ts, _ := s.List(); len(ts) != 1 {
		t.Errorf("refused Adds changed the store: %d tokens", len(ts))
	}
}

// TestAddSecretsAUTHCanCarry: a secret the store accepts must be one a
// client can send. AUTH's token is printable ASCII (PROTOCOL.md); a store
// that accepts anything else hands the operator a token that no client
// can ever use (with "shmgr host --token", a host nobody can reach).
func TestAddSecretsAUTHCanCarry(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	var unusable []string
	for _, secret := range []string{
		"tökén-with-ünïcode-123",
		"0123456789abcdef\x7f",
		"0123456789abcdef\x00",
		"0123456789abcdef\x1b[0m",
		"0123456789abcdef\v",
	} {
		if _, err := s.Add(Token{Name: "x", Secret: secret}); err != nil {
			continue // refused: fine
		}
		p := proto.NewParser(proto.DefaultLimits())
		req, _, err := p.Next([]byte("AUTH " + secret + "\n"))
		if err != nil || req.Cmd != proto.CmdAuth || string(req.ID) != secret {
			unusable = append(unusable, fmt.Sprintf("%q (AUTH: %v)", secret, err))
		}
	}
	if len(unusable) > 0 {
		t.Errorf("BUG: Add accepted secrets that AUTH cannot carry, so no client can ever use them:\n  %s\n"+
			"internal/auth/auth.go Add (and reload) check only length and whitespace; accept printable ASCII "+
			"(0x21-0x7E) only, the bytes PROTOCOL.md allows in AUTH's token. \"shmgr host --token\" goes through Add, "+
			"so a host started with such a token can be reached by nobody", strings.Join(unusable, "\n  "))
	}
}

// TestAddRegionsAreIDs: a token's regions are shm_ids. A name that is
// not one can never match a region, and it goes into the AUTH reply
// ("OK rw regions=a,b"), where a space or a newline breaks the line a
// client parses. "shmgr token add --regions 'sensors, alerts'" stores
// " alerts", so the token silently does not cover alerts.
func TestAddRegionsAreIDs(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	var accepted []string
	for _, regions := range [][]string{{"sensors", " alerts"}, {"a b"}, {"a\nOK"}, {""}, {"a,b"}, {"../x"}} {
		if _, err := s.Add(Token{Name: "x", Regions: regions}); err == nil {
			accepted = append(accepted, fmt.Sprintf("%q", regions))
		}
	}
	if len(accepted) > 0 {
		t.Errorf("BUG: Add accepted region lists that hold names no region can have: %s. "+
			"internal/auth/auth.go Add does not check Regions; refuse any that is not a valid shm_id (proto.ValidID / host.CheckID), "+
			"which also keeps the AUTH reply's \"regions=\" list one line of ids", strings.Join(accepted, ", "))
	}
}

// TestReload: a Store sees tokens added and removed by another Store (the
// CLI's "shmgr token add/rm") on its next Check, without a restart.
func TestReload(t *testing.T) {
	t.Parallel()
	host, dir := open(t)
	cli, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cli.Add(Token{Name: "late", Access: ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	bumpMtime(t, cli.Path())
	if g, err := host.Check(tok.Secret); err != nil || g.Name != "late" || !g.ReadOnly {
		t.Fatalf("token added by another store: Check = %+v, %v; want the read-only grant", g, err)
	}
	if err := cli.Remove("late"); err != nil {
		t.Fatal(err)
	}
	bumpMtime(t, cli.Path())
	if _, err := host.Check(tok.Secret); !errors.Is(err, ErrBadToken) {
		t.Fatalf("token removed by another store: Check = %v, want ErrBadToken", err)
	}
	// A file deleted from under a running store: the tokens it knows stay.
	if err := os.Remove(host.Path()); err != nil {
		t.Fatal(err)
	}
	if _, err := host.Check(host.Admin()); err == nil {
		t.Logf("after the file was deleted the admin token still works (tokens are kept in memory)")
	}
}

// TestReloadSameMtime: replacing the token file within one tick of the
// file system's clock (4 ms on many Linux kernels, 2 s on FAT) leaves its
// modification time unchanged. A Store that only compares modification
// times then keeps the old tokens: a "shmgr token rm" is missed and the
// revoked token keeps working.
func TestReloadSameMtime(t *testing.T) {
	t.Parallel()
	host, dir := open(t)
	cli, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cli.Add(Token{Name: "revoke-me"})
	if err != nil {
		t.Fatal(err)
	}
	bumpMtime(t, cli.Path())
	if _, err := host.Check(tok.Secret); err != nil {
		t.Fatalf("Check of a freshly added token: %v", err)
	}
	st, err := os.Stat(host.Path())
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.Remove("revoke-me"); err != nil {
		t.Fatal(err)
	}
	// The removal lands in the same clock tick as the add.
	if err := os.Chtimes(host.Path(), st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	if _, err := host.Check(tok.Secret); err == nil {
		t.Errorf("BUG: a token removed from %s is still accepted because the file's modification time did not change "+
			"(internal/auth/auth.go reload compares ModTime only, and file timestamps are coarse: one kernel tick, often 4 ms): "+
			"also compare size and identity (os.SameFile on the FileInfo: save renames a new file into place)", FileName)
	}
}

func TestBadFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
		want    []string // in the error
	}{
		{"not-json", "tokens: yes\n", []string{FileName}},
		{"truncated", `{"tokens":[{"name":"admin","tok`, []string{FileName}},
		{"wrong-shape", `{"tokens":{"name":"admin"}}`, []string{FileName}},
		{"short-secret", `{"tokens":[{"name":"admin","token":"tooshort","access":"rw"}]}`, []string{FileName, `"admin"`, "shorter than 16"}},
		{"bad-access", `{"tokens":[{"name":"a","token":"0123456789abcdef","access":"root"}]}`, []string{FileName, `"root"`, `"rw"`, `"ro"`}},
		{"missing-access", `{"tokens":[{"name":"a","token":"0123456789abcdef"}]}`, []string{FileName, "access"}},
		{"empty", "", []string{FileName, "move it aside"}},
		{"garbage", "\x00\x01\xfe", []string{FileName, "move it aside"}},
		{"array", `[]`, []string{FileName, "move it aside"}},
		{"tokens-null", `{"tokens":null}`, []string{FileName, `"tokens" is missing or null`, "move it aside"}},
		{"tokens-missing", `{"token":[{"name":"admin","token":"0123456789abcdef","access":"rw"}]}`, []string{FileName, `"tokens" is missing or null`}},
		{"missing-name", `{"tokens":[{"token":"0123456789abcdef","access":"rw"}]}`, []string{FileName, "no name"}},
		{"missing-secret", `{"tokens":[{"name":"admin","access":"rw"}]}`, []string{FileName, `"admin"`, "shorter than 16"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFile(t, dir, []byte(tt.content))
			_, err := Open(dir)
			if err == nil {
				t.Fatalf("Open with %s: no error", tt.name)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Open with %s: error %q does not mention %q", tt.name, err, w)
				}
			}
		})
	}

	// A file that goes bad under a running store fails closed: no grant.
	t.Run("goes-bad", func(t *testing.T) {
		t.Parallel()
		s, dir := open(t)
		admin := s.Admin()
		writeFile(t, dir, []byte("{broken"))
		if g, err := s.Check(admin); err == nil {
			t.Errorf("Check with a corrupt token file = %+v, want an error", g)
		}
		if _, err := s.List(); err == nil {
			t.Errorf("List with a corrupt token file: no error")
		}
	})

	// A valid file without tokens is an empty store, not a fresh admin;
	// EnsureAdmin then makes one and keeps the others.
	t.Run("empty-list", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		writeFile(t, dir, []byte(`{"tokens":[]}`))
		s, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if a := s.Admin(); a != "" {
			t.Errorf("Admin() = %q, want none", a)
		}
		if _, err := s.Check("0123456789abcdef"); !errors.Is(err, ErrBadToken) {
			t.Errorf("Check on an empty store = %v, want ErrBadToken", err)
		}
		if made, err := s.EnsureAdmin(); !made || err != nil || s.Admin() == "" {
			t.Errorf("EnsureAdmin on an empty store = %v, %v (admin %q); want a new admin token", made, err, s.Admin())
		}
		if made, err := s.EnsureAdmin(); made || err != nil {
			t.Errorf("EnsureAdmin with an admin token = %v, %v; want nothing done", made, err)
		}
	})
	t.Run("no-admin", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		writeFile(t, dir, []byte(`{"tokens":[{"name":"dash","token":"0123456789abcdef","access":"ro"}]}`))
		s, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if made, err := s.EnsureAdmin(); !made || err != nil {
			t.Fatalf("EnsureAdmin = %v, %v; want a new admin token", made, err)
		}
		if g, err := s.Check("0123456789abcdef"); err != nil || g.Name != "dash" {
			t.Errorf("Check(dash) after EnsureAdmin = %+v, %v; want the other token kept", g, err)
		}
	})
}

func TestReadAdmin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := ReadAdmin(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadAdmin without a file = %v, want os.ErrNotExist", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("ReadAdmin created %d files; it must not create anything", len(ents))
	}
	writeFile(t, dir, []byte(`{"tokens":[{"name":"other","token":"0123456789abcdef","access":"ro"}]}`))
	if s, err := ReadAdmin(dir); err == nil || s != "" {
		t.Errorf("ReadAdmin without an admin token = %q, %v; want an error", s, err)
	}
	writeFile(t, dir, []byte("nope"))
	if _, err := ReadAdmin(dir); err == nil {
		t.Errorf("ReadAdmin of a corrupt file: no error")
	}
	b, _ := json.Marshal(file{Tokens: []Token{{Name: "other", Secret: "0123456789abcdef", Access: ReadOnly}, {Name: AdminName, Secret: "fedcba9876543210", Access: ReadWrite}}})
	writeFile(t, dir, b)
	if s, err := ReadAdmin(dir); err != nil || s != "fedcba9876543210" {
		t.Errorf("ReadAdmin = %q, %v; want the admin secret", s, err)
	}
}

// TestConcurrent runs Check, List and Add at once (for -race).
func TestConcurrent(t *testing.T) {
	t.Parallel()
	s, dir := open(t)
	admin := s.Admin()
	other, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for range 50 {
				if _, err := s.Check(admin); err != nil {
					t.Errorf("Check(admin) during concurrent Adds: %v", err)
					return
				}
				s.List()
			}
		})
		wg.Go(func() {
			for j := range 5 {
				if _, err := other.Add(Token{Name: "t" + string(rune('a'+i)) + string(rune('a'+j))}); err != nil {
					t.Errorf("Add: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// FuzzTokenFile loads arbitrary bytes as a token file: Open never panics,
// and a file it accepts holds only valid tokens, each of which Check
// finds.
func FuzzTokenFile(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, FileName), b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(dir)
		if err != nil {
			if !strings.Contains(err.Error(), FileName) {
				t.Fatalf("Open error %q does not name the token file", err)
			}
			return
		}
		ts, err := s.List()
		if err != nil {
			t.Fatalf("List after a successful Open: %v", err)
		}
		last := map[string]Token{} // Check grants the last token with a secret
		for _, tok := range ts {
			if len(tok.Secret) < 16 || tok.Access != ReadWrite && tok.Access != ReadOnly {
				t.Fatalf("Open accepted an invalid token %+v", tok)
			}
			last[tok.Secret] = tok
		}
		for secret, tok := range last {
			g, err := s.Check(secret)
			if err != nil || g.Name != tok.Name || g.ReadOnly != (tok.Access == ReadOnly) || !slices.Equal(g.Regions, tok.Regions) {
				t.Fatalf("Check(%q) = %+v, %v; want the grant of %+v", secret, g, err, tok)
			}
		}
		if admin, err := ReadAdmin(dir); err == nil && admin != s.Admin() {
			t.Fatalf("ReadAdmin = %q, Store.Admin = %q", admin, s.Admin())
		}
	})
}

// TestRefreshHolds: Refresh's number moves when another store changes the
// file (and only then), and Holds tells a token that still grants the
// same from one removed or changed.
func TestRefreshHolds(t *testing.T) {
	t.Parallel()
	host, dir := open(t)
	cli, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cli.Add(Token{Name: "dash", Access: ReadOnly, Regions: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	bumpMtime(t, cli.Path())
	g0, err := host.Refresh()
	if err != nil {
		t.Fatal(err)
	}
	if g, err := host.Refresh(); err != nil || g != g0 {
		t.Errorf("Refresh of an unchanged file = %d, %v; want %d again", g, err, g0)
	}
	grant, err := host.Check(tok.Secret)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		grant Grant
		want  bool
	}{
		{"as granted", grant, true},
		{"other name", Grant{Name: "other", ReadOnly: true, Regions: []string{"a"}}, false},
		{"other access", Grant{Name: "dash", Regions: []string{"a"}}, false},
		{"other regions", Grant{Name: "dash", ReadOnly: true, Regions: []string{"a", "b"}}, false},
	}
	for _, tt := range tests {
		if got := host.Holds(tok.Secret, tt.grant); got != tt.want {
			t.Errorf("%s: Holds = %v, want %v", tt.name, got, tt.want)
		}
	}
	if host.Holds(tok.Secret+"x", grant) {
		t.Errorf("Holds of an unknown secret = true")
	}
	if err := cli.Remove("dash"); err != nil {
		t.Fatal(err)
	}
	bumpMtime(t, cli.Path())
	if g, err := host.Refresh(); err != nil || g == g0 {
		t.Errorf("Refresh after a removal = %d, %v; want a number other than %d", g, err, g0)
	}
	if host.Holds(tok.Secret, grant) {
		t.Errorf("Holds of a removed token = true")
	}
}

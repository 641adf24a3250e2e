// Package auth holds a host's access tokens: which secret grants what
// (read-write or read-only, all regions or some). Tokens live in
// tokens.json in the host's data directory, readable by its owner only.
// The first token, "admin", is made when the host first needs one.
//
// Tokens are compared in constant time, against every stored token, so the
// time a check takes says nothing about how much of a token was right.
package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shmgr/shmgr/internal/atomicfile"
	"github.com/shmgr/shmgr/internal/proto"
)

// FileName is the token file in the data directory.
const FileName = "tokens.json"

// AdminName is the name of the token the host makes for its operator.
const AdminName = "admin"

// Access levels.
const (
	// ReadWrite may read, write, create and delete.
	ReadWrite = "rw"
	// ReadOnly may read, list and watch.
	ReadOnly = "ro"
)

// Token is one stored token.
type Token struct {
	// Name identifies the token to people (never secret).
	Name string `json:"name"`
	// Secret is what a client sends with AUTH.
	Secret string `json:"token"`
	// Access is ReadWrite or ReadOnly.
	Access string `json:"access"`
	// Regions limits the token to these shm_ids; empty means all.
	Regions []string `json:"regions,omitempty"`
	// Created is when the token was made.
	Created time.Time `json:"created"`
}

// Grant is what an authenticated connection may do.
type Grant struct {
	// Name is the token's name.
	Name string
	// ReadOnly forbids writes, LOCK, CREATE and DELETE.
	ReadOnly bool
	// Regions limits access to these shm_ids; empty means all.
	Regions []string
}

// AllGrant is the grant of a connection to an open host.
var AllGrant = Grant{Name: "open"}

// Region reports whether the grant covers the region id.
func (g *Grant) Region(id string) bool {
	return len(g.Regions) == 0 || slices.Contains(g.Regions, id)
}

// file is the on-disk form.
type file struct {
	Tokens []Token `json:"tokens"`
}

// Store is the token file of one data directory. It reloads the file when
// it changes on disk, so tokens added with "shmgr token add" take effect
// without a restart. It is safe for concurrent use.
type Store struct {
	path string
	// mu protects tokens and seen.
	mu     sync.Mutex
	tokens []Token
	seen   os.FileInfo // the file the tokens were read from
	gen    uint64      // counts the times the tokens were (re)read
}

// errRepair ends the message of a token file that cannot be used.
var errRepair = errors.New(`fix it (a JSON object {"tokens": [...]}), or move it aside to have the host make a new admin token (clients then need the new one)`)

// Errors.
var (
	// ErrNoToken: a token was required and none was given.
	ErrNoToken = errors.New("authentication required")
	// ErrBadToken: the token matches none stored.
	ErrBadToken = errors.New("invalid token")
)

// Open loads dir's token file, creating it with a fresh admin token if it
// does not exist.
func Open(dir string) (*Store, error) {
	s := &Store{path: filepath.Join(dir, FileName)}
	if err := s.reload(); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		if _, err := s.Add(Token{Name: AdminName, Access: ReadWrite}); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// EnsureAdmin makes a fresh admin token if the file holds none (it was
// removed by hand, or the list is empty), keeping every other token, and
// reports whether it did: a host without an admin token could print no
// token for its operator.
func (s *Store) EnsureAdmin() (bool, error) {
	if s.Admin() != "" {
		return false, nil
	}
	if _, err := s.Add(Token{Name: AdminName, Access: ReadWrite}); err != nil {
		return false, err
	}
	return true, nil
}

// Path returns the token file's path.
func (s *Store) Path() string { return s.path }

// reload reads the file if it changed.
func (s *Store) reload() error {
	st, err := os.Stat(s.path)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Timestamps are coarse (a kernel tick): a save renames a new file into
	// place, so the file's identity and size tell a change apart too.
	if s.tokens != nil && s.seen != nil && os.SameFile(st, s.seen) && st.ModTime().Equal(s.seen.ModTime()) && st.Size() == s.seen.Size() {
		return nil
	}
	b, err := os.ReadFile(s.path)
	if err != nil {
		return err
	}
	ts, err := parse(s.path, b)
	if err != nil {
		return err
	}
	s.tokens, s.seen = ts, st
	s.gen++
	return nil
}

// Validate reports whether b is a token file a host would load, and if
// not, why: a cluster node checks a changed file with it before it hands
// the file to every other node.
func Validate(b []byte) error {
	_, err := parse(FileName, b)
	return err
}

// parse reads a token file's bytes (path names it in errors).
func parse(path string, b []byte) ([]Token, error) {
	var f struct {
		Tokens *[]Token `json:"tokens"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("token file %s: %v: %w", path, err, errRepair)
	}
	if f.Tokens == nil {
		// Not an empty list: a file that does not say which tokens it
		// holds may be a hand edit gone wrong, and is not guessed at.
		return nil, fmt.Errorf("token file %s: \"tokens\" is missing or null: %w", path, errRepair)
	}
	for i, t := range *f.Tokens {
		if t.Name == "" {
			return nil, fmt.Errorf("token file %s: token %d has no name: %w", path, i, errRepair)
		}
		if err := checkSecret(t.Secret); err != nil {
			return nil, fmt.Errorf("token file %s: token %d (%q): %v", path, i, t.Name, err)
		}
		if t.Access != ReadWrite && t.Access != ReadOnly {
			return nil, fmt.Errorf("token file %s: token %q: access %q: use %q or %q", path, t.Name, t.Access, ReadWrite, ReadOnly)
		}
	}
	if *f.Tokens == nil {
		return []Token{}, nil
	}
	return *f.Tokens, nil
}

// Refresh reads the token file again if it has changed since it was last
// read, and returns a number that changes whenever the tokens do (by this
// call or any other that reads the file).
func (s *Store) Refresh() (uint64, error) {
	err := s.reload()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen, err
}

// Holds reports whether secret is still a stored token with grant g: not
// removed, renamed, or given other access or regions. It does not read
// the file again (Refresh does).
func (s *Store) Holds(secret string, g Grant) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	held := false
	for _, t := range s.tokens {
		if subtle.ConstantTimeCompare([]byte(t.Secret), []byte(secret)) == 1 {
			held = t.Name == g.Name && (t.Access == ReadOnly) == g.ReadOnly && slices.Equal(t.Regions, g.Regions)
		}
	}
	return held
}

// checkSecret accepts what AUTH can carry: at least 16 bytes of printable
// ASCII without spaces (0x21-0x7E).
func checkSecret(secret string) error {
	if len(secret) < 16 {
		return errors.New("the token is shorter than 16 characters")
	}
	for i := 0; i < len(secret); i++ {
		if c := secret[i]; c < 0x21 || c > 0x7e {
			return errors.New("a token must be printable ASCII without spaces (AUTH carries it on a command line)")
		}
	}
	return nil
}

// Check returns the grant of secret, comparing it with every stored token
// in constant time.
func (s *Store) Check(secret string) (Grant, error) {
	if secret == "" {
		return Grant{}, ErrNoToken
	}
	if err := s.reload(); err != nil && !errors.Is(err, os.ErrNotExist) {
		return Grant{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	found := -1
	for i, t := range s.tokens {
		if subtle.ConstantTimeCompare([]byte(t.Secret), []byte(secret)) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Grant{}, ErrBadToken
	}
	t := s.tokens[found]
	return Grant{Name: t.Name, ReadOnly: t.Access == ReadOnly, Regions: slices.Clone(t.Regions)}, nil
}

// List returns the stored tokens.
func (s *Store) List() ([]Token, error) {
	if err := s.reload(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.tokens), nil
}

// Admin returns the admin token's secret ("" if there is none).
func (s *Store) Admin() string {
	ts, _ := s.List()
	for _, t := range ts {
		if t.Name == AdminName {
			return t.Secret
		}
	}
	return ""
}

// NewSecret returns a fresh random token.
func NewSecret() string {
	var b [20]byte
	rand.Read(b[:])
	return "shm_" + hex.EncodeToString(b[:])
}

// Add stores t, replacing a token of the same name; an empty Secret gets
// a fresh one, an empty Access is ReadWrite. It returns the stored token.
func (s *Store) Add(t Token) (Token, error) {
	if t.Name == "" || strings.ContainsAny(t.Name, " \t\r\n") {
		return Token{}, fmt.Errorf("token name %q: give a name without spaces", t.Name)
	}
	if t.Secret == "" {
		t.Secret = NewSecret()
	}
	if err := checkSecret(t.Secret); err != nil {
		return Token{}, err
	}
	for _, r := range t.Regions {
		if !proto.ValidID([]byte(r)) {
			return Token{}, fmt.Errorf("region %q is not a shm_id: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", r)
		}
	}
	if t.Access == "" {
		t.Access = ReadWrite
	}
	if t.Access != ReadWrite && t.Access != ReadOnly {
		return Token{}, fmt.Errorf("access %q: use %q or %q", t.Access, ReadWrite, ReadOnly)
	}
	if t.Created.IsZero() {
		t.Created = time.Now().UTC().Truncate(time.Second)
	}
	ts, err := s.List()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Token{}, err
	}
	ts = slices.DeleteFunc(ts, func(o Token) bool { return o.Name == t.Name })
	ts = append(ts, t)
	return t, s.save(ts)
}

// Remove deletes the token with this name.
func (s *Store) Remove(name string) error {
	ts, err := s.List()
	if err != nil {
		return err
	}
	n := len(ts)
	ts = slices.DeleteFunc(ts, func(o Token) bool { return o.Name == name })
	if len(ts) == n {
		return fmt.Errorf("no token named %q", name)
	}
	return s.save(ts)
}

// save writes the file atomically, owner-only.
func (s *Store) save(ts []Token) error {
	b, err := json.MarshalIndent(file{Tokens: ts}, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Dir(s.path), FileName, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	s.mu.Lock()
	s.tokens, s.seen = nil, nil
	s.mu.Unlock()
	return s.reload()
}

// ReadAdmin returns the admin token stored in dir without creating
// anything: for a CLI on the host's machine that may read the host's data
// directory.
func ReadAdmin(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		return "", err
	}
	var f file
	if err := json.Unmarshal(b, &f); err != nil {
		return "", err
	}
	for _, t := range f.Tokens {
		if t.Name == AdminName {
			return t.Secret, nil
		}
	}
	return "", errors.New("no admin token")
}

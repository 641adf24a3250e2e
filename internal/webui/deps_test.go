package webui

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDependencies keeps one composition root: the GUI runs a host only
// through internal/daemon (as "shmgr host" does) and reaches other hosts
// through client, so it must not import the host or the server itself.
// It checks each non-test file's own imports: the daemon imports both, so
// the package's transitive dependencies always hold them.
func TestDependencies(t *testing.T) {
	const mod = "github.com/shmgr/shmgr/"
	forbidden := []string{mod + "internal/host", mod + "internal/server"}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	daemonUsed := false
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, is := range f.Imports {
			path, err := strconv.Unquote(is.Path.Value)
			if err != nil {
				t.Fatal(err)
			}
			daemonUsed = daemonUsed || path == mod+"internal/daemon"
			for _, bad := range forbidden {
				if path == bad {
					t.Errorf("%s imports %s: the GUI must run its host through internal/daemon", name, bad)
				}
			}
		}
	}
	// The check must be real: the files were read and the daemon found.
	if !daemonUsed {
		t.Errorf("no file of %d imports internal/daemon: the check read nothing", len(files))
	}
}

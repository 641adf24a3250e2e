package client_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the client free of the host side: it must not
// import the host, its registry or its server.
func TestDependencies(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH")
	}
	const pkg = "github.com/shmgr/shmgr/client"
	out, err := exec.CommandContext(t.Context(), goBin, "list", "-deps", pkg).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr)
	}
	deps := map[string]bool{}
	for _, line := range strings.Fields(string(out)) {
		deps[line] = true
	}
	// The list must be real: the client does use these.
	for _, want := range []string{pkg, "github.com/shmgr/shmgr/internal/proto", "github.com/shmgr/shmgr/internal/region", "github.com/shmgr/shmgr/internal/shmerr"} {
		if !deps[want] {
			t.Errorf("go list -deps %s does not list %s; output:\n%s", pkg, want, out)
		}
	}
	for _, bad := range []string{
		"github.com/shmgr/shmgr/internal/host",
		"github.com/shmgr/shmgr/internal/registry",
		"github.com/shmgr/shmgr/internal/server",
	} {
		if deps[bad] {
			t.Errorf("%s depends on %s; the client must not import the host side", pkg, bad)
		}
	}
}

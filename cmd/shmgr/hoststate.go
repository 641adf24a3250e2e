package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/shmgr/shmgr/internal/atomicfile"
	"github.com/shmgr/shmgr/internal/server"
)

// stateFile is where a host that stops gracefully leaves its session and
// its recent write outcomes for the next start (see server.State).
const stateFile = "session.json"

// resumeState hands the state the previous host process left in dir to
// srv, and removes the file first: a process that resumed a session and
// then crashed must not leave that session to the next one, whose clients
// would retry writes it never heard of.
func resumeState(dir string, srv *server.Server, logger *slog.Logger) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err == nil {
		err = atomicfile.Remove(dir, stateFile)
	}
	var st server.State
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	if err == nil {
		err = srv.Resume(st)
	}
	if err != nil {
		logger.Warn(fmt.Sprintf("not resuming the previous session from %s (clients retrying a write get unknown_outcome): %v", filepath.Join(dir, stateFile), err))
		return
	}
	logger.Info(fmt.Sprintf("resumed session %s: the outcomes of %d clients' recent writes are remembered", st.Session, len(st.Clients)))
}

// saveState leaves srv's state in dir for the next start. srv has been
// shut down.
func saveState(dir string, srv *server.Server, logger *slog.Logger) {
	b, err := json.Marshal(srv.State())
	if err == nil {
		err = atomicfile.Write(dir, stateFile, b, 0o600)
	}
	if err != nil {
		logger.Warn(fmt.Sprintf("saving the session for the next start: %v (clients retrying a write will get unknown_outcome)", err))
	}
}

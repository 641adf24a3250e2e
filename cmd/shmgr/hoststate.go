package main

import (
	"fmt"
	"log/slog"

	"github.com/shmgr/shmgr/internal/server"
)

// resumeState hands the state the previous host process left in dir to
// srv (see server.Server.ResumeFrom), and says so.
func resumeState(dir string, srv *server.Server, logger *slog.Logger) {
	st, found, err := srv.ResumeFrom(dir)
	switch {
	case err != nil:
		logger.Warn(fmt.Sprintf("not resuming the previous session (clients retrying a write get unknown_outcome): %v", err))
	case found:
		logger.Info(fmt.Sprintf("resumed session %s: the outcomes of %d clients' recent writes are remembered", st.Session, len(st.Clients)))
	}
}

// saveState leaves srv's state in dir for the next start. srv has been
// shut down.
func saveState(dir string, srv *server.Server, logger *slog.Logger) {
	if err := srv.SaveTo(dir); err != nil {
		logger.Warn(fmt.Sprintf("saving the session for the next start: %v (clients retrying a write will get unknown_outcome)", err))
	}
}

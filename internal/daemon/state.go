package daemon

import "fmt"

// resumeState hands the state the previous host process left in the data
// directory to the server (see server.Server.ResumeFrom), and says so.
func (d *Daemon) resumeState() {
	st, found, err := d.srv.ResumeFrom(d.cfg.DataDir)
	switch {
	case err != nil:
		d.log.Warn(fmt.Sprintf("not resuming the previous session (clients retrying a write get unknown_outcome): %v", err))
	case found:
		d.log.Info(fmt.Sprintf("resumed session %s: the outcomes of %d clients' recent writes are remembered", st.Session, len(st.Clients)))
	}
}

// saveState leaves the server's state in the data directory for the next
// start. The server has been shut down.
func (d *Daemon) saveState() {
	if err := d.srv.SaveTo(d.cfg.DataDir); err != nil {
		d.log.Warn(fmt.Sprintf("saving the session for the next start: %v (clients retrying a write will get unknown_outcome)", err))
	}
}

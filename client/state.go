package client

// State is a connection's state.
type State int32

// States.
const (
	// StateConnected: the connection is up.
	StateConnected State = iota
	// StateReconnecting: the connection dropped and is being re-dialled.
	StateReconnecting
	// StateClosed: Close was called.
	StateClosed
	// StateUnreachable: the host cannot be reached, and a region this
	// Conn has mapped (ModeLocal) keeps working: reads, writes and local
	// watches go through the mapping, not the host. Only a Conn with a
	// mapped region open reports it; the Conn re-dials in the background
	// and is StateConnected again when the host answers.
	StateUnreachable
)

func (s State) String() string {
	switch s {
	case StateConnected:
		return "connected"
	case StateReconnecting:
		return "reconnecting"
	case StateUnreachable:
		return "host unreachable"
	}
	return "closed"
}

func (c *Conn) setState(s State) {
	if State(c.state.Swap(int32(s))) != s && c.opts.OnState != nil {
		c.opts.OnState(s)
	}
}

// State returns the connection's state.
func (c *Conn) State() State { return State(c.state.Load()) }

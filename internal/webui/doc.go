// Package webui serves shmgr's web GUI: a small HTTP JSON API, a
// Server-Sent Events stream and the static page (over an fs.FS, normally
// internal/webui/dist), for "shmgr gui".
//
// The GUI has two modes, as the original desktop app had. In Host mode it
// runs a host inside the GUI process (internal/daemon, as "shmgr host"
// does, with the same settings) and shows its addresses, port, regions
// and connected clients; in Client mode it connects to a host with the
// public client package, mapping the region directly when it can and
// speaking TCP otherwise. In both modes
// the page edits a region's content: every write is a conditional write
// at the version the edit started from, so an edit is never silently
// lost to a change made meanwhile.
//
// Changes are pushed: the server follows a region with host
// subscriptions (Host mode) or a client Watcher (Client mode) and
// forwards each committed version to the page over one EventSource
// stream per page; the page never polls.
//
// # Security
//
// The GUI is a local admin interface, and any web page the user visits
// could try to talk to it. Every request must carry a Host header naming
// a loopback address and the GUI's port (DNS-rebinding defence) and, if
// it carries an Origin, the GUI's own origin. The page is reached with a
// random per-launch token in the URL, exchanged once for an HttpOnly,
// SameSite=Strict cookie; every state-changing request is a JSON POST
// with a CSRF token header compared in constant time. Every response
// carries a strict Content-Security-Policy (no inline script) and the
// usual hardening headers.
//
// # Caveats
//
// A Server holds at most one host and one client session at a time; the
// sessions are shared by every page open on the GUI. Shutdown stops both
// and ends every stream: the host's regions stay in place, as they do
// when "shmgr host" stops.
//
// A raw region is edited as hex: the page is sent a window of hexPreview
// bytes from an offset it chooses (?host_offset=, ?client_offset=) and
// writes bytes back at that offset (POST /api/write with hex and
// offset), conditionally, like text. Content larger than 1 MiB and utf8
// regions holding bytes that are not UTF-8 are shown read-only: the GUI
// never writes back content it could not show exactly.
package webui

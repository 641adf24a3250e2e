package webui

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/certs"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shmerr"
)

// apiError is an error with an HTTP status and a stable code word that the
// page translates; Message is English, the page's fallback.
type apiError struct {
	Status  int
	Code    string
	Message string
	// Extra fields of the JSON reply, such as "current" for a conflict.
	Extra map[string]any
}

func (e *apiError) Error() string { return e.Message }

// errorf returns an apiError.
func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// writeError renders err as the JSON reply {"error": ..., "code": ...}
// with the error's status: the one place errors become responses.
func writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = classify(err)
	}
	body := map[string]any{"error": ae.Message, "code": ae.Code}
	for k, v := range ae.Extra {
		body[k] = v
	}
	writeJSON(w, ae.Status, body)
}

// writeJSON writes v as a JSON reply.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding the reply failed","code":"internal"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// handler is an HTTP handler that returns its error; ServeHTTP renders it.
type handler func(w http.ResponseWriter, r *http.Request) error

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h(w, r); err != nil {
		writeError(w, err)
	}
}

// kindReplies is the one table from kinds of error (package shmerr) to
// the page's replies: an error made by the region, the host or the client
// (mapped, or from a host's ERROR reply) matches its kind with errors.Is,
// so each reply is listed once, whichever layer the error comes from.
// classify tries them in order: a more specific error (region.ErrBadSize,
// a kind of ErrProtocol) comes before any kind it is an error of.
var kindReplies = [...]struct {
	kind   error
	status int
	code   string
	// written says that nothing was written, for the errors of a write.
	written bool
}{
	{shmerr.ErrTooLarge, http.StatusRequestEntityTooLarge, "too_large", true},
	{shmerr.ErrInvalidUTF8, http.StatusUnprocessableEntity, "invalid_utf8", true},
	{shmerr.ErrLockTimeout, http.StatusLocked, "lock_timeout", false},
	{shmerr.ErrNotFound, http.StatusNotFound, "no_region", false},
	{shmerr.ErrExists, http.StatusConflict, "exists", false},
	{shmerr.ErrBadID, http.StatusBadRequest, "bad_id", false},
	{region.ErrBadSize, http.StatusBadRequest, "bad_size", false},
	{shmerr.ErrForbidden, http.StatusForbidden, "forbidden", false},
	{shmerr.ErrLimit, http.StatusInsufficientStorage, "limit", false},
	// A host that is closing, a region object gone, a connection or
	// region the client closed: the page says "closed: try again".
	{shmerr.ErrUnavailable, http.StatusConflict, "closed", false},
	{client.ErrClosed, http.StatusConflict, "closed", false},
	{shmerr.ErrUnknownOutcome, http.StatusBadGateway, "unknown_outcome", false},
}

// classify maps an error of any layer to its reply: first the errors that
// carry fields of their own (a conflict's versions, a lock's owner), then
// the kinds (kindReplies), then the network's.
func classify(err error) *apiError {
	var ce *region.ConflictError
	var lte *region.LockTimeoutError
	switch {
	case errors.As(err, &ce):
		return &apiError{Status: http.StatusConflict, Code: "conflict", Message: fmt.Sprintf("changed by someone else at version %d: nothing was written", ce.Current),
			Extra: map[string]any{"current": ce.Current, "expected": ce.Expected}}
	case errors.As(err, &lte):
		return errorf(http.StatusLocked, "lock_timeout", "the region's lock is busy: %v", lte)
	}
	for _, kr := range kindReplies {
		if errors.Is(err, kr.kind) {
			if kr.written {
				return errorf(kr.status, kr.code, "%v: nothing was written", err)
			}
			return errorf(kr.status, kr.code, "%v", err)
		}
	}
	switch {
	case isRefused(err):
		return errorf(http.StatusBadGateway, "refused", "connection refused: %v", err)
	case isTimeout(err):
		return errorf(http.StatusGatewayTimeout, "timeout", "timed out: %v", err)
	}
	return errorf(http.StatusInternalServerError, "internal", "%v", err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// isRefused reports whether nothing listens at the address dialled: the
// system's "connection refused" (ECONNREFUSED; on Windows WSAECONNREFUSED,
// which syscall.ECONNREFUSED does not match: see refused_windows.go).
func isRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || isRefusedErrno(err)
}

// isTLS reports whether err is a failed TLS handshake: the peer does not
// speak TLS (a plain host), its certificate is not the pinned one
// (certs.PinError), or it does not verify (unknown authority, wrong name,
// expired), or the peer ended the handshake with an alert.
func isTLS(err error) bool {
	var rhe tls.RecordHeaderError
	var cve *tls.CertificateVerificationError
	var pe *certs.PinError
	var uae x509.UnknownAuthorityError
	var hne x509.HostnameError
	var cie x509.CertificateInvalidError
	var ae tls.AlertError
	var oe *net.OpError
	return errors.As(err, &rhe) || errors.As(err, &cve) || errors.As(err, &pe) ||
		errors.As(err, &uae) || errors.As(err, &hne) || errors.As(err, &cie) || errors.As(err, &ae) ||
		// crypto/tls reports the peer's alert as an *net.OpError of Op
		// "remote error" around an unexported alert type.
		errors.As(err, &oe) && oe.Op == "remote error"
}

// dialError explains why Client mode could not connect to addr for
// region id, in the words the user needs.
func dialError(err error, addr, id string) *apiError {
	switch {
	case errors.Is(err, client.ErrNotFound):
		return &apiError{Status: http.StatusNotFound, Code: "no_region", Message: fmt.Sprintf("no region %q on that host", id), Extra: map[string]any{"id": id}}
	case isRefused(err):
		return &apiError{Status: http.StatusBadGateway, Code: "refused", Message: fmt.Sprintf("connection refused: no host is listening at %s", addr), Extra: map[string]any{"addr": addr}}
	case isTimeout(err):
		return &apiError{Status: http.StatusGatewayTimeout, Code: "timeout", Message: fmt.Sprintf("timed out: %s did not answer (check the address and the firewall)", addr), Extra: map[string]any{"addr": addr}}
	case errors.Is(err, client.ErrUnauthorized):
		return errorf(http.StatusBadGateway, "unauthorized", "the host requires a token: paste the one it printed")
	case errors.Is(err, client.ErrBadID):
		return errorf(http.StatusBadRequest, "bad_id", "%v", err)
	case errors.Is(err, client.ErrNotLocal):
		return errorf(http.StatusBadGateway, "not_local", "%v", err)
	case isTLS(err):
		return errorf(http.StatusBadGateway, "tls", "TLS: %v", err)
	case errors.Is(err, client.ErrProtocol):
		return errorf(http.StatusBadGateway, "protocol", "not a shmgr host, or it speaks TLS: %v", err)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return &apiError{Status: http.StatusBadGateway, Code: "unknown_host", Message: fmt.Sprintf("unknown host %q", dnsErr.Name), Extra: map[string]any{"addr": addr}}
	}
	return errorf(http.StatusBadGateway, "connect_failed", "%v", err)
}

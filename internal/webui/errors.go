package webui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/region"
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

// classify maps the errors of the host, region and client packages to
// replies.
func classify(err error) *apiError {
	var ce *region.ConflictError
	var lte *region.LockTimeoutError
	switch {
	case errors.As(err, &ce):
		return &apiError{Status: http.StatusConflict, Code: "conflict", Message: fmt.Sprintf("changed by someone else at version %d: nothing was written", ce.Current),
			Extra: map[string]any{"current": ce.Current, "expected": ce.Expected}}
	case errors.As(err, &lte):
		return errorf(http.StatusLocked, "lock_timeout", "the region's lock is busy: %v", lte)
	case errors.Is(err, region.ErrTooLarge):
		return errorf(http.StatusRequestEntityTooLarge, "too_large", "%v: nothing was written", err)
	case errors.Is(err, region.ErrInvalidUTF8):
		return errorf(http.StatusUnprocessableEntity, "invalid_utf8", "%v: nothing was written", err)
	case errors.Is(err, region.ErrLockTimeout):
		return errorf(http.StatusLocked, "lock_timeout", "%v", err)
	case errors.Is(err, host.ErrNotFound), errors.Is(err, client.ErrNotFound):
		return errorf(http.StatusNotFound, "no_region", "%v", err)
	case errors.Is(err, host.ErrExists), errors.Is(err, client.ErrExists):
		return errorf(http.StatusConflict, "exists", "%v", err)
	case errors.Is(err, host.ErrBadID), errors.Is(err, client.ErrBadID):
		return errorf(http.StatusBadRequest, "bad_id", "%v", err)
	case errors.Is(err, region.ErrBadSize):
		return errorf(http.StatusBadRequest, "bad_size", "%v", err)
	case errors.Is(err, host.ErrForbidden), errors.Is(err, client.ErrForbidden):
		return errorf(http.StatusForbidden, "forbidden", "%v", err)
	case errors.Is(err, host.ErrLimit), errors.Is(err, client.ErrLimit), errors.Is(err, host.ErrNoSpace):
		return errorf(http.StatusInsufficientStorage, "limit", "%v", err)
	case errors.Is(err, host.ErrClosed), errors.Is(err, client.ErrClosed):
		return errorf(http.StatusConflict, "closed", "%v", err)
	case errors.Is(err, client.ErrUnknownOutcome):
		return errorf(http.StatusBadGateway, "unknown_outcome", "%v", err)
	case errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(err.Error(), "connection refused"):
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

// dialError explains why Client mode could not connect to addr for
// region id, in the words the user needs.
func dialError(err error, addr, id string) *apiError {
	s := err.Error()
	switch {
	case errors.Is(err, client.ErrNotFound):
		return &apiError{Status: http.StatusNotFound, Code: "no_region", Message: fmt.Sprintf("no region %q on that host", id), Extra: map[string]any{"id": id}}
	case errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(s, "connection refused") || strings.Contains(s, "actively refused"):
		return &apiError{Status: http.StatusBadGateway, Code: "refused", Message: fmt.Sprintf("connection refused: no host is listening at %s", addr), Extra: map[string]any{"addr": addr}}
	case isTimeout(err):
		return &apiError{Status: http.StatusGatewayTimeout, Code: "timeout", Message: fmt.Sprintf("timed out: %s did not answer (check the address and the firewall)", addr), Extra: map[string]any{"addr": addr}}
	case errors.Is(err, client.ErrUnauthorized):
		return errorf(http.StatusBadGateway, "unauthorized", "the host requires a token: paste the one it printed")
	case errors.Is(err, client.ErrBadID):
		return errorf(http.StatusBadRequest, "bad_id", "%v", err)
	case errors.Is(err, client.ErrNotLocal):
		return errorf(http.StatusBadGateway, "not_local", "%v", err)
	case strings.Contains(s, "certificate") || strings.Contains(s, "tls:"):
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

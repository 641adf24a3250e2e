package webui

import (
	"crypto/subtle"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// Header and cookie names.
const (
	// csrfHeader carries the CSRF token on every POST; the page reads the
	// token from the csrf-token meta tag of index.html.
	csrfHeader = "X-CSRF-Token"
	// cookiePrefix, followed by the GUI's port, names the session cookie:
	// cookies ignore ports, so two GUIs on one machine need two names.
	cookiePrefix = "shmgr_gui_"
)

// contentSecurityPolicy allows only the GUI's own files: no inline script
// or style, no framing, no foreign connections.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// setSecurityHeaders sets the headers every response carries.
func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
}

// guard wraps every handler with the checks of a local admin UI: the
// security headers, the Host and Origin checks (DNS rebinding and
// cross-site requests), the token-for-cookie exchange, the session cookie,
// and, for anything but GET and HEAD, POST with a JSON body and the CSRF
// header.
func (s *Server) guard(next http.Handler) http.Handler {
	return handler(func(w http.ResponseWriter, r *http.Request) error {
		setSecurityHeaders(w.Header())
		port, err := s.checkHost(r)
		if err != nil {
			return err
		}
		if err := checkOrigin(r); err != nil {
			return err
		}
		cookie := cookiePrefix + port
		if tok, ok := r.URL.Query()["token"]; ok && r.URL.Path == "/" && r.Method == http.MethodGet {
			return s.exchange(w, r, cookie, tok[0])
		}
		c, err := r.Cookie(cookie)
		if err != nil || !equal(c.Value, s.session) {
			return errorf(http.StatusUnauthorized, "no_session", "not signed in: open the URL that 'shmgr gui' printed (it carries a one-launch token)")
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		case http.MethodPost:
			if r.Header.Get("Origin") == "" {
				return errorf(http.StatusForbidden, "cross_origin", "a POST must carry an Origin header")
			}
			if !equal(r.Header.Get(csrfHeader), s.csrf) {
				return errorf(http.StatusForbidden, "csrf", "missing or wrong %s header: reload the page", csrfHeader)
			}
			if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
				return errorf(http.StatusUnsupportedMediaType, "bad_request", "the body must be JSON (Content-Type: application/json)")
			}
		default:
			w.Header().Set("Allow", "GET, HEAD, POST")
			return errorf(http.StatusMethodNotAllowed, "method", "method %s not allowed", r.Method)
		}
		next.ServeHTTP(w, r)
		return nil
	})
}

// exchange trades the URL's per-launch token for the session cookie and
// redirects to the clean URL, so that the token leaves the address bar
// and the history.
func (s *Server) exchange(w http.ResponseWriter, r *http.Request, cookie, token string) error {
	if !equal(token, s.token) {
		return errorf(http.StatusForbidden, "bad_token", "wrong token: open the URL that this run of 'shmgr gui' printed")
	}
	http.SetCookie(w, &http.Cookie{Name: cookie, Value: s.session, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/", http.StatusSeeOther)
	return nil
}

// checkHost accepts a Host header that names loopback (or, with
// AllowRemote, the address the request came in on) and the port the
// request came in on, and returns that port. Anything else is a request
// for another site, such as a DNS-rebinding attack: 421.
func (s *Server) checkHost(r *http.Request) (string, error) {
	la, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	ta, ok := la.(*net.TCPAddr)
	if !ok {
		return "", errorf(http.StatusMisdirectedRequest, "bad_host", "no local address")
	}
	port := strconv.Itoa(ta.Port)
	h, p, err := net.SplitHostPort(r.Host)
	if err != nil || p != port {
		return "", errorf(http.StatusMisdirectedRequest, "bad_host", "host %q not allowed: use http://127.0.0.1:%s", r.Host, port)
	}
	switch strings.ToLower(h) {
	case "127.0.0.1", "localhost", "::1":
		return port, nil
	}
	if s.cfg.AllowRemote {
		if ip := net.ParseIP(h); ip != nil && ip.Equal(ta.IP) {
			return port, nil
		}
	}
	return "", errorf(http.StatusMisdirectedRequest, "bad_host", "host %q not allowed: use http://127.0.0.1:%s", r.Host, port)
}

// checkOrigin refuses requests that another site's page makes: an Origin
// other than our own, or a browser's Sec-Fetch-Site saying the request
// comes from another site (another port on localhost is "same-site").
func checkOrigin(r *http.Request) error {
	if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host {
		return errorf(http.StatusForbidden, "cross_origin", "cross-origin request from %q refused", o)
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return errorf(http.StatusForbidden, "cross_origin", "cross-site request refused")
	}
	return nil
}

// equal compares secrets in constant time.
func equal(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

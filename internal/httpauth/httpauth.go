// Package httpauth is the bearer-token check the gorlhf HTTP servers
// share (gorlhf serve, serve rm, serve env): "Authorization: Bearer
// <key>" (RFC 6750) with the scheme name matched without regard to case,
// as RFC 7235 §2.1 asks, and the key compared in constant time.
//
// It exists so that the three servers accept exactly the same headers:
// each used to parse them its own way, one of them case-sensitively.
package httpauth

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// Token returns the credentials of an Authorization header value that
// uses the Bearer scheme: "Bearer", any case, then one or more spaces or
// tabs, then the token. ok is false for another scheme or no token.
func Token(header string) (token string, ok bool) {
	i := strings.IndexAny(header, " \t")
	if i < 0 || !strings.EqualFold(header[:i], "Bearer") {
		return "", false
	}
	token = strings.Trim(header[i:], " \t")
	return token, token != ""
}

// Valid reports whether r carries key as its bearer token. An empty key
// means no authentication: every request is valid.
func Valid(r *http.Request, key string) bool {
	if key == "" {
		return true
	}
	got, ok := Token(r.Header.Get("Authorization"))
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(key)) == 1
}

// Challenge sets the WWW-Authenticate header that a 401 answer carries
// (RFC 7235 §3.1), naming the Bearer scheme.
func Challenge(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="gorlhf"`)
}

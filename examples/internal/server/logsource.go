package server

import (
	"net"
	"net/http"

	"github.com/lpsec/lpsec/internal/ratelog"
)

// withSource puts the client's address in the request context, so that
// the log (internal/ratelog) keys refused credentials by where they came
// from: a flood from one address is rate-limited without hiding another's.
func withSource(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		next.ServeHTTP(w, r.WithContext(ratelog.ContextWithSource(r.Context(), host)))
	})
}

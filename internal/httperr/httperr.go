// Package httperr writes the one JSON error body that every lpsec HTTP
// middleware (auth, token, macaroon) and the example server answer with:
//
//	{"code":"<stable machine-readable code>","error":"<human-readable message>"}
//
// with Content-Type application/json, Cache-Control no-store and
// X-Content-Type-Options nosniff. The code is one of a small documented
// set per middleware; the message says what kind of failure it was and
// never contains anything the client sent (no credential can be echoed).
// The one exception is macaroon's discharge-required answer, which is
// httpbakery's own error format because stock bakery clients parse it.
package httperr

import (
	"encoding/json"
	"net/http"
)

// Body is the JSON error body.
type Body struct {
	Code    string `json:"code"`
	Message string `json:"error"`
}

// Write writes status and the JSON body {code, message}. Headers the
// caller set before (WWW-Authenticate, Retry-After) are kept.
func Write(w http.ResponseWriter, status int, code, message string) {
	data, err := json.Marshal(Body{Code: code, Message: message})
	if err != nil { // cannot happen for two strings; keep the shape anyway
		data = []byte(`{"code":"internal","error":"internal error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}

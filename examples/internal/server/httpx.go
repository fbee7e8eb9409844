package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strings"

	"github.com/lpsec/lpsec/internal/httperr"
)

// Bounds on what a client may send.
const (
	maxJSONBody   = 64 << 10 // admin and registration requests
	maxReportBody = 32 << 10 // machine reports
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError writes the JSON error body that lpsec's middlewares also
// write (internal/httperr), so every refusal has one shape. The message
// never echoes a credential.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	httperr.Write(w, status, code, msg)
}

// decodeJSON reads one JSON object of at most limit bytes, refusing
// unknown fields and trailing data.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, "bad_content_type", "want Content-Type: application/json")
			return false
		}
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("request body over %d bytes", limit))
			return false
		}
		if errors.Is(err, io.EOF) {
			writeError(w, http.StatusBadRequest, "bad_request", "empty request body")
			return false
		}
		writeError(w, http.StatusBadRequest, "bad_request", "malformed JSON request: "+jsonErrText(err))
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "bad_request", "trailing data after the JSON object")
		return false
	}
	return true
}

// jsonErrText keeps decoder errors short and free of request content.
func jsonErrText(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q has the wrong type", te.Field)
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return err.Error()
	default:
		return "invalid JSON"
	}
}

var machineRe = regexp.MustCompile(`^[0-9a-f]{32}$`)

// validMachine accepts the 32 lowercase hex of an app-specific machine ID
// (never the raw /etc/machine-id: that must not go on the network).
func validMachine(s string) bool { return machineRe.MatchString(s) }

// jsonMuxErrors makes the mux's own 404 and 405 answers (text/plain from
// http.Error) use the JSON error body too, keeping the mux's status and
// its Allow header. Only requests that match no route are affected: a
// handler's own answers pass untouched.
func jsonMuxErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(&muxErrorWriter{ResponseWriter: w}, r)
	})
}

// muxErrorWriter replaces the body of an error the mux writes.
type muxErrorWriter struct {
	http.ResponseWriter
	replaced bool
}

func (m *muxErrorWriter) WriteHeader(status int) {
	switch status {
	case http.StatusNotFound:
		m.replaced = true
		writeError(m.ResponseWriter, status, "not_found", "no such route")
	case http.StatusMethodNotAllowed:
		m.replaced = true
		writeError(m.ResponseWriter, status, "method_not_allowed", "method not allowed on this route (see Allow)")
	default:
		m.ResponseWriter.WriteHeader(status)
	}
}

func (m *muxErrorWriter) Write(p []byte) (int, error) {
	if m.replaced {
		return len(p), nil // the mux's text body; ours is written
	}
	return m.ResponseWriter.Write(p)
}

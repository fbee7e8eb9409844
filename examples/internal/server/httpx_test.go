package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestMuxErrorsAreJSON: the mux's own 404 and 405 come in the JSON error
// body (405 keeps Allow); a handler's answers are untouched.
func TestMuxErrorsAreJSON(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/admin/login", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "handler's own 404", http.StatusNotFound)
	})
	h := jsonMuxErrors(mux)
	for _, c := range []struct {
		method, path, body, ct, allow string
		status                        int
	}{
		{"GET", "/etc", `{"code":"not_found","error":"no such route"}` + "\n", "application/json", "", 404},
		{"PATCH", "/v1/admin/login", `{"code":"method_not_allowed","error":"method not allowed on this route (see Allow)"}` + "\n", "application/json", "POST", 405},
		{"POST", "/v1/admin/login", "handler's own 404\n", "text/plain; charset=utf-8", "", 404},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(c.method, c.path, nil))
		if w.Code != c.status || w.Body.String() != c.body || w.Header().Get("Content-Type") != c.ct || w.Header().Get("Allow") != c.allow {
			t.Errorf("%s %s: %d %q %q Allow %q", c.method, c.path, w.Code, w.Body, w.Header().Get("Content-Type"), w.Header().Get("Allow"))
		}
	}
}

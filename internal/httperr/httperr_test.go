package httperr

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWrite(t *testing.T) {
	w := httptest.NewRecorder()
	w.Header().Set("WWW-Authenticate", "Bearer")
	// A message with JSON metacharacters stays one well-formed string.
	Write(w, http.StatusUnauthorized, "unauthorized", `say "hi" </script>`)
	if w.Code != 401 {
		t.Fatalf("status %d", w.Code)
	}
	want := `{"code":"unauthorized","error":"say \"hi\" \u003c/script\u003e"}` + "\n"
	if w.Body.String() != want {
		t.Fatalf("body %q, want %q", w.Body, want)
	}
	for h, v := range map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store",
		"X-Content-Type-Options": "nosniff", "WWW-Authenticate": "Bearer"} {
		if got := w.Header().Get(h); got != v {
			t.Errorf("%s: %q, want %q", h, got, v)
		}
	}
}

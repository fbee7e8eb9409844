package server

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzHandler sends arbitrary requests to every route of a server on the
// memory store: whatever the method, path, credentials and body, the
// answer is never a 5xx (a panic would be a 500 from the recoverer).
func FuzzHandler(f *testing.F) {
	s := newTestServer(f, Options{ReportKey: "k1:" + string(bytes.Repeat([]byte("ab"), 32))})
	h := s.Handler()
	seeds := []struct{ method, path, authz, body string }{
		{"GET", "/healthz", "", ""},
		{"POST", "/v1/admin/login", "Basic YWxpY2U6cHc=", ""},
		{"GET", "/v1/admin/auth-tokens", "Macaroon AgEEdGVzdAIgZGVhZGJlZWY", ""},
		{"POST", "/v1/admin/auth-tokens", "Macaroon W3siaSI6IngifV0", `{"name":"x"}`},
		{"PUT", "/v1/client/0123456789abcdef0123456789abcdef", "Bearer 0b5ad2b8-7d1c-4f0e-9a3c-0c1d2e3f4a5b", ""},
		{"PUT", "/v1/client/0123456789abcdef0123456789abcdef", "Macaroon eyJ4IjoxfQ", ""},
		{"GET", "/v1/client/0123456789abcdef0123456789abcdef/patches?kernel=6.1", "Bearer x", ""},
		{"POST", "/v1/client/0123456789abcdef0123456789abcdef/report", "Bearer 0b5ad2b8-7d1c-4f0e-9a3c-0c1d2e3f4a5b", `{"patch_state":"applied"}`},
		{"GET", "/v1/patches/livepatch-1.tar.bz2", "", ""},
		{"GET", "/v1/patches/..%2f..%2fetc%2fpasswd", "", ""},
		{"GET", "/v1/sync/patches", "Bearer {0b5ad2b8-7d1c-4f0e-9a3c-0c1d2e3f4a5b}", ""},
		{"POST", "/v1/admin/patches?filename=a.tar", "Macaroon AgE", "BZh91AY&SY"},
		{"POST", "/v1/admin/machines/release", "Macaroon AgE", `{"machine":"0123456789abcdef0123456789abcdef"}`},
		{"GET", "/v1/admin/machines?limit=1&after=18446744073709551616", "Macaroon AgE", ""},
	}
	for _, sd := range seeds {
		f.Add(sd.method, sd.path, sd.authz, []byte(sd.body))
	}
	f.Fuzz(func(t *testing.T, method, path, authz string, body []byte) {
		r, err := http.NewRequest(method, "https://lpsec.test"+path, bytes.NewReader(body))
		if err != nil || r.URL.Path == "" || r.URL.Path[0] != '/' {
			return
		}
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %s (Authorization %q): %d %s", method, path, authz, w.Code, w.Body)
		}
	})
}

package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lpsec/lpsec/examples/internal/pki"
)

// newTestServer starts a server on loopback with a throwaway signing
// certificate; it is closed at the end of the test.
func newTestServer(tb testing.TB, o Options) *Server {
	tb.Helper()
	dir := tb.TempDir()
	ca, err := pki.NewCA("test signing", time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	cert := filepath.Join(dir, "sign.pem")
	if err := os.WriteFile(cert, pki.CertPEM(ca.Cert), 0o644); err != nil {
		tb.Fatal(err)
	}
	o.Listen, o.StateDir, o.SigningCerts = "127.0.0.1:0", filepath.Join(dir, "state"), []string{cert}
	if o.AdminTTL == 0 {
		o.AdminTTL = time.Hour
	}
	if o.MaxPatchSize == 0 {
		o.MaxPatchSize = 1 << 20
	}
	if o.SyncInterval == 0 {
		o.SyncInterval = time.Hour
	}
	s, err := Start(context.Background(), o, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// BenchmarkAdminRequest measures an admin request (macaroon verification
// plus a token listing) against /healthz through the same handler, without
// TLS, to show what the macaroon check costs.
func BenchmarkAdminRequest(b *testing.B) {
	s := newTestServer(b, Options{})
	lr, err := s.mac.login(context.Background(), "alice")
	if err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	run := func(b *testing.B, path, authz string) {
		for b.Loop() {
			r := httptest.NewRequest(http.MethodGet, path, nil)
			if authz != "" {
				r.Header.Set("Authorization", authz)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Fatalf("%s: %d %s", path, w.Code, w.Body)
			}
		}
	}
	b.Run("lpsec", func(b *testing.B) { run(b, "/v1/admin/auth-tokens", lr.Header) })
	b.Run("baseline", func(b *testing.B) { run(b, "/healthz", "") })
}

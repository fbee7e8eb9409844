package server

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lpsec/lpsec/auth"
	"github.com/lpsec/lpsec/examples/internal/pki"
	"github.com/lpsec/lpsec/internal/pgtest"
	"github.com/lpsec/lpsec/token"
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
	// Admin requests re-check the user list, so alice must be on it; the
	// password is never checked here (the macaroon is minted directly).
	hash, err := auth.HashPassword("unused by the benchmark", auth.HashBcrypt(10))
	if err != nil {
		b.Fatal(err)
	}
	s := newTestServer(b, Options{AdminUsers: "alice:" + hash})
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

// BenchmarkClientPatchList measures the machine poll (GET
// /v1/client/{machine}/patches, machine token included) with 10,000
// patches in the catalogue ("lpsec") against the same poll with 10
// ("baseline"): the answer is one patch in both, so the ratio shows
// whether the cost grows with the catalogue (target: within 1.2). Run
// with bench/ratio.sh; the PostgreSQL store needs LPSEC_TEST_DATABASE_URL
// (scripts/with-postgres.sh) and runs with its per-kernel cache off, so
// every poll runs the kernel query.
func BenchmarkClientPatchList(b *testing.B) {
	for _, store := range []string{"memory", "postgresql"} {
		b.Run(store, func(b *testing.B) {
			for _, c := range []struct {
				name string
				n    int
			}{{"lpsec", 10000}, {"baseline", 10}} {
				b.Run(c.name, func(b *testing.B) {
					var o Options
					if store == "postgresql" {
						o.DatabaseURL = pgtest.Database(b)
						o.RootKeyKEK = base64.StdEncoding.EncodeToString(make([]byte, 32))
					}
					s := newTestServer(b, o)
					if pc, ok := s.cat.(*pgCatalogue); ok {
						pc.ttl = 0 // measure the SQL filtering, not the cache
					}
					fillCatalogue(b, s, c.n)
					path, authz := machinePoll(b, s)
					h := s.Handler()
					for b.Loop() {
						r := httptest.NewRequest(http.MethodGet, path, nil)
						r.Header.Set("Authorization", authz)
						w := httptest.NewRecorder()
						h.ServeHTTP(w, r)
						if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "target.tar") {
							b.Fatalf("%d %s", w.Code, w.Body)
						}
					}
				})
			}
		})
	}
}

// fillCatalogue records n patch entries over n/10 kernels, one of them
// (kernel "k-target") for the kernel polled. Only entries are written:
// the poll never reads tarballs.
func fillCatalogue(b *testing.B, s *Server, n int) {
	b.Helper()
	now := time.Now().UTC()
	entry := func(i int) PatchInfo {
		return PatchInfo{Filename: fmt.Sprintf("livepatch-%05d.tar", i), SHA256: strings.Repeat("a", 64),
			Kernel: fmt.Sprintf("k-%d", i%max(1, n/10)), Version: "1", Size: 1, Added: now}
	}
	target := PatchInfo{Filename: "target.tar", SHA256: strings.Repeat("b", 64), Kernel: "k-target", Version: "1", Size: 1, Added: now}
	switch c := s.cat.(type) {
	case *fileCatalogue:
		c.mu.Lock()
		for i := range n - 1 {
			c.add(entry(i))
		}
		c.add(target)
		c.mu.Unlock()
	case *pgCatalogue:
		_, err := c.db.Exec(`INSERT INTO lpsec_example_patch_index (filename, sha256, kernel, version, signer, size, added)
			SELECT format('livepatch-%s.tar', lpad(i::text, 5, '0')), repeat('a', 64), 'k-' || (i % greatest(1, $1 / 10)), '1', '', 1, now()
			FROM generate_series(0, $1 - 2) AS i`, n)
		if err == nil {
			_, err = c.db.Exec(`INSERT INTO lpsec_example_patch_index (filename, sha256, kernel, version, signer, size, added)
				VALUES ($1, $2, $3, '1', '', 1, now())`, target.Filename, target.SHA256, target.Kernel)
		}
		if err == nil {
			_, err = c.db.Exec(`ANALYZE lpsec_example_patch_index`)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// machinePoll registers a machine and returns its poll path and header.
func machinePoll(b *testing.B, s *Server) (path, authz string) {
	b.Helper()
	ctx := context.Background()
	reg, _, err := s.tokens.IssueRegistration(ctx, token.Registration{Tier: Tier, Name: "bench", Uses: 1})
	if err != nil {
		b.Fatal(err)
	}
	machine := strings.Repeat("ab", 16)
	mt, _, err := s.tokens.Register(ctx, reg, machine)
	if err != nil {
		b.Fatal(err)
	}
	return "/v1/client/" + machine + "/patches?kernel=k-target", "Bearer " + mt
}

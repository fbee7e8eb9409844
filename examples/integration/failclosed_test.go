package integration

import (
	"context"
	"database/sql"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/lpsec/lpsec/examples/internal/api"
	"github.com/lpsec/lpsec/examples/internal/client"
	"github.com/lpsec/lpsec/internal/pgtest"
)

// TestPostgresFailsClosed stops the database under a running server:
// machine and admin requests then get 503, never success, and work again
// once the database is back, without a restart.
func TestPostgresFailsClosed(t *testing.T) {
	t.Parallel()
	cluster := pgtest.StartCluster(t)
	f := getFixtures(t)
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	dir := t.TempDir()
	srv := start(t, []string{"LPSEC_SERVER_ADMIN_USERS=" + f.userSpec, "LPSEC_SERVER_DATABASE_URL=" + cluster.URL, "LPSEC_SERVER_ROOT_KEY_KEK=" + randB64(32)},
		"server", serverArgs(f, filepath.Join(dir, "server"))...)
	admin, err := client.NewAdmin(srv.URL, srv.line(t, `CA in (\S+) \(`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Login(ctx, "alice", f.password); err != nil {
		t.Fatal(err)
	}
	reg, err := admin.IssueToken(ctx, "auth-tokens", api.IssueTokenRequest{Name: "n"})
	if err != nil {
		t.Fatal(err)
	}
	machine := randHex(16)
	var rr api.RegisterResponse
	if err := admin.Do(ctx, http.MethodPut, "/v1/client/"+machine, http.Header{"Authorization": {"Bearer " + reg.Token}}, nil, &rr); err != nil {
		t.Fatal(err)
	}
	list := func() error {
		return admin.Do(ctx, http.MethodGet, "/v1/client/"+machine+"/patches?kernel="+machineKernel,
			http.Header{"Authorization": {"Bearer " + rr.MachineToken}}, nil, nil)
	}
	if err := list(); err != nil {
		t.Fatal(err)
	}

	// The throwaway cluster runs with synchronous_commit=off: make what
	// the server wrote durable before the immediate stop.
	db, err := sql.Open("pgx", cluster.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "CHECKPOINT"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	cluster.Stop()
	for name, call := range map[string]func() error{
		"machine patch list": list,
		"admin token list":   func() error { _, err := admin.ListTokens(ctx, "auth-tokens"); return err },
		"registration": func() error {
			return admin.Do(ctx, http.MethodPut, "/v1/client/"+randHex(16), http.Header{"Authorization": {"Bearer " + reg.Token}}, nil, nil)
		},
	} {
		err := call()
		var se *client.ServerError
		if !asServerError(err, &se) || se.Status != http.StatusServiceUnavailable {
			t.Errorf("%s with the database down: %v, want 503", name, err)
		}
	}
	if _, err := admin.Get(ctx, "/healthz"); err != nil {
		t.Errorf("healthz (liveness) with the database down: %v", err)
	}
	// Readiness is honest: 503, naming the database.
	if code, r := getReady(t, ctx, admin); code != http.StatusServiceUnavailable || r.Ready || r.Checks["database"] != "PostgreSQL does not answer" {
		t.Errorf("readyz with the database down: %d %+v", code, r)
	}

	cluster.Start()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := list()
		if err == nil {
			if code, r := getReady(t, ctx, admin); code != http.StatusOK {
				t.Errorf("readyz once the database is back: %d %+v", code, r)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing 30s after the database came back: %v", err)
		}
		time.Sleep(200 * time.Millisecond) // polling a recovering pool, not synchronising goroutines
	}
}

package integration

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lpsec/lpsec/examples/internal/api"
	"github.com/lpsec/lpsec/examples/internal/client"
	"github.com/lpsec/lpsec/internal/pgtest"
)

// faultServer starts a server on its own cluster and returns an admin
// logged in, a registration token and a registered machine's token.
type faultServer struct {
	srv     *daemon
	cluster *pgtest.Cluster
	admin   *client.Admin
	reg     string
	machine string
	mtok    string
}

func startFaultServer(t *testing.T, ctx context.Context, env ...string) *faultServer {
	t.Helper()
	fs := &faultServer{cluster: pgtest.StartCluster(t)}
	f := getFixtures(t)
	env = append([]string{"LPSEC_SERVER_ADMIN_USERS=" + f.userSpec, "LPSEC_SERVER_DATABASE_URL=" + fs.cluster.URL, "LPSEC_SERVER_ROOT_KEY_KEK=" + randB64(32)}, env...)
	fs.srv = start(t, env, "server", serverArgs(f, filepath.Join(t.TempDir(), "server"))...)
	var err error
	if fs.admin, err = client.NewAdmin(fs.srv.URL, fs.srv.line(t, `CA in (\S+) \(`)); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.admin.Login(ctx, "alice", f.password); err != nil {
		t.Fatal(err)
	}
	reg, err := fs.admin.IssueToken(ctx, "auth-tokens", api.IssueTokenRequest{Name: "n"})
	if err != nil {
		t.Fatal(err)
	}
	fs.reg, fs.machine = reg.Token, randHex(16)
	var rr api.RegisterResponse
	if err := fs.admin.Do(ctx, http.MethodPut, "/v1/client/"+fs.machine, http.Header{"Authorization": {"Bearer " + reg.Token}}, nil, &rr); err != nil {
		t.Fatal(err)
	}
	fs.mtok = rr.MachineToken
	if err := fs.list(ctx); err != nil {
		t.Fatal(err)
	}
	return fs
}

func (fs *faultServer) list(ctx context.Context) error {
	return fs.admin.Do(ctx, http.MethodGet, "/v1/client/"+fs.machine+"/patches?kernel="+machineKernel,
		http.Header{"Authorization": {"Bearer " + fs.mtok}}, nil, nil)
}

// calls are requests that each need the database: a machine's patch list
// (token store), an admin's token list (revocation store, token store), a
// registration, and an unknown machine token.
func (fs *faultServer) calls(ctx context.Context) map[string]func() error {
	return map[string]func() error{
		"machine patch list": func() error { return fs.list(ctx) },
		"admin token list":   func() error { _, err := fs.admin.ListTokens(ctx, "auth-tokens"); return err },
		"registration": func() error {
			return fs.admin.Do(ctx, http.MethodPut, "/v1/client/"+randHex(16), http.Header{"Authorization": {"Bearer " + fs.reg}}, nil, nil)
		},
		"unknown machine token": func() error {
			return fs.admin.Do(ctx, http.MethodGet, "/v1/client/"+fs.machine+"/patches?kernel="+machineKernel,
				http.Header{"Authorization": {"Bearer 6ba7b810-9dad-41d1-80b4-00c04fd430c8"}}, nil, nil)
		},
	}
}

// recover waits for the machine's patch list to work again.
func (fs *faultServer) recover(t *testing.T, ctx context.Context) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := fs.list(ctx)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing 30s after the database came back: %v", err)
		}
		time.Sleep(200 * time.Millisecond) // polling a recovering pool, not synchronising goroutines
	}
}

func want503(err error) bool {
	var se *client.ServerError
	return asServerError(err, &se) && se.Status == http.StatusServiceUnavailable
}

// TestPostgresFrozenAnswers503WithinBound freezes PostgreSQL with SIGSTOP
// (postmaster and backends: a partition as clients see it) under a running
// server with the default --database-timeout (2 s): every request needing
// the database answers 503 within the bound, from 8 concurrent clients, and
// the server works again after SIGCONT with the machine's token intact.
// Before store calls had deadlines each request hung until the client gave
// up (the client's 10 s; here the test's 20 s context).
func TestPostgresFrozenAnswers503WithinBound(t *testing.T) {
	t.Parallel()
	const bound, margin = 2 * time.Second, 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	fs := startFaultServer(t, ctx)

	fs.cluster.Freeze()
	frozenCtx, cancelFrozen := context.WithTimeout(ctx, 20*time.Second)
	defer cancelFrozen()
	var (
		mu    sync.Mutex
		times []time.Duration
		wg    sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			for name, call := range fs.calls(frozenCtx) {
				start := time.Now()
				err := call()
				d := time.Since(start)
				mu.Lock()
				times = append(times, d)
				mu.Unlock()
				if !want503(err) {
					t.Errorf("%s with the database frozen: %v after %v, want 503", name, err, d)
				}
			}
		})
	}
	wg.Wait()
	slices.Sort(times)
	p99 := times[(len(times)*99+99)/100-1]
	t.Logf("%d requests with the database frozen: median %v, p99 %v, max %v (bound %v)",
		len(times), times[len(times)/2], p99, times[len(times)-1], bound)
	if worst := times[len(times)-1]; worst > bound+margin {
		t.Errorf("slowest request with the database frozen took %v, want within %v (+%v margin)", worst, bound, margin)
	}
	if _, err := fs.admin.Get(ctx, "/healthz"); err != nil {
		t.Errorf("healthz with the database frozen: %v", err)
	}

	fs.cluster.Thaw()
	fs.recover(t, ctx)
}

// outageLength is how long TestPostgresOutageLogIsQuiet keeps the database
// down: 15 s as the issue measured, shorter with LPSEC_TEST_OUTAGE.
func outageLength(t *testing.T) time.Duration {
	if v := os.Getenv("LPSEC_TEST_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("LPSEC_TEST_OUTAGE=%q: want a positive duration", v)
		}
		return d
	}
	return 15 * time.Second
}

// TestPostgresOutageLogIsQuiet stops PostgreSQL under a server at
// --log-level warn while 8 clients keep sending requests that need it
// (hundreds per second, each a 503): the server must write fewer than 100
// log lines for the whole outage, some carrying a "suppressed" count. It
// wrote two lines per failed request before (164,772 in 15 s).
func TestPostgresOutageLogIsQuiet(t *testing.T) {
	t.Parallel()
	outage := outageLength(t)
	ctx, cancel := context.WithTimeout(context.Background(), outage+120*time.Second)
	defer cancel()
	fs := startFaultServer(t, ctx, "LPSEC_SERVER_LOG_LEVEL=warn")

	// A refused credential is logged with its source, but a flood from one
	// source is rate-limited: 300 unknown tokens, 300 401s, at most a few
	// lines (3 per source and interval; 6 allows for an interval boundary).
	mark := len(fs.srv.stderr.String())
	unknown := fs.calls(ctx)["unknown machine token"]
	for range 300 {
		var se *client.ServerError
		if err := unknown(); !asServerError(err, &se) || se.Status != http.StatusUnauthorized {
			t.Fatalf("unknown machine token: %v, want 401", err)
		}
	}
	refusals := strings.Count(fs.srv.stderr.String()[mark:], `"event":"token_authn_failed"`)
	if refusals == 0 || refusals > 6 || !strings.Contains(fs.srv.stderr.String()[mark:], `"source":"127.0.0.1"`) {
		t.Errorf("300 refused tokens from one source logged %d token_authn_failed lines, want 1 to 6 naming the source:\n%s",
			refusals, fs.srv.stderr.String()[mark:])
	}
	t.Logf("300 refused tokens from one source: %d log lines", refusals)

	before := len(fs.srv.stderr.String())
	fs.cluster.Stop()
	end := time.Now().Add(outage)
	var (
		mu       sync.Mutex
		requests int
		wg       sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			for time.Now().Before(end) {
				for name, call := range fs.calls(ctx) {
					if err := call(); !want503(err) {
						t.Errorf("%s with the database down: %v, want 503", name, err)
						return
					}
					mu.Lock()
					requests++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	logged := strings.TrimSpace(fs.srv.stderr.String()[before:])
	lines := strings.Split(logged, "\n")
	if logged == "" {
		lines = nil
	}
	t.Logf("%v outage, %d requests answered 503: %d log lines", outage, requests, len(lines))
	if len(lines) >= 100 {
		t.Errorf("%d log lines during a %v outage, want under 100:\n%s", len(lines), outage, logged)
	}
	if requests < 200 {
		t.Errorf("only %d requests during the outage: too few to show the log stays quiet", requests)
	}
	if outage >= 10*time.Second && !strings.Contains(logged, `"suppressed":`) {
		t.Errorf("no line with a suppressed count during a %v outage:\n%s", outage, logged)
	}

	fs.cluster.Start()
	fs.recover(t, ctx)
}

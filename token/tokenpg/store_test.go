package tokenpg

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lpsec/lpsec/internal/pgtest"
	"github.com/lpsec/lpsec/token"
	"github.com/lpsec/lpsec/token/internal/storetest"
)

// openPG opens a migrated PostgresStore on url with its own *sql.DB: each
// call is one server instance.
func openPG(t testing.TB, url string, opts ...token.Option) (*Store, *sql.DB) {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	// A server bounds its pool; 200 concurrent registrations then queue for
	// 32 connections, as they would in production.
	db.SetMaxOpenConns(32)
	t.Cleanup(func() { db.Close() })
	s, err := NewStore(db, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s, db
}

func TestPostgresStoreConformance(t *testing.T) {
	runConformance(t, func(t *testing.T, url string, opts ...token.Option) token.Store {
		s, _ := openPG(t, url, opts...)
		return s
	})
}

// runConformance runs the store conformance suite on instances that open
// opens on a test database.
func runConformance(t *testing.T, open func(t *testing.T, url string, opts ...token.Option) token.Store) {
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T, opts ...token.Option) token.Store {
			return open(t, pgtest.Database(t), opts...)
		},
		OpenPair: func(t *testing.T, opts ...token.Option) (token.Store, token.Store) {
			url := pgtest.Database(t)
			return open(t, url, opts...), open(t, url, opts...)
		},
	})
}

func TestPostgresMigrateIsIdempotentAndConcurrent(t *testing.T) {
	url := pgtest.Database(t)
	s, db := openPG(t, url)
	ctx := context.Background()
	// Four more instances start at once and migrate again. openPG would
	// call t.Fatal, which must not run outside the test goroutine, so the
	// goroutines report with t.Errorf.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			db, err := sql.Open("pgx", url)
			if err != nil {
				t.Errorf("sql.Open: %v", err)
				return
			}
			defer db.Close()
			s, err := NewStore(db)
			if err != nil {
				t.Errorf("NewStore: %v", err)
				return
			}
			if err := s.Migrate(ctx); err != nil {
				t.Errorf("concurrent Migrate: %v", err)
			}
		})
	}
	wg.Wait()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var n, v int
	if err := db.QueryRow(`SELECT count(*), max(version) FROM lpsec_token_schema`).Scan(&n, &v); err != nil {
		t.Fatal(err)
	}
	if n != SchemaVersion || v != SchemaVersion {
		t.Fatalf("schema table has %d rows, max version %d", n, v)
	}
	// A database migrated by newer code is refused, not misused.
	if _, err := db.Exec(`INSERT INTO lpsec_token_schema (version) VALUES ($1)`, SchemaVersion+1); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "Migrate on a newer schema", s.Migrate(ctx), token.ErrUnavailable)
}

func TestPostgresUnmigratedFailsClosed(t *testing.T) {
	db := pgtest.Open(t)
	s, err := NewStore(db)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := token.Generate()
	_, err = s.AuthenticateMachine(context.Background(), tok)
	wantErr(t, "AuthenticateMachine without tables", err, token.ErrUnavailable)
}

// TestPostgresHoldsNoTokens dumps every row as text and looks for the tokens
// in any spelling: a copy of the database must not hold a working token.
func TestPostgresHoldsNoTokens(t *testing.T) {
	s, db := openPG(t, pgtest.Database(t))
	ctx := context.Background()
	reg, _, err := s.IssueRegistration(ctx, token.Registration{Tier: "t", Name: "n", Uses: 3})
	if err != nil {
		t.Fatal(err)
	}
	mtok, _, err := s.Register(ctx, reg, "m")
	if err != nil {
		t.Fatal(err)
	}
	stok, _, err := s.IssueSync(ctx, token.Sync{Tier: "t", Name: "n"})
	if err != nil {
		t.Fatal(err)
	}
	var dump strings.Builder
	for _, table := range []string{"lpsec_token_registration", "lpsec_token_machine", "lpsec_token_sync"} {
		rows, err := db.Query(`SELECT t::text FROM ` + table + ` t`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			dump.WriteString(line + "\n")
		}
		rows.Close()
	}
	if dump.Len() == 0 {
		t.Fatal("empty dump")
	}
	for _, tok := range []string{reg, mtok, stok} {
		u, _ := token.Parse(tok)
		for _, spelling := range []string{tok, strings.ToUpper(tok), hex.EncodeToString(u[:])} {
			if strings.Contains(strings.ToLower(dump.String()), strings.ToLower(spelling)) {
				t.Fatalf("the database holds a token")
			}
		}
	}
}

// TestPostgresFailsClosedAndRecovers stops a real cluster under the store:
// authentication must fail with token.ErrUnavailable, never succeed, and work
// again once the cluster is back, with the same store and *sql.DB.
func TestPostgresFailsClosedAndRecovers(t *testing.T) {
	c := pgtest.StartCluster(t)
	s, db := openPG(t, c.URL)
	ctx := context.Background()
	reg, _, err := s.IssueRegistration(ctx, token.Registration{Tier: "t", Name: "n", Uses: 5})
	if err != nil {
		t.Fatal(err)
	}
	mtok, _, err := s.Register(ctx, reg, "m")
	if err != nil {
		t.Fatal(err)
	}
	stok, _, err := s.IssueSync(ctx, token.Sync{Tier: "t", Name: "n"})
	if err != nil {
		t.Fatal(err)
	}

	// The throwaway cluster runs with synchronous_commit=off and stops in
	// immediate mode, which would lose the last commits: flush them first.
	if _, err := db.ExecContext(ctx, `CHECKPOINT`); err != nil {
		t.Fatal(err)
	}
	c.Stop()
	// Bound each call: a stopped server refuses at once, but a fail-closed
	// test must not hang if it does not.
	down, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for range 3 { // pooled connections break one by one; none may succeed
		_, err = s.AuthenticateMachine(down, mtok)
		wantErr(t, "AuthenticateMachine with the database down", err, token.ErrUnavailable)
		_, err = s.AuthenticateSync(down, stok)
		wantErr(t, "AuthenticateSync with the database down", err, token.ErrUnavailable)
		_, err = s.AuthenticateRegistration(down, reg)
		wantErr(t, "AuthenticateRegistration with the database down", err, token.ErrUnavailable)
		_, _, err = s.Register(down, reg, "m2")
		wantErr(t, "Register with the database down", err, token.ErrUnavailable)
	}
	if down.Err() != nil {
		t.Fatal("calls waited for the timeout instead of failing")
	}
	h, err := token.NewMiddleware(s)
	if err != nil {
		t.Fatal(err)
	}
	if code := serve(h.Machine(okHandler()), "Bearer "+mtok).Code; code != 503 {
		t.Fatalf("middleware with the database down answered %d, want 503", code)
	}

	c.Start()
	var m token.Machine
	i := 0
	// database/sql discards a broken pooled connection when it is next
	// used; a call may meet one before the pool is clean, and must then fail
	// closed. Within a few calls the store works again.
	for ; ; i++ {
		m, err = s.AuthenticateMachine(ctx, mtok)
		if err == nil {
			break
		}
		wantErr(t, "AuthenticateMachine just after restart", err, token.ErrUnavailable)
		if i == 40 {
			t.Fatalf("store did not recover: %v", err)
		}
	}
	t.Logf("store recovered after %d failed calls", i)
	if m.Machine != "m" {
		t.Fatalf("record %+v", m)
	}
	if _, err := s.AuthenticateSync(ctx, stok); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Register(ctx, reg, "m2"); err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

// serve sends one GET with the given Authorization header through h.
func serve(h http.Handler, authorization string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/v1/patches", nil)
	r.Header.Set("Authorization", authorization)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
}

// TestNewStoreOptionMisuse: tokenpg.NewStore takes token's store options and
// refuses misuse as token.NewMemoryStore does; no database is needed.
func TestNewStoreOptionMisuse(t *testing.T) {
	db := &sql.DB{}
	for _, tc := range []struct {
		name string
		db   *sql.DB
		opts []token.Option
		msg  string
	}{
		{"nil_db", nil, nil, "tokenpg.NewStore: nil *sql.DB"},
		{"nil_logger", db, []token.Option{token.WithLogger(nil)}, "WithLogger: nil logger"},
		{"nil_clock", db, []token.Option{token.WithClock(nil)}, "WithClock: nil clock"},
		{"zero_lifetime", db, []token.Option{token.WithMachineLifetime(0)}, "WithMachineLifetime: lifetime 0s is not positive"},
		{"cache_zero_ttl", db, []token.Option{token.WithAuthCache(0, 10)}, "WithAuthCache: ttl 0s is not in (0, 1m0s]"},
		{"cache_long_ttl", db, []token.Option{token.WithAuthCache(2*time.Minute, 10)}, "WithAuthCache: ttl 2m0s is not in (0, 1m0s]"},
		{"cache_zero_size", db, []token.Option{token.WithAuthCache(time.Second, 0)}, "WithAuthCache: size 0 is not positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewStore(tc.db, tc.opts...)
			if !errors.Is(err, token.ErrInvalidOption) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v; want ErrInvalidOption saying %q", err, tc.msg)
			}
		})
	}
	if _, err := NewStore(db, token.WithMachineLifetime(time.Hour), token.WithLogger(slog.Default())); err != nil {
		t.Fatalf("store options refused: %v", err)
	}
}

// TestBoundedRotations: many rotations of one machine name leave the
// machine table with KeepReplaced+1 rows for it and the admin list the size
// it was (issue 14 item 3). The size reported is the table's with its
// indexes; a plain VACUUM every 1,000 rotations stands for autovacuum.
func TestBoundedRotations(t *testing.T) {
	s, db := openPG(t, pgtest.Database(t))
	vacuum := func() {
		if _, err := db.Exec(`VACUUM lpsec_token_machine`); err != nil {
			t.Fatal(err)
		}
	}
	storetest.Bounded(t, s, storetest.BoundedN(t), func() int64 {
		vacuum()
		var n int64
		if err := db.QueryRow(`SELECT pg_total_relation_size('lpsec_token_machine')`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}, vacuum)
}

// TestListMachinesIsAKeysetScan: a page of ListMachines is an index range
// scan on seq, with no sort and no scan of the table, however many
// machines there are (issue 14: it was a 1.2 s sort spilled to disk).
func TestListMachinesIsAKeysetScan(t *testing.T) {
	s, db := openPG(t, pgtest.Database(t))
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `INSERT INTO lpsec_token_machine (id, machine, tier, issuer, external_ref, created)
		SELECT sha256(i::text::bytea), 'm' || i, 't', 'x', 'r', now() FROM generate_series(1, 50000) i`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `ANALYZE lpsec_token_machine`); err != nil {
		t.Fatal(err)
	}
	page, next, err := s.ListMachines(ctx, "25000", 1000)
	if err != nil || len(page) != 1000 || next != "26000" || page[0].Machine != "m25001" {
		t.Fatalf("page after 25000: %d records (first %+v), next %q, %v", len(page), page[0], next, err)
	}
	// EXPLAIN returns one row per plan line.
	rows, err := db.QueryContext(ctx, `EXPLAIN SELECT `+machineCols+`, seq FROM lpsec_token_machine
		WHERE seq > $1 ORDER BY seq LIMIT $2`, 25000, 1001)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var all strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		all.WriteString(line + "\n")
	}
	if p := all.String(); strings.Contains(p, "Sort") || strings.Contains(p, "Seq Scan") || !strings.Contains(p, "lpsec_token_machine_seq") {
		t.Fatalf("ListMachines plan is not a keyset index scan:\n%s", p)
	}
}

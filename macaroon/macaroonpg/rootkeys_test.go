package macaroonpg

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"
	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery/checkers"
	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery/postgresrootkeystore"
	"gopkg.in/macaroon.v2"

	"github.com/lpsec/lpsec/internal/pgtest"
	lpmac "github.com/lpsec/lpsec/macaroon"
	"github.com/lpsec/lpsec/macaroon/internal/rootkeytest"
)

// newPGRootKeyStore opens its own *sql.DB on url, as a separate server
// instance would, and migrates.
func newPGRootKeyStore(t testing.TB, url string, kek *KeyEncryptionKey, opts ...lpmac.Option) *RootKeyStore {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := NewRootKeyStore(db, kek, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func TestRootKeyPostgresConformance(t *testing.T) {
	pgtest.Open(t).Close() // skip early, with the message, when PostgreSQL is absent
	rootkeytest.Run(t, func(t *testing.T, opts ...lpmac.Option) lpmac.RootKeyStore {
		return newPGRootKeyStore(t, pgtest.Database(t), testKEK(t), opts...)
	})
}

func TestRootKeyPostgresMigrate(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	kek := testKEK(t)
	s := newPGRootKeyStore(t, url, kek)
	// Idempotent, and safe from several instances at once.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := newPGRootKeyStore(t, url, kek).Migrate(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM `+rootKeySchemaTable).Scan(&n); err != nil || n != len(rootKeyMigrations) {
		t.Fatalf("schema rows = %d, %v; want %d", n, err, len(rootKeyMigrations))
	}
	// A schema from a newer program is refused, not downgraded.
	if _, err := s.db.ExecContext(ctx, `INSERT INTO `+rootKeySchemaTable+` (version) VALUES (999)`); err != nil {
		t.Fatal(err)
	}
	// Both PostgreSQL stores report it the same way: ErrUnavailable.
	if err := s.Migrate(ctx); !errors.Is(err, lpmac.ErrUnavailable) || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Migrate on a newer schema = %v; want ErrUnavailable saying newer", err)
	}
}

func TestRootKeyPostgresWithoutMigrate(t *testing.T) {
	s, err := NewRootKeyStore(pgtest.Open(t), testKEK(t))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = s.RootKey(context.Background())
	if !errors.Is(err, lpmac.ErrUnavailable) || !strings.Contains(err.Error(), "Migrate") {
		t.Fatalf("RootKey before Migrate = %v; want lpmac.ErrUnavailable naming Migrate", err)
	}
}

func TestRootKeyPostgresConstructorInvalid(t *testing.T) {
	db := &sql.DB{}
	if _, err := NewRootKeyStore(db, nil); !errors.Is(err, lpmac.ErrInvalidKey) {
		t.Errorf("nil KEK: %v", err)
	}
	if _, err := NewRootKeyStore(db, &KeyEncryptionKey{}); !errors.Is(err, lpmac.ErrInvalidKey) {
		t.Errorf("zero KEK: %v", err)
	}
	if _, err := NewRootKeyStore(nil, testKEK(t)); !errors.Is(err, lpmac.ErrInvalidOption) {
		t.Errorf("nil db: %v", err)
	}
	for _, tc := range []struct {
		opt lpmac.Option
		msg string
	}{
		{lpmac.WithMaxTTL(-1), "WithMaxTTL: duration -1ns is not positive"},
		{lpmac.WithCacheTTL(0), "WithCacheTTL: duration 0s is not positive"},
		{lpmac.WithCacheTTL(-time.Second), "WithCacheTTL: duration -1s is not positive"},
		{lpmac.WithDefaultTTL(time.Hour), "WithDefaultTTL does not apply to macaroonpg.NewRootKeyStore"},
		{lpmac.WithLogger(nil), "WithLogger: nil logger"},
	} {
		if _, err := NewRootKeyStore(db, testKEK(t), tc.opt); !errors.Is(err, lpmac.ErrInvalidOption) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("err = %v; want ErrInvalidOption saying %q", err, tc.msg)
		}
	}
}

func TestRootKeyPostgresTwoInstancesShareKeys(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	kek := testKEK(t)
	clk := rootkeytest.NewClock()
	a := newPGRootKeyStore(t, url, kek, rootkeytest.Policy(clk)...)
	b := newPGRootKeyStore(t, url, kek, rootkeytest.Policy(clk)...)
	key, id := rootkeytest.MustRootKey(t, a)
	if got, err := b.Get(ctx, id); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("other instance Get: %v", err)
	}
	if k2, id2 := rootkeytest.MustRootKey(t, b); !bytes.Equal(id2, id) || !bytes.Equal(k2, key) {
		t.Fatal("other instance mints with a different key")
	}
	// After rotation, whichever instance rotates first, both converge.
	clk.Advance(24 * time.Hour)
	_, idB := rootkeytest.MustRootKey(t, b)
	clk.Advance(lpmac.DefaultRootKeyCacheTTL)
	if _, idA := rootkeytest.MustRootKey(t, a); !bytes.Equal(idA, idB) || bytes.Equal(idA, id) {
		t.Fatal("instances disagree on the rotated key")
	}
}

// TestRootKeyPostgresConcurrentRotation: instances that all find no current
// key at once must serialise on the advisory lock and adopt one new key.
func TestRootKeyPostgresConcurrentRotation(t *testing.T) {
	url := pgtest.Database(t)
	kek := testKEK(t)
	clk := rootkeytest.NewClock()
	var stores []*RootKeyStore
	for range 4 {
		stores = append(stores, newPGRootKeyStore(t, url, kek, rootkeytest.Policy(clk)...))
	}
	for round := range 3 {
		var mu sync.Mutex
		ids := map[string]bool{}
		var wg sync.WaitGroup
		for _, s := range stores {
			for range 3 {
				wg.Go(func() {
					_, id, err := s.RootKey(context.Background())
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					ids[string(id)] = true
					mu.Unlock()
				})
			}
		}
		wg.Wait()
		if len(ids) != 1 {
			t.Fatalf("round %d: %d keys minted concurrently; want 1", round, len(ids))
		}
		clk.Advance(24 * time.Hour)
	}
	var n int
	if err := stores[0].db.QueryRow(`SELECT count(*) FROM ` + rootKeyTable).Scan(&n); err != nil || n != 3 {
		t.Fatalf("rows = %d, %v; want 3 (one per rotation)", n, err)
	}
}

func TestRootKeyPostgresPurge(t *testing.T) {
	ctx := context.Background()
	clk := rootkeytest.NewClock()
	s := newPGRootKeyStore(t, pgtest.Database(t), testKEK(t), rootkeytest.Policy(clk)...)
	for range 30 {
		rootkeytest.MustRootKey(t, s)
		clk.Advance(24 * time.Hour)
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM `+rootKeyTable).Scan(&n); err != nil || n > 11 {
		t.Fatalf("rows after 30 rotations = %d, %v; want at most 11", n, err)
	}
}

// TestRootKeyPostgresRevocationBound: a key revoked on one instance stops
// verifying and minting on another within CacheTTL, measured on the
// injected clock.
func TestRootKeyPostgresRevocationBound(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	kek := testKEK(t)
	clk := rootkeytest.NewClock()
	a := newPGRootKeyStore(t, url, kek, rootkeytest.Policy(clk)...)
	b := newPGRootKeyStore(t, url, kek, rootkeytest.Policy(clk)...)
	_, id := rootkeytest.MustRootKey(t, a)
	if _, idB := rootkeytest.MustRootKey(t, b); !bytes.Equal(idB, id) { // b caches it for minting and Get
		t.Fatal("instances disagree")
	}
	if _, err := b.Get(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := a.Revoke(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(ctx, id); err != bakery.ErrNotFound {
		t.Fatalf("revoking instance: Get = %v; want bakery.ErrNotFound at once", err)
	}
	// Within the documented bound the other instance may still use it...
	clk.Advance(lpmac.DefaultRootKeyCacheTTL - time.Millisecond)
	if _, err := b.Get(ctx, id); err != nil {
		t.Fatalf("within CacheTTL: %v (the cache is expected to answer)", err)
	}
	// ...and from the bound on, never.
	clk.Advance(time.Millisecond)
	if _, err := b.Get(ctx, id); err != bakery.ErrNotFound {
		t.Fatalf("other instance after CacheTTL: Get = %v; want bakery.ErrNotFound", err)
	}
	if _, idB := rootkeytest.MustRootKey(t, b); bytes.Equal(idB, id) {
		t.Fatal("other instance still mints with a revoked key after CacheTTL")
	}
}

func TestRootKeyPostgresCacheDisabledRevokesAtOnce(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	kek := testKEK(t)
	clk := rootkeytest.NewClock()
	p := append(rootkeytest.Policy(clk), lpmac.WithoutRootKeyCache())
	a := newPGRootKeyStore(t, url, kek, p...)
	b := newPGRootKeyStore(t, url, kek, p...)
	_, id := rootkeytest.MustRootKey(t, a)
	rootkeytest.MustRootKey(t, b)
	if _, err := b.Get(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := a.Revoke(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, id); err != bakery.ErrNotFound {
		t.Fatalf("Get = %v; want bakery.ErrNotFound with no cache", err)
	}
	if _, idB := rootkeytest.MustRootKey(t, b); bytes.Equal(idB, id) {
		t.Fatal("minted with a revoked key")
	}
}

// TestRootKeyPostgresCrossInstanceBakery mints with the bakery on one
// instance and verifies with the bakery on another sharing the database,
// then revokes on the first and checks the second rejects after CacheTTL.
func TestRootKeyPostgresCrossInstanceBakery(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	kek := testKEK(t)
	clk := rootkeytest.NewClock()
	a := newPGRootKeyStore(t, url, kek, rootkeytest.Policy(clk)...)
	b := newPGRootKeyStore(t, url, kek, rootkeytest.Policy(clk)...)
	bakeryA := bakery.New(bakery.BakeryParams{RootKeyStore: a, Location: "lpsec-test"})
	bakeryB := bakery.New(bakery.BakeryParams{RootKeyStore: b, Location: "lpsec-test"})
	op := bakery.Op{Entity: "admin", Action: "write"}
	m, err := bakeryA.Oven.NewMacaroon(ctx, bakery.LatestVersion,
		[]checkers.Caveat{checkers.TimeBeforeCaveat(time.Now().Add(time.Hour))}, op)
	if err != nil {
		t.Fatal(err)
	}
	// Through the wire format, as a real request would carry it.
	data, err := m.M().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var wire macaroon.Macaroon
	if err := wire.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	if _, err := bakeryB.Checker.Auth(macaroon.Slice{&wire}).Allow(ctx, op); err != nil {
		t.Fatalf("macaroon minted on instance A rejected by instance B: %v", err)
	}
	if _, err := bakeryB.Checker.Auth(macaroon.Slice{&wire}).Allow(ctx, bakery.Op{Entity: "admin", Action: "delete"}); err == nil {
		t.Fatal("instance B allowed an operation the macaroon does not grant")
	}
	_, id := rootkeytest.MustRootKey(t, a)
	if err := a.Revoke(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := bakeryA.Checker.Auth(macaroon.Slice{&wire}).Allow(ctx, op); err == nil {
		t.Fatal("revoking instance still accepts")
	}
	clk.Advance(lpmac.DefaultRootKeyCacheTTL)
	if _, err := bakeryB.Checker.Auth(macaroon.Slice{&wire}).Allow(ctx, op); err == nil {
		t.Fatal("instance B accepts a revoked key's macaroon after CacheTTL")
	}
}

// TestRootKeyPostgresDumpHasNoPlaintext reads the table as a dump would
// (every column, as text and bytes, and with pg_dump when installed) and
// looks for the root keys in any encoding.
func TestRootKeyPostgresDumpHasNoPlaintext(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	clk := rootkeytest.NewClock()
	s := newPGRootKeyStore(t, url, testKEK(t), rootkeytest.Policy(clk)...)
	var keys [][]byte
	for range 3 {
		k, _ := rootkeytest.MustRootKey(t, s)
		keys = append(keys, k)
		clk.Advance(24 * time.Hour)
	}
	var dump bytes.Buffer
	rows, err := s.db.QueryContext(ctx, `SELECT row_to_json(t)::text, t.id, t.sealed, t.kek_id FROM `+rootKeyTable+` t`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var js, kekID string
		var id, sealed []byte
		if err := rows.Scan(&js, &id, &sealed, &kekID); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&dump, "%s\n%s\n%s\n%s\n", js, id, sealed, kekID)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if pgDump := findPGDump(); pgDump != "" {
		out, err := exec.Command(pgDump, "--data-only", "--table="+rootKeyTable, url).Output()
		if err != nil {
			t.Fatalf("pg_dump: %v", err)
		}
		if !bytes.Contains(out, []byte("COPY public."+rootKeyTable)) {
			t.Fatalf("pg_dump output has no table data:\n%s", out)
		}
		dump.Write(out)
	} else {
		t.Log("pg_dump not found; checked the SQL-level dump only")
	}
	for i, k := range keys {
		for _, enc := range [][]byte{k, []byte(hex.EncodeToString(k)), []byte(base64.StdEncoding.EncodeToString(k)), k[:8], []byte(hex.EncodeToString(k[:8]))} {
			if bytes.Contains(dump.Bytes(), enc) {
				t.Fatalf("root key %d found in the database dump", i)
			}
		}
	}
}

func findPGDump() string {
	if p, err := exec.LookPath("pg_dump"); err == nil {
		return p
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_dump")
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	if len(dirs) > 0 {
		return dirs[0]
	}
	return ""
}

func TestRootKeyPostgresWrongKEK(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	clk := rootkeytest.NewClock()
	a := newPGRootKeyStore(t, url, testKEK(t), rootkeytest.Policy(clk)...)
	wrong := testKEK(t)
	b := newPGRootKeyStore(t, url, wrong, rootkeytest.Policy(clk)...)
	_, id := rootkeytest.MustRootKey(t, a)
	_, err := b.Get(ctx, id)
	if !errors.Is(err, ErrKeyEncryptionKeyMismatch) || err == bakery.ErrNotFound {
		t.Fatalf("Get with the wrong KEK = %v; want ErrKeyEncryptionKeyMismatch", err)
	}
	if !strings.Contains(err.Error(), wrong.ID()) {
		t.Errorf("error %q does not name the KEK ids", err)
	}
	// Minting must not silently start a second, unshared key.
	if _, _, err := b.RootKey(ctx); !errors.Is(err, ErrKeyEncryptionKeyMismatch) {
		t.Fatalf("RootKey with the wrong KEK = %v; want ErrKeyEncryptionKeyMismatch", err)
	}
	var n int
	if err := a.db.QueryRowContext(ctx, `SELECT count(*) FROM `+rootKeyTable).Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows = %d, %v; want 1", n, err)
	}
}

// TestRootKeyPostgresTampered alters rows as an attacker with write access
// to the database could; each read must fail closed, never return a key.
func TestRootKeyPostgresTampered(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		update string // $1 = target id, $2 = other id
		want   error
	}{
		{"flipped_ciphertext_byte", `UPDATE ` + rootKeyTable + ` SET sealed = set_byte(sealed, 20, get_byte(sealed, 20) # 1) WHERE id = $1 AND $2::bytea IS NOT NULL`, ErrRootKeyCorrupt},
		{"flipped_nonce_byte", `UPDATE ` + rootKeyTable + ` SET sealed = set_byte(sealed, 0, get_byte(sealed, 0) # 1) WHERE id = $1 AND $2::bytea IS NOT NULL`, ErrRootKeyCorrupt},
		{"truncated_ciphertext", `UPDATE ` + rootKeyTable + ` SET sealed = substring(sealed from 1 for 30) WHERE id = $1 AND $2::bytea IS NOT NULL`, ErrRootKeyCorrupt},
		{"ciphertext_from_other_row", `UPDATE ` + rootKeyTable + ` SET sealed = (SELECT sealed FROM ` + rootKeyTable + ` WHERE id = $2) WHERE id = $1`, ErrRootKeyCorrupt},
		{"kek_id_relabelled", `UPDATE ` + rootKeyTable + ` SET kek_id = 'ffffffffffffffff' WHERE id = $1 AND $2::bytea IS NOT NULL`, ErrKeyEncryptionKeyMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := pgtest.Database(t)
			kek := testKEK(t)
			clk := rootkeytest.NewClock()
			a := newPGRootKeyStore(t, url, kek, rootkeytest.Policy(clk)...)
			_, other := rootkeytest.MustRootKey(t, a)
			clk.Advance(24 * time.Hour)
			_, target := rootkeytest.MustRootKey(t, a)
			if _, err := a.db.ExecContext(ctx, tc.update, target, other); err != nil {
				t.Fatal(err)
			}
			b := newPGRootKeyStore(t, url, kek, rootkeytest.Policy(clk)...) // nothing cached
			got, err := b.Get(ctx, target)
			if !errors.Is(err, tc.want) || got != nil {
				t.Fatalf("Get = %x, %v; want %v", got, err, tc.want)
			}
			if _, _, err := b.RootKey(ctx); !errors.Is(err, tc.want) {
				t.Fatalf("RootKey = %v; want %v", err, tc.want)
			}
		})
	}
}

func TestRootKeyPostgresClosedDBFailsClosed(t *testing.T) {
	ctx := context.Background()
	clk := rootkeytest.NewClock()
	s := newPGRootKeyStore(t, pgtest.Database(t), testKEK(t), rootkeytest.Policy(clk)...)
	_, id := rootkeytest.MustRootKey(t, s)
	s.db.Close()
	clk.Advance(lpmac.DefaultRootKeyCacheTTL)
	got, err := s.Get(ctx, id)
	if !errors.Is(err, lpmac.ErrUnavailable) || err == bakery.ErrNotFound || got != nil {
		t.Fatalf("Get on a closed DB = %x, %v; want lpmac.ErrUnavailable", got, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := s.RootKey(cctx); !errors.Is(err, lpmac.ErrUnavailable) {
		t.Fatalf("RootKey = %v; want lpmac.ErrUnavailable", err)
	}
}

// TestRootKeyPostgresServerStopped stops the PostgreSQL server under a
// running store: every call fails with lpmac.ErrUnavailable (never a key,
// never ErrNotFound) once the cache bound has passed, and the store works
// again when the server is back.
func TestRootKeyPostgresServerStopped(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own PostgreSQL cluster")
	}
	ctx := context.Background()
	cl := pgtest.StartCluster(t)
	clk := rootkeytest.NewClock()
	s := newPGRootKeyStore(t, cl.URL, testKEK(t), rootkeytest.Policy(clk)...)
	b := bakery.New(bakery.BakeryParams{RootKeyStore: s, Location: "lpsec-test"})
	op := bakery.Op{Entity: "patches", Action: "read"}
	m, err := b.Oven.NewMacaroon(ctx, bakery.LatestVersion, []checkers.Caveat{checkers.TimeBeforeCaveat(time.Now().Add(time.Hour))}, op)
	if err != nil {
		t.Fatal(err)
	}
	key, id := rootkeytest.MustRootKey(t, s)
	// The test cluster runs with synchronous_commit=off and Stop is an
	// immediate shutdown: make the committed rows durable first.
	if _, err := s.db.ExecContext(ctx, "CHECKPOINT"); err != nil {
		t.Fatal(err)
	}

	cl.Stop()
	// Within CacheTTL the cached key answers: that is the documented bound.
	if _, err := s.Get(ctx, id); err != nil {
		t.Fatalf("cached Get during outage: %v", err)
	}
	clk.Advance(lpmac.DefaultRootKeyCacheTTL)
	if got, err := s.Get(ctx, id); !errors.Is(err, lpmac.ErrUnavailable) || err == bakery.ErrNotFound || got != nil {
		t.Fatalf("Get with server down = %x, %v; want lpmac.ErrUnavailable", got, err)
	}
	if _, _, err := s.RootKey(ctx); !errors.Is(err, lpmac.ErrUnavailable) {
		t.Fatalf("RootKey with server down = %v; want lpmac.ErrUnavailable", err)
	}
	if err := s.Revoke(ctx, id); !errors.Is(err, lpmac.ErrUnavailable) {
		t.Fatalf("Revoke with server down = %v; want lpmac.ErrUnavailable", err)
	}
	if _, err := b.Checker.Auth(macaroon.Slice{m.M()}).Allow(ctx, op); err == nil {
		t.Fatal("bakery accepted a macaroon while the root key store was down")
	}

	cl.Start()
	// The first call after the restart must work: database/sql discards the
	// dead pooled connections and dials again.
	got, err := s.Get(ctx, id)
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("Get after restart: %v", err)
	}
	if _, err := b.Checker.Auth(macaroon.Slice{m.M()}).Allow(ctx, op); err != nil {
		t.Fatalf("macaroon rejected after the server came back: %v", err)
	}
}

func TestRootKeyPostgresHostileIDsNeverQuery(t *testing.T) {
	// Ids of the wrong length are answered without the database: a closed
	// handle still gives bakery.ErrNotFound, so an attacker's huge id costs
	// nothing.
	s, err := NewRootKeyStore(&sql.DB{}, testKEK(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range [][]byte{nil, make([]byte, 1<<20), []byte("0")} {
		if _, err := s.Get(context.Background(), id); err != bakery.ErrNotFound {
			t.Fatalf("Get(%d bytes) = %v; want bakery.ErrNotFound", len(id), err)
		}
	}
}

func BenchmarkRootKeyGetPostgres(b *testing.B) {
	ctx := context.Background()
	url := pgtest.Database(b)
	kek := testKEK(b)
	run := func(b *testing.B, s bakery.RootKeyStore) {
		_, id, err := s.RootKey(ctx)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Get(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("lpsec", func(b *testing.B) {
		run(b, newPGRootKeyStore(b, url, kek))
	})
	b.Run("uncached", func(b *testing.B) {
		run(b, newPGRootKeyStore(b, url, kek, lpmac.WithoutRootKeyCache()))
	})
	// The bakery's PostgreSQL store: plaintext keys, cached without a bound.
	b.Run("baseline", func(b *testing.B) {
		db, err := sql.Open("pgx", url)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		keys := postgresrootkeystore.NewRootKeys(db, "bakery_baseline_root_keys", 1000)
		defer keys.Close()
		run(b, keys.NewStore(postgresrootkeystore.Policy{GenerateInterval: 24 * time.Hour, ExpiryDuration: 240 * time.Hour}))
	})
}

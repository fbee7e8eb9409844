package macaroonpg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lpsec/lpsec/internal/pgtest"
	lpmac "github.com/lpsec/lpsec/macaroon"
	"github.com/lpsec/lpsec/macaroon/internal/revocationtest"
)

func newPGRevocationStore(t testing.TB, url string, opts ...lpmac.Option) *RevocationStore {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := NewRevocationStore(db, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

// The conformance table, each instance with its own *sql.DB on one
// database, as two servers would be; uncached so that "the other instance
// refuses" is immediate and the table is the memory store's.
func TestRevocationPostgresConformance(t *testing.T) {
	pgtest.Open(t).Close()
	urls := map[*testing.T]string{}
	revocationtest.Run(t, func(t *testing.T, opts ...lpmac.Option) lpmac.RevocationStore {
		url, ok := urls[t]
		if !ok {
			url = pgtest.Database(t)
			urls[t] = url
		}
		return newPGRevocationStore(t, url, append(opts, lpmac.WithoutRevocationCache())...)
	})
}

// With the cache, another instance refuses a revocation once its snapshot
// is older than CacheTTL, and never later; the revoking instance at once.
func TestRevocationPostgresCacheBound(t *testing.T) {
	url := pgtest.Database(t)
	ctx := context.Background()
	clock := revocationtest.NewClock()
	a := newPGRevocationStore(t, url, lpmac.WithClock(clock.Now), lpmac.WithCacheTTL(5*time.Second))
	b := newPGRevocationStore(t, url, lpmac.WithClock(clock.Now), lpmac.WithCacheTTL(5*time.Second))
	id := strings.Repeat("cd", 32)
	// b loads its (empty) snapshot.
	if ok, err := b.Revoked(ctx, id, "alice", time.Time{}); err != nil || ok {
		t.Fatalf("before: %v %v", ok, err)
	}
	if err := a.Revoke(ctx, lpmac.Revocation{ID: id, Expires: clock.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if ok, err := a.Revoked(ctx, id, "alice", time.Time{}); err != nil || !ok {
		t.Fatalf("revoking instance: %v %v, want revoked at once", ok, err)
	}
	clock.Advance(5 * time.Second)
	if ok, err := b.Revoked(ctx, id, "alice", time.Time{}); err != nil || !ok {
		t.Fatalf("other instance at the bound: %v %v, want revoked", ok, err)
	}
	// A database fault past the bound fails closed.
	db, _ := sql.Open("pgx", url)
	c, err := NewRevocationStore(db, lpmac.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := c.Revoked(ctx, id, "alice", time.Time{}); !errors.Is(err, lpmac.ErrUnavailable) {
		t.Fatalf("closed database: %v, want ErrUnavailable", err)
	}
}

func TestRevocationPostgresOptions(t *testing.T) {
	if _, err := NewRevocationStore(nil); !errors.Is(err, lpmac.ErrInvalidOption) {
		t.Errorf("nil db: %v", err)
	}
	db, _ := sql.Open("pgx", "postgres://invalid.invalid/x")
	defer db.Close()
	for _, o := range []lpmac.Option{lpmac.WithoutRootKeyCache(), lpmac.WithRotationPeriod(time.Hour), lpmac.WithCacheTTL(0)} {
		if _, err := NewRevocationStore(db, o); !errors.Is(err, lpmac.ErrInvalidOption) {
			t.Errorf("%v: want ErrInvalidOption", err)
		}
	}
}

// BenchmarkRevokedPostgres: one check with the snapshot cache against one
// query per check, on a table of 1,000 revoked ids.
func BenchmarkRevokedPostgres(b *testing.B) {
	url := pgtest.Database(b)
	ctx := context.Background()
	seed := newPGRevocationStore(b, url)
	exp := time.Now().Add(time.Hour)
	for i := range 1000 {
		id := strings.Repeat(fmt.Sprintf("%04x", i), 16)
		if err := seed.Revoke(ctx, lpmac.Revocation{ID: id, Expires: exp}); err != nil {
			b.Fatal(err)
		}
	}
	probe := strings.Repeat("ff", 32)
	for _, c := range []struct {
		name string
		opt  lpmac.Option
	}{{"cached", lpmac.WithCacheTTL(5 * time.Second)}, {"uncached", lpmac.WithoutRevocationCache()}} {
		b.Run(c.name, func(b *testing.B) {
			s := newPGRevocationStore(b, url, c.opt)
			for b.Loop() {
				if ok, err := s.Revoked(ctx, probe, "alice", time.Now()); err != nil || ok {
					b.Fatal(ok, err)
				}
			}
		})
	}
}

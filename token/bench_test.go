package token

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/lpsec/lpsec/internal/pgtest"
)

// Baselines are the raw dependency doing the same work, or what servers do
// today: keep tokens in plain text and look them up directly.

func BenchmarkGenerate(b *testing.B) {
	b.Run("lpsec", func(b *testing.B) {
		for b.Loop() {
			if _, err := Generate(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline", func(b *testing.B) {
		for b.Loop() {
			u, err := uuid.NewRandom()
			if err != nil {
				b.Fatal(err)
			}
			_ = u.String()
		}
	})
}

func BenchmarkParse(b *testing.B) {
	const s = "0f8fad5b-d9cb-469f-a165-70867728950e"
	b.Run("lpsec", func(b *testing.B) {
		for b.Loop() {
			if _, err := Parse(s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline", func(b *testing.B) {
		for b.Loop() {
			if _, err := uuid.Parse(s); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAuthenticateMemory: AuthenticateMachine (parse, SHA-256, map
// lookup, LastSeen update) against a plaintext map under a mutex.
func BenchmarkAuthenticateMemory(b *testing.B) {
	ctx := context.Background()
	s := NewMemoryStore()
	reg, _, _ := s.IssueRegistration(ctx, Registration{Tier: "t", Name: "n", Uses: Unlimited})
	var tok string
	for i := range 1000 {
		t, _, err := s.Register(ctx, reg, fmt.Sprint("machine-", i))
		if err != nil {
			b.Fatal(err)
		}
		tok = t
	}
	b.Run("lpsec", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.AuthenticateMachine(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline", func(b *testing.B) {
		var mu sync.Mutex
		plain := map[string]Machine{tok: {Machine: "m"}}
		for b.Loop() {
			mu.Lock()
			_, ok := plain[tok]
			mu.Unlock()
			if !ok {
				b.Fatal("not found")
			}
		}
	})
}

// BenchmarkAuthenticatePostgres: AuthenticateMachine, one round trip (a
// primary-key read that writes LastSeen at most once a minute), against a
// plaintext primary-key SELECT. Skipped without LPSEC_TEST_DATABASE_URL.
func BenchmarkAuthenticatePostgres(b *testing.B) {
	ctx := context.Background()
	url := pgtest.Database(b)
	db, err := sql.Open("pgx", url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	s := NewPostgresStore(db)
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	reg, _, err := s.IssueRegistration(ctx, Registration{Tier: "t", Name: "n", Uses: Unlimited})
	if err != nil {
		b.Fatal(err)
	}
	tok, _, err := s.Register(ctx, reg, "m")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE plain_tokens (token text PRIMARY KEY, machine text NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO plain_tokens VALUES ($1, 'm')`, tok); err != nil {
		b.Fatal(err)
	}
	b.Run("lpsec", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.AuthenticateMachine(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline", func(b *testing.B) {
		var m string
		for b.Loop() {
			if err := db.QueryRowContext(ctx, `SELECT machine FROM plain_tokens WHERE token = $1`, tok).Scan(&m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

package tokenpg

import (
	"context"
	"database/sql"
	"testing"

	"github.com/lpsec/lpsec/internal/pgtest"
	"github.com/lpsec/lpsec/token"
)

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
	s, err := NewStore(db)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	reg, _, err := s.IssueRegistration(ctx, token.Registration{Tier: "t", Name: "n", Uses: token.Unlimited})
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

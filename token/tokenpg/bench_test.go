package tokenpg

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lpsec/lpsec/internal/pgtest"
	"github.com/lpsec/lpsec/token"
)

// BenchmarkAuthenticatePostgres: AuthenticateMachine, one round trip (a
// primary-key read that writes LastSeen at most once a minute), against a
// plaintext primary-key SELECT; "cached" is the same with
// token.WithAuthCache(1s, 1024), at most one round trip per second.
// Skipped without LPSEC_TEST_DATABASE_URL.
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
	cached, err := NewStore(db, token.WithAuthCache(time.Second, 1024))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			if _, err := cached.AuthenticateMachine(ctx, tok); err != nil {
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

// BenchmarkRegisterShared: 64 concurrent registrations of new machine names
// on one shared registration token (lpsec) against the same on 64
// different tokens (baseline), for a limited and an unlimited token. Issue
// 14 asks for a ratio baseline/lpsec in rate (lpsec/baseline in ns/op) of at
// most 1/0.6. Use counts are checked exact after each run. Skipped without
// LPSEC_TEST_DATABASE_URL.
func BenchmarkRegisterShared(b *testing.B) {
	for _, uses := range []int{token.MaxUses, token.Unlimited} {
		name := "limited"
		if uses == token.Unlimited {
			name = "unlimited"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			db, err := sql.Open("pgx", pgtest.Database(b))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			db.SetMaxOpenConns(64)
			db.SetMaxIdleConns(64)
			s, err := NewStore(db)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Migrate(ctx); err != nil {
				b.Fatal(err)
			}
			issue := func() string {
				tok, _, err := s.IssueRegistration(ctx, token.Registration{Tier: "t", Name: "n", Uses: uses})
				if err != nil {
					b.Fatal(err)
				}
				return tok
			}
			var names atomic.Int64
			run := func(b *testing.B, tokens []string) {
				var g atomic.Int64
				b.SetParallelism((64 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
				b.RunParallel(func(pb *testing.PB) {
					tok := tokens[int(g.Add(1)-1)%len(tokens)]
					for pb.Next() {
						if _, _, err := s.Register(ctx, tok, fmt.Sprint("m-", names.Add(1))); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			shared := issue()
			b.Run("lpsec", func(b *testing.B) {
				before := names.Load()
				run(b, []string{shared})
				if uses != token.Unlimited {
					r, err := s.AuthenticateRegistration(ctx, shared)
					if err != nil {
						b.Fatal(err)
					}
					if got, want := int64(token.MaxUses-r.UsesLeft), names.Load(); got != want || want < before {
						b.Fatalf("%d uses taken for %d registrations", got, want)
					}
				}
			})
			many := make([]string, 64)
			for i := range many {
				many[i] = issue()
			}
			b.Run("baseline", func(b *testing.B) { run(b, many) })
		})
	}
}

package tokenpg

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lpsec/lpsec/internal/pgtest"
	"github.com/lpsec/lpsec/token"
	"github.com/lpsec/lpsec/token/internal/core"
)

// fakeClock is an instance's clock that the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const cacheTTL = 5 * time.Second

// cachedPair opens two instances on one database: a caches (with clock c),
// b does not. It returns them and a machine token named m registered on b.
func cachedPair(t *testing.T, size int, opts ...token.Option) (a, b *Store, c *fakeClock, mtok string) {
	a, b, c, mtok, _ = cachedPairReg(t, size, opts...)
	return
}

func cachedPairReg(t *testing.T, size int, opts ...token.Option) (a, b *Store, c *fakeClock, mtok, reg string) {
	t.Helper()
	url := pgtest.Database(t)
	c = &fakeClock{t: time.Now()}
	a, _ = openPG(t, url, append([]token.Option{token.WithClock(c.now), token.WithAuthCache(cacheTTL, size)}, opts...)...)
	b, _ = openPG(t, url, token.WithClock(c.now))
	reg, _, err := b.IssueRegistration(context.Background(), token.Registration{Tier: "t", Name: "n", Uses: token.Unlimited})
	if err != nil {
		t.Fatal(err)
	}
	mtok, _, err = b.Register(context.Background(), reg, "m")
	if err != nil {
		t.Fatal(err)
	}
	return a, b, c, mtok, reg
}

func TestAuthCacheHitSkipsDatabase(t *testing.T) {
	a, _, _, mtok := cachedPair(t, 10)
	ctx := context.Background()
	m, err := a.AuthenticateMachine(ctx, mtok)
	if err != nil {
		t.Fatal(err)
	}
	// The database is closed: only a cache hit can answer.
	a.db.Close()
	got, err := a.AuthenticateMachine(ctx, mtok)
	if err != nil {
		t.Fatalf("cached authentication with the database closed: %v", err)
	}
	if got != m {
		t.Fatalf("hit = %+v; want %+v", got, m)
	}
}

func TestAuthCacheSameInstanceRevocationEvictsAtOnce(t *testing.T) {
	for _, how := range []string{"revoke", "release", "rotate"} {
		t.Run(how, func(t *testing.T) {
			a, _, _, mtok, reg := cachedPairReg(t, 10)
			ctx := context.Background()
			m, err := a.AuthenticateMachine(ctx, mtok)
			if err != nil {
				t.Fatal(err)
			}
			switch how {
			case "revoke":
				err = a.RevokeMachine(ctx, m.ID)
			case "release":
				err = a.ReleaseMachine(ctx, "m")
			case "rotate":
				// Rotation: the holder replaces its own machine token.
				_, _, err = a.Register(ctx, reg, "m", token.WithCurrentToken(mtok))
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.AuthenticateMachine(ctx, mtok); !errors.Is(err, token.ErrRevoked) {
				t.Fatalf("after %s on the caching instance: err = %v; want ErrRevoked", how, err)
			}
		})
	}
}

func TestAuthCacheOtherInstanceRevocationWithinTTL(t *testing.T) {
	a, b, c, mtok := cachedPair(t, 10)
	ctx := context.Background()
	m, err := a.AuthenticateMachine(ctx, mtok)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.RevokeMachine(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	// Within the bound a may still accept (that is the documented cost);
	// at ttl it must refuse.
	c.add(cacheTTL - time.Millisecond)
	if _, err := a.AuthenticateMachine(ctx, mtok); err != nil {
		t.Fatalf("within ttl: %v (the cache should still answer)", err)
	}
	c.add(time.Millisecond)
	if _, err := a.AuthenticateMachine(ctx, mtok); !errors.Is(err, token.ErrRevoked) {
		t.Fatalf("ttl after a revocation on another instance: err = %v; want ErrRevoked", err)
	}
}

func TestAuthCacheHonoursExpiryExactly(t *testing.T) {
	url := pgtest.Database(t)
	c := &fakeClock{t: time.Now()}
	a, _ := openPG(t, url, token.WithClock(c.now), token.WithAuthCache(token.MaxAuthCacheTTL, 10),
		token.WithMachineLifetime(2*time.Second))
	ctx := context.Background()
	reg, _, err := a.IssueRegistration(ctx, token.Registration{Tier: "t", Name: "n", Uses: 1})
	if err != nil {
		t.Fatal(err)
	}
	mtok, m, err := a.Register(ctx, reg, "m")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.AuthenticateMachine(ctx, mtok); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.t = m.ValidUntil.Add(-time.Microsecond)
	c.mu.Unlock()
	if _, err := a.AuthenticateMachine(ctx, mtok); err != nil {
		t.Fatalf("just before ValidUntil: %v", err)
	}
	if a.cache.len() != 1 {
		t.Fatalf("cache holds %d records; want the 1 being tested", a.cache.len())
	}
	c.add(time.Microsecond)
	if _, err := a.AuthenticateMachine(ctx, mtok); !errors.Is(err, token.ErrExpired) {
		t.Fatalf("at ValidUntil, cached: err = %v; want ErrExpired", err)
	}
}

func TestAuthCacheBoundedAndKeyedByDigest(t *testing.T) {
	const size = 3
	a, b, _, first := cachedPair(t, size)
	ctx := context.Background()
	reg, _, err := b.IssueRegistration(ctx, token.Registration{Tier: "t", Name: "n", Uses: token.Unlimited})
	if err != nil {
		t.Fatal(err)
	}
	toks := []string{first}
	for i := range 2 * size {
		tok, _, err := b.Register(ctx, reg, fmt.Sprintf("m%d", i))
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
	}
	for _, tok := range toks {
		if _, err := a.AuthenticateMachine(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if n := a.cache.len(); n > size {
			t.Fatalf("cache holds %d records; bound is %d", n, size)
		}
	}
	// A flood of unknown tokens neither grows the cache nor evicts.
	before := snapshot(a)
	for range 200 {
		bad, err := token.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.AuthenticateMachine(ctx, bad); !errors.Is(err, token.ErrUnknown) {
			t.Fatalf("unknown token: %v", err)
		}
	}
	if after := snapshot(a); after != before {
		t.Fatalf("unknown tokens changed the cache: %q -> %q", before, after)
	}
	// Keys are SHA-256 digests, never the token.
	a.cache.mu.Lock()
	defer a.cache.mu.Unlock()
	for k := range a.cache.m {
		found := false
		for _, tok := range toks {
			u, err := core.Parse(tok)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(k[:]), tok) || strings.Contains(string(k[:]), string(u[:])) {
				t.Fatalf("cache key holds a token")
			}
			if k == sha256.Sum256(u[:]) {
				found = true
			}
		}
		if !found {
			t.Fatalf("cache key %x is no token's digest", k)
		}
	}
}

func snapshot(s *Store) string {
	s.cache.mu.Lock()
	defer s.cache.mu.Unlock()
	keys := make([]string, 0, len(s.cache.m))
	for k := range s.cache.m {
		keys = append(keys, fmt.Sprintf("%x", k))
	}
	slices.Sort(keys)
	return strings.Join(keys, ",")
}

// Package revocationtest is the conformance suite every
// macaroon.RevocationStore passes: the memory store in package macaroon's
// tests and the PostgreSQL store in macaroonpg's. It drives the store both
// directly and through a Service, so that each store is held to the same
// table of what is refused.
package revocationtest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"

	lpmac "github.com/lpsec/lpsec/macaroon"
)

// Clock is a settable clock: no test sleeps.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

func NewClock() *Clock { return &Clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// NewStore makes an empty store using opts (which carry the test clock).
// Two calls in one test must share state, as two instances on one
// database do (the memory factory returns the same store).
type NewStore func(t *testing.T, opts ...lpmac.Option) lpmac.RevocationStore

var (
	opRead  = bakery.Op{Entity: "admin", Action: "read"}
	opWrite = bakery.Op{Entity: "admin", Action: "write"}
)

type instance struct {
	svc   *lpmac.Service
	store lpmac.RevocationStore
}

func newInstance(t *testing.T, clock *Clock, newStore NewStore, store lpmac.RevocationStore, keys lpmac.RootKeyStore, key *bakery.KeyPair) instance {
	if store == nil {
		store = newStore(t, lpmac.WithClock(clock.Now))
	}
	svc, err := lpmac.NewService("https://lpsec.example", key, keys, lpmac.WithClock(clock.Now), lpmac.WithRevocations(store))
	if err != nil {
		t.Fatal(err)
	}
	return instance{svc: svc, store: store}
}

func verify(t *testing.T, svc *lpmac.Service, m *bakery.Macaroon, op bakery.Op) (*lpmac.Grant, error) {
	t.Helper()
	return svc.Verify(context.Background(), []lpmac.Slice{{m.M()}}, op)
}

// Run runs the suite.
func Run(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	key, err := lpmac.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	setup := func(t *testing.T) (*Clock, instance, instance) {
		clock := NewClock()
		keys, err := lpmac.NewMemoryRootKeyStore(lpmac.WithClock(clock.Now))
		if err != nil {
			t.Fatal(err)
		}
		a := newInstance(t, clock, newStore, nil, keys, key)
		b := newInstance(t, clock, newStore, nil, keys, key)
		return clock, a, b
	}
	mint := func(t *testing.T, svc *lpmac.Service, user string) *bakery.Macaroon {
		t.Helper()
		m, err := svc.MintLogin(ctx, user, time.Hour, opRead, opWrite)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	t.Run("logout", func(t *testing.T) {
		_, a, b := setup(t)
		alice, other := mint(t, a.svc, "alice"), mint(t, a.svc, "alice")
		g, err := verify(t, a.svc, alice, opRead)
		if err != nil {
			t.Fatal(err)
		}
		if len(g.ID) != lpmac.MacaroonIDLen || g.Issued.IsZero() {
			t.Fatalf("grant id %q issued %v", g.ID, g.Issued)
		}
		if err := a.svc.Logout(ctx, g); err != nil {
			t.Fatal(err)
		}
		for name, inst := range map[string]instance{"a": a, "b": b} {
			if _, err := verify(t, inst.svc, alice, opRead); !errors.Is(err, lpmac.ErrRevoked) {
				t.Errorf("instance %s: logged-out macaroon: %v, want ErrRevoked", name, err)
			}
			// Only that macaroon: the user's other session stays.
			if _, err := verify(t, inst.svc, other, opRead); err != nil {
				t.Errorf("instance %s: other session of the same user: %v", name, err)
			}
		}
		// An attenuation shares the id, so it is logged out too.
		narrowed := alice.Clone()
		if err := narrowed.AddCaveat(ctx, lpmac.AllowCaveat("read"), nil, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := verify(t, b.svc, narrowed, opRead); !errors.Is(err, lpmac.ErrRevoked) {
			t.Errorf("attenuation of a logged-out macaroon: %v, want ErrRevoked", err)
		}
	})

	t.Run("revoke_id", func(t *testing.T) {
		_, a, b := setup(t)
		alice := mint(t, a.svc, "alice")
		g, err := verify(t, a.svc, alice, opRead)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.svc.RevokeID(ctx, g.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := verify(t, b.svc, alice, opRead); !errors.Is(err, lpmac.ErrRevoked) {
			t.Errorf("revoked id on b: %v, want ErrRevoked", err)
		}
	})

	t.Run("revoke_user", func(t *testing.T) {
		clock, a, b := setup(t)
		alice1, alice2, bob := mint(t, a.svc, "alice"), mint(t, b.svc, "alice"), mint(t, a.svc, "bob")
		clock.Advance(time.Second)
		if err := b.svc.RevokeUser(ctx, "alice", time.Time{}); err != nil {
			t.Fatal(err)
		}
		for _, m := range []*bakery.Macaroon{alice1, alice2} {
			for name, inst := range map[string]instance{"a": a, "b": b} {
				if _, err := verify(t, inst.svc, m, opRead); !errors.Is(err, lpmac.ErrRevoked) {
					t.Errorf("instance %s: alice's macaroon after RevokeUser: %v, want ErrRevoked", name, err)
				}
			}
		}
		if _, err := verify(t, a.svc, bob, opRead); err != nil {
			t.Errorf("bob after alice was revoked: %v", err)
		}
		// A login after the cut-off works.
		clock.Advance(time.Second)
		if _, err := verify(t, a.svc, mint(t, a.svc, "alice"), opRead); err != nil {
			t.Errorf("alice's new login: %v", err)
		}
		// An earlier cut-off never lowers a later one.
		if err := a.svc.RevokeUser(ctx, "alice", clock.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := verify(t, b.svc, alice1, opRead); !errors.Is(err, lpmac.ErrRevoked) {
			t.Errorf("after an earlier cut-off: %v, want ErrRevoked", err)
		}
	})

	t.Run("revoke_all", func(t *testing.T) {
		clock, a, b := setup(t)
		alice, bob := mint(t, a.svc, "alice"), mint(t, b.svc, "bob")
		clock.Advance(time.Second)
		if err := a.svc.RevokeAll(ctx, time.Time{}); err != nil {
			t.Fatal(err)
		}
		for _, m := range []*bakery.Macaroon{alice, bob} {
			if _, err := verify(t, b.svc, m, opRead); !errors.Is(err, lpmac.ErrRevoked) {
				t.Errorf("after RevokeAll: %v, want ErrRevoked", err)
			}
		}
		clock.Advance(time.Second)
		if _, err := verify(t, b.svc, mint(t, a.svc, "carol"), opRead); err != nil {
			t.Errorf("login after RevokeAll: %v", err)
		}
	})

	t.Run("expiry_forgets", func(t *testing.T) {
		clock, a, _ := setup(t)
		if err := a.store.Revoke(ctx, lpmac.Revocation{ID: strings.Repeat("ab", 32), Expires: clock.Now().Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if ok, err := a.store.Revoked(ctx, strings.Repeat("ab", 32), "x", time.Time{}); err != nil || !ok {
			t.Fatalf("before expiry: %v, %v", ok, err)
		}
		clock.Advance(time.Minute)
		if ok, err := a.store.Revoked(ctx, strings.Repeat("ab", 32), "x", time.Time{}); err != nil || ok {
			t.Fatalf("after expiry: %v, %v; want forgotten", ok, err)
		}
	})

	t.Run("hostile", func(t *testing.T) {
		clock, a, _ := setup(t)
		now := clock.Now()
		exp := now.Add(time.Hour)
		for _, c := range []struct {
			name string
			r    lpmac.Revocation
		}{
			{"empty", lpmac.Revocation{}},
			{"short id", lpmac.Revocation{ID: "abc", Expires: exp}},
			{"upper-case id", lpmac.Revocation{ID: strings.Repeat("AB", 32), Expires: exp}},
			{"id with before", lpmac.Revocation{ID: strings.Repeat("ab", 32), Before: now, Expires: exp}},
			{"id and user", lpmac.Revocation{ID: strings.Repeat("ab", 32), User: "alice", Expires: exp}},
			{"user and all", lpmac.Revocation{User: "alice", All: true, Before: now, Expires: exp}},
			{"user without before", lpmac.Revocation{User: "alice", Expires: exp}},
			{"control character user", lpmac.Revocation{User: "al\nice", Before: now, Expires: exp}},
			{"oversized user", lpmac.Revocation{User: strings.Repeat("a", 257), Before: now, Expires: exp}},
			{"no expiry", lpmac.Revocation{All: true, Before: now}},
		} {
			if err := a.store.Revoke(ctx, c.r); !errors.Is(err, lpmac.ErrInvalidRevocation) {
				t.Errorf("%s: %v, want ErrInvalidRevocation", c.name, err)
			}
		}
		// Nothing was recorded.
		if ok, err := a.store.Revoked(ctx, strings.Repeat("ab", 32), "alice", time.Time{}); err != nil || ok {
			t.Errorf("after refused revocations: revoked=%v, %v", ok, err)
		}
		// Service-level refusals.
		if err := a.svc.RevokeUser(ctx, "alice", now.Add(time.Minute)); !errors.Is(err, lpmac.ErrInvalidRevocation) {
			t.Errorf("future cut-off: %v", err)
		}
		if err := a.svc.RevokeID(ctx, "not-hex"); !errors.Is(err, lpmac.ErrInvalidRevocation) {
			t.Errorf("bad id: %v", err)
		}
		if err := a.svc.Logout(ctx, &lpmac.Grant{}); !errors.Is(err, lpmac.ErrInvalidRevocation) {
			t.Errorf("logout of a resource grant: %v", err)
		}
		if ok, err := a.store.Revoked(ctx, "", "alice", time.Time{}); err != nil || ok {
			t.Errorf("after refused service revocations: revoked=%v, %v", ok, err)
		}
	})
}

// Package rootkeytest is the conformance suite every macaroon.RootKeyStore
// passes: the memory store in package macaroon's tests and the PostgreSQL
// store in macaroonpg's.
package rootkeytest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"
	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery/checkers"
	"gopkg.in/macaroon.v2"

	lpmac "github.com/lpsec/lpsec/macaroon"
	"github.com/lpsec/lpsec/macaroon/internal/core"
)

// Clock is a settable clock for root-key tests: no test sleeps.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

func NewClock() *Clock {
	return &Clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Policy is short enough to read, long enough to be realistic: the options
// every store under test is given (with the clock c).
func Policy(c *Clock) []lpmac.Option {
	return []lpmac.Option{lpmac.WithRotationPeriod(24 * time.Hour), lpmac.WithMaxTTL(240 * time.Hour), lpmac.WithClock(c.Now)}
}

// Factory makes a fresh, empty store for one subtest with the given options.
type Factory func(t *testing.T, opts ...lpmac.Option) lpmac.RootKeyStore

// Run is the behaviour every RootKeyStore must have.
func Run(t *testing.T, newStore Factory) {
	ctx := context.Background()

	t.Run("MintThenGet", func(t *testing.T) {
		clk := NewClock()
		s := newStore(t, Policy(clk)...)
		key, id := MustRootKey(t, s)
		if len(key) != core.RootKeyLen || len(id) != core.RootKeyIDLen {
			t.Fatalf("key %d bytes, id %d bytes; want %d, %d", len(key), len(id), core.RootKeyLen, core.RootKeyIDLen)
		}
		if bytes.Contains(key, id) || bytes.Contains(id, key[:8]) {
			t.Fatal("id and key share bytes")
		}
		got, err := s.Get(ctx, id)
		if err != nil || !bytes.Equal(got, key) {
			t.Fatalf("Get = %x, %v; want the minted key", got, err)
		}
		key2, id2 := MustRootKey(t, s)
		if !bytes.Equal(id2, id) || !bytes.Equal(key2, key) {
			t.Fatal("RootKey changed key within the rotation period")
		}
	})

	t.Run("RotatesAfterPeriodAndKeepsOldKey", func(t *testing.T) {
		clk := NewClock()
		s := newStore(t, Policy(clk)...)
		key1, id1 := MustRootKey(t, s)
		clk.Advance(24*time.Hour - time.Second)
		if _, id := MustRootKey(t, s); !bytes.Equal(id, id1) {
			t.Fatal("rotated before the period ended")
		}
		clk.Advance(time.Second)
		key2, id2 := MustRootKey(t, s)
		if bytes.Equal(id2, id1) || bytes.Equal(key2, key1) {
			t.Fatal("did not rotate after RotationPeriod")
		}
		if got, err := s.Get(ctx, id1); err != nil || !bytes.Equal(got, key1) {
			t.Fatalf("old key after rotation: Get = %v; want it kept for verification", err)
		}
	})

	t.Run("ExpiresMaxTTLAfterLastMint", func(t *testing.T) {
		clk := NewClock()
		s := newStore(t, Policy(clk)...)
		key1, id1 := MustRootKey(t, s)
		// A macaroon minted at the last instant of the rotation period with
		// the full MaxTTL must still verify until it expires.
		clk.Advance(24*time.Hour + 240*time.Hour - time.Second)
		if got, err := s.Get(ctx, id1); err != nil || !bytes.Equal(got, key1) {
			t.Fatalf("key dropped before created+RotationPeriod+MaxTTL: %v", err)
		}
		clk.Advance(time.Second)
		if _, err := s.Get(ctx, id1); err != bakery.ErrNotFound {
			t.Fatalf("expired key: Get err = %v; want bakery.ErrNotFound itself", err)
		}
		// Minting now purges it and uses a new key.
		if _, id := MustRootKey(t, s); bytes.Equal(id, id1) {
			t.Fatal("minted with an expired key")
		}
		if _, err := s.Get(ctx, id1); err != bakery.ErrNotFound {
			t.Fatalf("purged key: Get err = %v; want bakery.ErrNotFound", err)
		}
	})

	t.Run("RevokeCurrentKey", func(t *testing.T) {
		clk := NewClock()
		s := newStore(t, Policy(clk)...)
		_, id := MustRootKey(t, s)
		if err := s.Revoke(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, id); err != bakery.ErrNotFound {
			t.Fatalf("revoked key: Get err = %v; want bakery.ErrNotFound", err)
		}
		if _, id2 := MustRootKey(t, s); bytes.Equal(id2, id) {
			t.Fatal("RootKey returned a revoked key")
		}
		if err := s.Revoke(ctx, id); err != nil {
			t.Fatalf("revoking twice: %v; want idempotent success", err)
		}
	})

	t.Run("RevokeOldKeyKeepsCurrent", func(t *testing.T) {
		clk := NewClock()
		s := newStore(t, Policy(clk)...)
		_, old := MustRootKey(t, s)
		clk.Advance(25 * time.Hour)
		key, cur := MustRootKey(t, s)
		if err := s.Revoke(ctx, old); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, old); err != bakery.ErrNotFound {
			t.Fatalf("revoked key: %v", err)
		}
		if got, err := s.Get(ctx, cur); err != nil || !bytes.Equal(got, key) {
			t.Fatalf("current key after revoking another: %v", err)
		}
	})

	t.Run("RevokeMalformedID", func(t *testing.T) {
		s := newStore(t, Policy(NewClock())...)
		for _, id := range [][]byte{nil, {}, []byte("0"), make([]byte, 17)} {
			if err := s.Revoke(ctx, id); !errors.Is(err, bakery.ErrNotFound) {
				t.Errorf("Revoke(%d bytes) = %v; want bakery.ErrNotFound", len(id), err)
			}
		}
	})

	t.Run("ReturnedSlicesAreCopies", func(t *testing.T) {
		s := newStore(t, Policy(NewClock())...)
		key, id := MustRootKey(t, s)
		want := bytes.Clone(key)
		clear(key)
		got, err := s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		clear(got)
		got, _ = s.Get(ctx, id)
		if !bytes.Equal(got, want) {
			t.Fatal("mutating a returned key changed the stored key")
		}
	})

	t.Run("HostileGetIDs", func(t *testing.T) {
		s := newStore(t, Policy(NewClock())...)
		key, id := MustRootKey(t, s)
		flipped := bytes.Clone(id)
		flipped[0] ^= 1
		random := make([]byte, core.RootKeyIDLen)
		_, _ = rand.Read(random)
		for _, tc := range []struct {
			name string
			id   []byte
		}{
			{"nil", nil},
			{"empty", []byte{}},
			{"bakery_memstore_id_0", []byte("0")},
			{"one_byte_short", id[:core.RootKeyIDLen-1]},
			{"one_byte_long", append(bytes.Clone(id), 0)},
			{"huge_1MiB", bytes.Repeat(id, 1<<16)},
			{"random_16_bytes", random},
			{"all_zero", make([]byte, core.RootKeyIDLen)},
			{"bit_flipped_real_id", flipped},
			{"hex_of_real_id", []byte(hex.EncodeToString(id))},
			{"key_bytes_as_id", key[:core.RootKeyIDLen]},
			{"sql_injection", []byte("' OR 1=1; --    ")},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.Get(ctx, tc.id)
				if err != bakery.ErrNotFound || got != nil {
					t.Fatalf("Get = %x, %v; want nil, bakery.ErrNotFound itself", got, err)
				}
			})
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := newStore(t, Policy(NewClock())...)
		var wg sync.WaitGroup
		ids := make(chan string, 64)
		for range 8 {
			wg.Go(func() {
				for range 8 {
					key, id, err := s.RootKey(ctx)
					if err != nil {
						t.Error(err)
						return
					}
					if got, err := s.Get(ctx, id); err != nil || !bytes.Equal(got, key) {
						t.Errorf("Get after RootKey: %v", err)
					}
					ids <- string(id)
				}
			})
		}
		wg.Wait()
		close(ids)
		seen := map[string]bool{}
		for id := range ids {
			seen[id] = true
		}
		if len(seen) != 1 {
			t.Fatalf("concurrent minting used %d keys; want 1", len(seen))
		}
	})

	t.Run("BakeryMintAndVerify", func(t *testing.T) {
		s := newStore(t, Policy(NewClock())...)
		b := bakery.New(bakery.BakeryParams{RootKeyStore: s, Location: "lpsec-test"})
		op := bakery.Op{Entity: "patches", Action: "read"}
		m, err := b.Oven.NewMacaroon(ctx, bakery.LatestVersion,
			[]checkers.Caveat{checkers.TimeBeforeCaveat(time.Now().Add(time.Hour))}, op)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Checker.Auth(macaroon.Slice{m.M()}).Allow(ctx, op); err != nil {
			t.Fatalf("freshly minted macaroon rejected: %v", err)
		}
		// Revocation through the store invalidates the macaroon.
		_, id := MustRootKey(t, s)
		if err := s.Revoke(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Checker.Auth(macaroon.Slice{m.M()}).Allow(ctx, op); err == nil {
			t.Fatal("macaroon of a revoked root key accepted")
		}
	})
}

func MustRootKey(t testing.TB, s lpmac.RootKeyStore) (key, id []byte) {
	t.Helper()
	key, id, err := s.RootKey(context.Background())
	if err != nil {
		t.Fatalf("RootKey: %v", err)
	}
	return key, id
}

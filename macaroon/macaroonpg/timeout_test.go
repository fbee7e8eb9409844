package macaroonpg

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lpsec/lpsec/internal/pgtest"
	lpmac "github.com/lpsec/lpsec/macaroon"
)

// frozenBound is the store timeout these tests set, and frozenMargin what
// they allow on top of it for scheduling on a loaded machine: generous,
// as the property is "bounded", not "fast".
const (
	frozenBound  = 500 * time.Millisecond
	frozenMargin = 2 * time.Second
)

// bounded is pgtest.Bounded with this file's bound and margin.
func bounded(t *testing.T, what string, call func(context.Context) error) (time.Duration, error) {
	t.Helper()
	return pgtest.Bounded(t, what, frozenBound, frozenMargin, call)
}

// TestPostgresFrozenAnswersWithinTimeout freezes a real cluster with SIGSTOP
// (postmaster and backends) under both stores: every call that reaches the
// database fails with ErrUnavailable within the store timeout, including
// concurrent revocation checks queueing behind one reload, and the stores
// work again after SIGCONT. Without the timeout each call waits for as long
// as the freeze; without the shared failure, the queued checks would wait
// one timeout each in turn.
func TestPostgresFrozenAnswersWithinTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own PostgreSQL cluster")
	}
	ctx := context.Background()
	cl := pgtest.StartCluster(t)
	keys := newPGRootKeyStore(t, cl.URL, testKEK(t), lpmac.WithStoreTimeout(frozenBound), lpmac.WithoutRootKeyCache())
	revs := newPGRevocationStore(t, cl.URL, lpmac.WithStoreTimeout(frozenBound), lpmac.WithCacheTTL(time.Nanosecond))
	_, id, err := keys.RootKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rev := lpmac.Revocation{ID: strings.Repeat("a1", 32), Expires: time.Now().Add(time.Hour)}
	if err := revs.Revoke(ctx, rev); err != nil {
		t.Fatal(err)
	}

	cl.Freeze()
	var worst time.Duration
	for _, c := range []struct {
		name string
		call func(context.Context) error
	}{
		{"RootKeyStore.RootKey", func(ctx context.Context) error { _, _, err := keys.RootKey(ctx); return err }},
		{"RootKeyStore.Get", func(ctx context.Context) error { _, err := keys.Get(ctx, id); return err }},
		{"RootKeyStore.Revoke", func(ctx context.Context) error { return keys.Revoke(ctx, id) }},
		{"RevocationStore.Revoke", func(ctx context.Context) error { return revs.Revoke(ctx, rev) }},
		{"RevocationStore.Revoked", func(ctx context.Context) error {
			_, err := revs.Revoked(ctx, strings.Repeat("b2", 32), "u", time.Now())
			return err
		}},
	} {
		d, err := bounded(t, c.name, c.call)
		if !errors.Is(err, lpmac.ErrUnavailable) {
			t.Errorf("%s with the database frozen: %v, want macaroon.ErrUnavailable", c.name, err)
		}
		worst = max(worst, d)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range 8 {
		wg.Go(func() {
			start := time.Now()
			revoked, err := revs.Revoked(ctx, strings.Repeat("a1", 32), "u", time.Now())
			d := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			worst = max(worst, d)
			if !errors.Is(err, lpmac.ErrUnavailable) || revoked {
				t.Errorf("concurrent Revoked with the database frozen: %v, %v; want false, macaroon.ErrUnavailable", revoked, err)
			}
		})
	}
	wg.Wait()
	if worst > frozenBound+frozenMargin {
		t.Errorf("slowest call with the database frozen took %v; bound %v + margin %v", worst, frozenBound, frozenMargin)
	}
	t.Logf("slowest call with the database frozen: %v (store timeout %v)", worst, frozenBound)

	cl.Thaw()
	var got []byte
	for i := 0; ; i++ {
		if got, err = keys.Get(ctx, id); err == nil {
			break
		}
		if i == 40 {
			t.Fatalf("root-key store did not recover after thaw: %v", err)
		}
	}
	if len(got) == 0 {
		t.Fatal("Get after thaw returned no key")
	}
	for i := 0; ; i++ {
		revoked, err := revs.Revoked(ctx, strings.Repeat("a1", 32), "u", time.Now())
		if err == nil {
			if !revoked {
				t.Fatal("revocation lost across the freeze")
			}
			break
		}
		if i == 40 {
			t.Fatalf("revocation store did not recover after thaw: %v", err)
		}
	}
}

// TestStoreTimeoutOption: WithStoreTimeout is for the PostgreSQL stores
// only and must be positive; misuse names the option.
func TestStoreTimeoutOption(t *testing.T) {
	kek := testKEK(t)
	for _, tc := range []struct {
		name string
		make func() error
		want string
	}{
		{"zero", func() error { _, err := NewRootKeyStore(&sql.DB{}, kek, lpmac.WithStoreTimeout(0)); return err }, "WithStoreTimeout"},
		{"negative", func() error { _, err := NewRevocationStore(&sql.DB{}, lpmac.WithStoreTimeout(-1)); return err }, "WithStoreTimeout"},
		{"memory root keys", func() error { _, err := lpmac.NewMemoryRootKeyStore(lpmac.WithStoreTimeout(time.Second)); return err },
			"WithStoreTimeout does not apply to NewMemoryRootKeyStore"},
		{"memory revocations", func() error {
			_, err := lpmac.NewMemoryRevocationStore(lpmac.WithStoreTimeout(time.Second))
			return err
		}, "WithStoreTimeout does not apply to NewMemoryRevocationStore"},
	} {
		err := tc.make()
		if !errors.Is(err, lpmac.ErrInvalidOption) || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want macaroon.ErrInvalidOption naming %q", tc.name, err, tc.want)
		}
	}
}

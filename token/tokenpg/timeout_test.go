package tokenpg

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lpsec/lpsec/internal/pgtest"
	"github.com/lpsec/lpsec/token"
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

// TestPostgresFrozenAnswersWithinTimeout freezes a real cluster with
// SIGSTOP (the postmaster and every backend: connections stay open, the
// kernel still accepts new ones, nothing answers), as a partition would.
// Every Store call must fail with token.ErrUnavailable within the store
// timeout, on pooled connections and on new ones, with more concurrent
// callers than the pool has connections; after SIGCONT the same store works
// again. Without the timeout each call waits for as long as the freeze.
func TestPostgresFrozenAnswersWithinTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own PostgreSQL cluster")
	}
	c := pgtest.StartCluster(t)
	s, db := openPG(t, c.URL, token.WithStoreTimeout(frozenBound))
	db.SetMaxOpenConns(4)
	ctx := context.Background()
	reg, regRec, err := s.IssueRegistration(ctx, token.Registration{Tier: "t", Name: "n", Uses: 5})
	if err != nil {
		t.Fatal(err)
	}
	mtok, m, err := s.Register(ctx, reg, "m")
	if err != nil {
		t.Fatal(err)
	}
	stok, sy, err := s.IssueSync(ctx, token.Sync{Tier: "t", Name: "n"})
	if err != nil {
		t.Fatal(err)
	}

	c.Freeze()
	calls := []struct {
		name string
		call func(context.Context) error
	}{
		{"AuthenticateMachine", func(ctx context.Context) error { _, err := s.AuthenticateMachine(ctx, mtok); return err }},
		{"AuthenticateSync", func(ctx context.Context) error { _, err := s.AuthenticateSync(ctx, stok); return err }},
		{"AuthenticateRegistration", func(ctx context.Context) error { _, err := s.AuthenticateRegistration(ctx, reg); return err }},
		{"Register", func(ctx context.Context) error { _, _, err := s.Register(ctx, reg, "m2"); return err }},
		{"IssueRegistration", func(ctx context.Context) error {
			_, _, err := s.IssueRegistration(ctx, token.Registration{Tier: "t", Name: "n", Uses: 1})
			return err
		}},
		{"IssueSync", func(ctx context.Context) error {
			_, _, err := s.IssueSync(ctx, token.Sync{Tier: "t", Name: "n"})
			return err
		}},
		{"RevokeRegistration", func(ctx context.Context) error { return s.RevokeRegistration(ctx, regRec.ID) }},
		{"RevokeMachine", func(ctx context.Context) error { return s.RevokeMachine(ctx, m.ID) }},
		{"RevokeSync", func(ctx context.Context) error { return s.RevokeSync(ctx, sy.ID) }},
		{"ListRegistrations", func(ctx context.Context) error { _, err := s.ListRegistrations(ctx); return err }},
		{"ListMachines", func(ctx context.Context) error { _, _, err := s.ListMachines(ctx, "", 10); return err }},
		{"ReleaseMachine", func(ctx context.Context) error { return s.ReleaseMachine(ctx, "m") }},
		{"PruneMachines", func(ctx context.Context) error { _, err := s.PruneMachines(ctx); return err }},
		{"ListSyncs", func(ctx context.Context) error { _, err := s.ListSyncs(ctx); return err }},
	}
	var worst time.Duration
	for _, c := range calls {
		d, err := bounded(t, c.name, c.call)
		if !errors.Is(err, token.ErrUnavailable) {
			t.Errorf("%s with the database frozen: %v, want token.ErrUnavailable", c.name, err)
		}
		worst = max(worst, d)
	}
	// More callers than connections: those queueing for the pool are bound
	// by the same timeout.
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range 12 {
		wg.Go(func() {
			start := time.Now()
			_, err := s.AuthenticateMachine(ctx, mtok)
			d := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			worst = max(worst, d)
			if !errors.Is(err, token.ErrUnavailable) {
				t.Errorf("concurrent AuthenticateMachine with the database frozen: %v, want token.ErrUnavailable", err)
			}
		})
	}
	wg.Wait()
	if worst > frozenBound+frozenMargin {
		t.Errorf("slowest call with the database frozen took %v; bound %v + margin %v", worst, frozenBound, frozenMargin)
	}
	t.Logf("slowest call with the database frozen: %v (store timeout %v)", worst, frozenBound)

	c.Thaw()
	for i := 0; ; i++ {
		got, err := s.AuthenticateMachine(ctx, mtok)
		if err == nil {
			if got.Machine != "m" {
				t.Fatalf("after thaw: record %+v", got)
			}
			break
		}
		wantErr(t, "AuthenticateMachine just after thaw", err, token.ErrUnavailable)
		if i == 40 {
			t.Fatalf("store did not recover after thaw: %v", err)
		}
	}
	if _, err := s.AuthenticateSync(ctx, stok); err != nil {
		t.Fatalf("AuthenticateSync after thaw: %v", err)
	}
}

// TestStoreTimeoutOption: WithStoreTimeout is tokenpg's alone and must be
// positive; misuse names the option.
func TestStoreTimeoutOption(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func() error
		want string
	}{
		{"zero", func() error { _, err := NewStore(&sql.DB{}, token.WithStoreTimeout(0)); return err }, "WithStoreTimeout"},
		{"negative", func() error { _, err := NewStore(&sql.DB{}, token.WithStoreTimeout(-time.Second)); return err }, "WithStoreTimeout"},
		{"memory store", func() error { _, err := token.NewMemoryStore(token.WithStoreTimeout(time.Second)); return err },
			"WithStoreTimeout does not apply to NewMemoryStore"},
		{"middleware", func() error {
			st, _ := token.NewMemoryStore()
			_, err := token.NewMiddleware(st, token.WithStoreTimeout(time.Second))
			return err
		}, "WithStoreTimeout does not apply to NewMiddleware"},
	} {
		err := tc.make()
		if !errors.Is(err, token.ErrInvalidOption) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want token.ErrInvalidOption naming %q", tc.name, err, tc.want)
		}
	}
	if _, err := NewStore(&sql.DB{}, token.WithStoreTimeout(time.Second)); err != nil {
		t.Errorf("NewStore(WithStoreTimeout(1s)): %v", err)
	}
}

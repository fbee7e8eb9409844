package macaroonpg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lpsec/lpsec/internal/pgtest"
	lpmac "github.com/lpsec/lpsec/macaroon"
)

// follow starts s.Follow, waits until it is live and returns its events
// ("live", "notified:" and the payload, "heartbeat", "lost").
func follow(t *testing.T, s *RevocationStore) <-chan string {
	t.Helper()
	events := make(chan string, 1<<16)
	s.follower.Observe(func(e string) { events <- e })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Follow(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Follow returned %v, want context.Canceled", err)
		}
	})
	awaitEvent(t, events, "live")
	return events
}

func awaitEvent(t *testing.T, events <-chan string, want string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case e := <-events:
			if e == want {
				return
			}
		case <-deadline:
			t.Fatalf("no %q event within 20s", want)
		}
	}
}

var marker atomic.Int64

// caughtUp returns once the follower has seen every change committed
// before the call (notifications arrive in commit order).
func caughtUp(t *testing.T, db *sql.DB, events <-chan string) {
	t.Helper()
	m := fmt.Sprintf("marker-%d", marker.Add(1))
	if _, err := db.Exec(`SELECT pg_notify($1, $2)`, revocationsChannel, m); err != nil {
		t.Fatal(err)
	}
	awaitEvent(t, events, "notified:"+m)
}

// quietRevoke records a revocation of id that notifies nobody.
func quietRevoke(t *testing.T, db *sql.DB, id string) {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for _, q := range []string{
		`ALTER TABLE ` + revocationTable + ` DISABLE TRIGGER USER`,
		`INSERT INTO ` + revocationTable + ` (kind, key, expires) VALUES ('id', '` + id + `', now() + interval '1 hour')`,
		`ALTER TABLE ` + revocationTable + ` ENABLE TRIGGER USER`,
	} {
		if _, err := tx.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// Two instances on one database, a caching (WithCacheTTL, its clock held
// still) and following, b uncached: a refuses its own revocations at once
// and b's once notified, whatever its CacheTTL; it answers from memory in
// between (an unnotified revocation is not seen); once notifications stop
// the CacheTTL rule applies again.
func TestRevocationPostgresFollow(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	clock := &fakeNow{t: time.Now()}
	a := newPGRevocationStore(t, url, lpmac.WithCacheTTL(time.Minute), lpmac.WithClock(clock.now))
	b := newPGRevocationStore(t, url, lpmac.WithoutRevocationCache())
	db := a.db
	events := follow(t, a)
	issued := time.Now().Add(-time.Minute)
	expires := time.Now().Add(time.Hour)
	revoked := func(s *RevocationStore, id string) bool {
		t.Helper()
		r, err := s.Revoked(ctx, id, "alice", issued)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if revoked(a, hexID(1)) {
		t.Fatal("nothing revoked yet")
	}
	if err := a.Revoke(ctx, lpmac.Revocation{ID: hexID(1), Expires: expires}); err != nil {
		t.Fatal(err)
	}
	if !revoked(a, hexID(1)) {
		t.Fatal("a does not refuse its own revocation at once")
	}
	if err := b.Revoke(ctx, lpmac.Revocation{ID: hexID(2), Expires: expires}); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, db, events)
	if !revoked(a, hexID(2)) {
		t.Fatal("a does not refuse b's revocation once notified (the clock has not moved: CacheTTL did not expire)")
	}
	if err := b.Revoke(ctx, lpmac.Revocation{User: "alice", Before: time.Now(), Expires: expires}); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, db, events)
	if !revoked(a, hexID(9)) {
		t.Fatal("a does not refuse after b revoked alice's logins")
	}

	// From memory: a revocation that notifies nobody is not seen by a,
	// and is by b, which asks the database.
	quietRevoke(t, db, hexID(3))
	if revokedBob(t, a, hexID(3), issued) {
		t.Fatal("a saw an unnotified revocation: it is not answering from its snapshot")
	}
	if !revokedBob(t, b, hexID(3), issued) {
		t.Fatal("b (not following, uncached) does not see the revocation in the table")
	}

	// Notifications stop: the CacheTTL rule again, from the last load.
	var n int
	if err := db.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'lpsec-pgnotify'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminating the listener: %d backends, %v", n, err)
	}
	awaitEvent(t, events, "lost")
	// (Within CacheTTL a may now answer from its last snapshot or, if it
	// already follows again, reload: both are within the bound, and the
	// TTL rule itself is TestRevocationPostgresCacheBound's.)
	clock.add(time.Minute)
	if !revokedBob(t, a, hexID(3), issued) {
		t.Fatal("not following, CacheTTL passed: a does not see the table")
	}
	awaitEvent(t, events, "live")
	quietRevoke(t, db, hexID(4))
	if !revokedBob(t, a, hexID(4), issued) {
		t.Fatal("following again: a answered from a snapshot of before the gap")
	}
}

// WithoutRevocationCache keeps every check a query, Follow or not.
func TestRevocationPostgresFollowUncached(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	a := newPGRevocationStore(t, url, lpmac.WithoutRevocationCache())
	follow(t, a)
	issued := time.Now().Add(-time.Minute)
	if r, err := a.Revoked(ctx, hexID(1), "bob", issued); r || err != nil {
		t.Fatal(r, err)
	}
	quietRevoke(t, a.db, hexID(1))
	if !revokedBob(t, a, hexID(1), issued) {
		t.Fatal("uncached store answered from memory while following")
	}
}

type fakeNow struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeNow) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeNow) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestRevocationPostgresSchemaNotifies(t *testing.T) {
	url := pgtest.Database(t)
	s := newPGRevocationStore(t, url)
	var n int
	if err := s.db.QueryRow(`SELECT count(*) FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal`, revocationTable).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d triggers on %s, %v; want 2 (changes and truncation)", n, revocationTable, err)
	}
}

func hexID(n int) string { return fmt.Sprintf("%064x", n) }

// revokedBob is s.Revoked for one of bob's macaroons; an error fails the
// test rather than read as "not revoked".
func revokedBob(t *testing.T, s *RevocationStore, id string, issued time.Time) bool {
	t.Helper()
	r, err := s.Revoked(context.Background(), id, "bob", issued)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

package macaroonpg

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lpsec/lpsec/internal/pgnotify/pgnotifytest"
	"github.com/lpsec/lpsec/internal/pgtest"
	lpmac "github.com/lpsec/lpsec/macaroon"
)

// follow starts s.Follow, waits until it is live and returns its events;
// Follow ends with the test.
func follow(t *testing.T, s *RevocationStore) <-chan string {
	t.Helper()
	events := pgnotifytest.Start(t, s.follower, s.Follow)
	pgnotifytest.Await(t, events, "live")
	return events
}

var awaitEvent = pgnotifytest.Await

// caughtUp returns once the follower has seen every change committed
// before the call.
func caughtUp(t *testing.T, db *sql.DB, events <-chan string) {
	t.Helper()
	pgnotifytest.CaughtUp(t, db, revocationsChannel, events)
}

// quietRevoke records a revocation of id that notifies nobody.
func quietRevoke(t *testing.T, db *sql.DB, id string) {
	t.Helper()
	pgnotifytest.Quietly(t, db, revocationTable,
		`INSERT INTO `+revocationTable+` (kind, key, expires) VALUES ('id', '`+id+`', now() + interval '1 hour')`)
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
	if n := pgnotifytest.TerminateFollowers(t, db); n != 1 {
		t.Fatalf("terminated %d follower connections, want 1", n)
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

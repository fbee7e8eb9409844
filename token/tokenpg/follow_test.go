package tokenpg

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"testing"

	"github.com/lpsec/lpsec/internal/pgnotify/pgnotifytest"
	"github.com/lpsec/lpsec/internal/pgtest"
	"github.com/lpsec/lpsec/token"
)

// following starts s.Follow, waits until it is live and returns its
// events; Follow ends with the test.
func following(t *testing.T, s *Store) <-chan string {
	t.Helper()
	events := pgnotifytest.Start(t, s.follower, s.Follow)
	pgnotifytest.Await(t, events, "live")
	return events
}

var awaitEvent = pgnotifytest.Await

// caughtUp returns once the follower has seen every change committed
// before the call, with the notifications it saw meanwhile.
func caughtUp(t *testing.T, db *sql.DB, events <-chan string) []string {
	t.Helper()
	return pgnotifytest.CaughtUp(t, db, changesChannel, events)
}

func names[T any](l []T, name func(T) string) []string {
	out := []string{}
	for _, v := range l {
		out = append(out, name(v))
	}
	return out
}

func regNames(t *testing.T, s *Store) []string {
	t.Helper()
	l, err := s.ListRegistrations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return names(l, func(r token.Registration) string { return r.Name })
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Two instances on one database, a following and b not: a lists its own
// changes at once, b's once notified, and a change that bypasses the
// triggers shows that a really answers from memory.
func TestFollowKeepsListingsFresh(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	a, db := openPG(t, url)
	b, _ := openPG(t, url)
	events := following(t, a)

	if got := regNames(t, a); len(got) != 0 {
		t.Fatalf("empty store lists %v", got)
	}
	// a's own change: listed at once, no notification awaited.
	regTok, _, err := a.IssueRegistration(ctx, token.Registration{Tier: "t", Name: "by-a", Uses: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := regNames(t, a); !equal(got, []string{"by-a"}) {
		t.Fatalf("a lists %v after its own issue", got)
	}
	// b's change: listed by a once the notification arrives.
	if _, _, err := b.IssueRegistration(ctx, token.Registration{Tier: "t", Name: "by-b", Uses: 1}); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, db, events)
	if got := regNames(t, a); !equal(got, []string{"by-a", "by-b"}) {
		t.Fatalf("a lists %v after b's issue was notified", got)
	}
	// A registration through b takes a use of a's token without a
	// notification (registrations must not queue on NOTIFY's lock): a
	// lists the use within listingMaxAge, not at once.
	if _, _, err := b.Register(ctx, regTok, "m1"); err != nil {
		t.Fatal(err)
	}
	if seen := caughtUp(t, db, events); len(seen) != 0 {
		t.Fatalf("a registration notified %v; it must notify nothing", seen)
	}
	l, err := a.ListRegistrations(ctx)
	if err != nil || len(l) != 2 || l[0].UsesLeft != 2 {
		t.Fatalf("a lists %+v, %v; want its copy (by-a with 2 uses left)", l, err)
	}
	// A registration through a itself is listed by a at once.
	if _, _, err := a.Register(ctx, regTok, "m2"); err != nil {
		t.Fatal(err)
	}
	l, err = a.ListRegistrations(ctx)
	if err != nil || len(l) != 2 || l[0].UsesLeft != 0 {
		t.Fatalf("a lists %+v, %v after its own registration; want by-a with 0 uses left", l, err)
	}
	// Revocations and syncs, through b.
	if err := b.RevokeRegistration(ctx, l[1].ID); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, db, events)
	if l, _ := a.ListRegistrations(ctx); !l[1].Revoked {
		t.Fatalf("a lists %+v after b revoked by-b", l[1])
	}
	if _, _, err := b.IssueSync(ctx, token.Sync{Tier: "t", Name: "sync-b"}); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, db, events)
	if s, err := a.ListSyncs(ctx); err != nil || len(s) != 1 || s[0].Name != "sync-b" {
		t.Fatalf("a lists syncs %+v, %v after b issued one", s, err)
	}

	// Proof that a answers from memory: a change that notifies nobody is
	// not seen by a, and is seen by b, which reads the table.
	if got := regNames(t, a); !equal(got, []string{"by-a", "by-b"}) { // the copy, read again after the sync's notification
		t.Fatalf("a lists %v", got)
	}
	quietRename(t, db, "by-a", "renamed")
	if got := regNames(t, a); !equal(got, []string{"by-a", "by-b"}) {
		t.Fatalf("a lists %v; want its copy, untouched by an unnotified change", got)
	}
	if got := regNames(t, b); !equal(got, []string{"renamed", "by-b"}) {
		t.Fatalf("b (not following) lists %v; want the table", got)
	}
	// A hand edit in psql with the triggers on is notified like any other.
	if _, err := db.Exec(`UPDATE lpsec_token_registration SET name = 'by-hand' WHERE name = 'by-b'`); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, db, events)
	if got := regNames(t, a); !equal(got, []string{"renamed", "by-hand"}) {
		t.Fatalf("a lists %v after a notified hand edit", got)
	}

	// What a hands out is its caller's: changing it changes no later answer.
	l, _ = a.ListRegistrations(ctx)
	l[0].Name = "scribbled"
	if got := regNames(t, a); got[0] != "renamed" {
		t.Fatalf("a caller's change to a listing leaked into the next: %v", got)
	}
}

// The listener killed: a reads the table at once (a change that notifies
// nobody is seen), and follows again by itself.
func TestFollowFallsBackWhenNotificationsStop(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	a, db := openPG(t, url)
	events := following(t, a)
	if _, _, err := a.IssueRegistration(ctx, token.Registration{Tier: "t", Name: "one", Uses: 1}); err != nil {
		t.Fatal(err)
	}
	if got := regNames(t, a); !equal(got, []string{"one"}) {
		t.Fatalf("lists %v", got)
	}
	if n := pgnotifytest.TerminateFollowers(t, db); n != 1 {
		t.Fatalf("terminated %d follower connections, want 1", n)
	}
	awaitEvent(t, events, "lost")
	quietRename(t, db, "one", "two")
	if got := regNames(t, a); !equal(got, []string{"two"}) {
		t.Fatalf("lists %v without notifications; want the table", got)
	}
	awaitEvent(t, events, "live")
	if got := regNames(t, a); !equal(got, []string{"two"}) {
		t.Fatalf("lists %v after following again", got)
	}
}

// quietRename changes a registration's name without notifying anyone.
func quietRename(t *testing.T, db *sql.DB, from, to string) {
	t.Helper()
	pgnotifytest.Quietly(t, db, "lpsec_token_registration",
		`UPDATE lpsec_token_registration SET name = '`+to+`' WHERE name = '`+from+`'`)
}

// The conformance suite with Follow running on every instance: the
// listings it checks are all made through the store they are read from.
func TestPostgresStoreConformanceFollowing(t *testing.T) {
	if testing.Short() {
		t.Skip("the conformance suite runs once more with Follow; -short runs it once")
	}
	open := func(t *testing.T, url string, opts ...token.Option) token.Store {
		s, _ := openPG(t, url, opts...)
		following(t, s)
		return s
	}
	runConformance(t, open)
}

func TestFollowRefusesOtherDrivers(t *testing.T) {
	s, err := NewStore(sql.OpenDB(noPgx{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Follow(context.Background()); err == nil || err.Error() != "tokenpg: Follow: pgnotify: the *sql.DB does not use the pgx driver (github.com/jackc/pgx/v5/stdlib) (driver connection is tokenpg.noPgxConn)" {
		t.Fatalf("Follow on another driver: %v", err)
	}
}

// noPgx is a database/sql connector of another driver.
type noPgx struct{}

func (noPgx) Connect(context.Context) (driver.Conn, error) { return noPgxConn{}, nil }
func (noPgx) Driver() driver.Driver                        { return nil }

type noPgxConn struct{}

func (noPgxConn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("not pgx") }
func (noPgxConn) Close() error                        { return nil }
func (noPgxConn) Begin() (driver.Tx, error)           { return nil, errors.New("not pgx") }

// With Follow, a machine token revoked, released or replaced through
// another instance is refused here as soon as the notification arrives,
// long before the cache's ttl (the clock does not move at all here).
func TestFollowEvictsAuthCache(t *testing.T) {
	for _, how := range []string{"revoke", "release", "rotate", "expire", "delete", "truncate", "retier"} {
		t.Run(how, func(t *testing.T) {
			a, b, _, mtok, reg := cachedPairReg(t, 10)
			events := following(t, a)
			ctx := context.Background()
			m, err := a.AuthenticateMachine(ctx, mtok)
			if err != nil {
				t.Fatal(err)
			}
			if a.cache.len() != 1 {
				t.Fatalf("cache holds %d records, want 1", a.cache.len())
			}
			want := token.ErrRevoked
			switch how {
			case "revoke":
				err = b.RevokeMachine(ctx, m.ID)
			case "release":
				err = b.ReleaseMachine(ctx, "m")
			case "rotate":
				_, _, err = b.Register(ctx, reg, "m", token.WithCurrentToken(mtok))
			case "expire": // by hand: the row's expiry moved into the past
				_, err = b.db.Exec(`UPDATE lpsec_token_machine SET valid_until = now() - interval '1 hour' WHERE machine = 'm'`)
				want = token.ErrExpired
			case "delete":
				_, err = b.db.Exec(`DELETE FROM lpsec_token_machine WHERE machine = 'm'`)
				want = token.ErrUnknown
			case "truncate":
				_, err = b.db.Exec(`TRUNCATE lpsec_token_machine`)
				want = token.ErrUnknown
			case "retier": // by hand: an authorization attribute changed
				_, err = b.db.Exec(`UPDATE lpsec_token_machine SET tier = 'other' WHERE machine = 'm'`)
				want = nil
			}
			if err != nil {
				t.Fatal(err)
			}
			caughtUp(t, b.db, events)
			got, err := a.AuthenticateMachine(ctx, mtok)
			if want == nil {
				if err != nil || got.Tier != "other" {
					t.Fatalf("after a tier edit, notified: %+v, %v; want tier other", got, err)
				}
				return
			}
			if !errors.Is(err, want) {
				t.Fatalf("after %s on another instance, notified: err = %v; want %v", how, err, want)
			}
		})
	}
}

// Machine notifications evict from the authentication cache only: the
// listings stay cached, and authentication traffic (LastSeen updates)
// notifies nobody.
func TestFollowMachineChangesLeaveListings(t *testing.T) {
	a, b, _, mtok, _ := cachedPairReg(t, 10)
	events := following(t, a)
	ctx := context.Background()
	if _, err := a.ListRegistrations(ctx); err != nil {
		t.Fatal(err)
	}
	g0, _ := a.follower.Current()
	m, err := b.AuthenticateMachine(ctx, mtok) // writes LastSeen
	if err != nil {
		t.Fatal(err)
	}
	if err := b.RevokeMachine(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, b.db, events)
	if g1, _ := a.follower.Current(); g1 != g0 {
		t.Fatalf("generation %d -> %d; machine changes must leave the listings", g0, g1)
	}
}

// While Follow runs, the authentication cache answers only while
// notifications flow, and never with a record read before a gap. A
// revocation that notifies nobody stands for a notification lost in one.
func TestFollowAuthCacheOnlyWhileLive(t *testing.T) {
	a, b, _, mtok, _ := cachedPairReg(t, 10)
	events := following(t, a)
	ctx := context.Background()
	if _, err := a.AuthenticateMachine(ctx, mtok); err != nil {
		t.Fatal(err)
	}
	quietRevokeMachine(t, b.db, "m")
	if _, err := a.AuthenticateMachine(ctx, mtok); err != nil {
		t.Fatalf("live, cached: %v (the cache should answer: nothing was notified)", err)
	}
	if n := pgnotifytest.TerminateFollowers(t, b.db); n != 1 {
		t.Fatalf("terminated %d follower connections, want 1", n)
	}
	awaitEvent(t, events, "lost")
	if _, err := a.AuthenticateMachine(ctx, mtok); !errors.Is(err, token.ErrRevoked) {
		t.Fatalf("not live: err = %v; want ErrRevoked from the database", err)
	}
	awaitEvent(t, events, "live")
	if _, err := a.AuthenticateMachine(ctx, mtok); !errors.Is(err, token.ErrRevoked) {
		t.Fatalf("live again: err = %v; want ErrRevoked (a record from before the gap must not answer)", err)
	}
}

// quietRevokeMachine revokes machine's live token without notifying anyone.
func quietRevokeMachine(t *testing.T, db *sql.DB, machine string) {
	t.Helper()
	pgnotifytest.Quietly(t, db, "lpsec_token_machine",
		`UPDATE lpsec_token_machine SET revoked = true, revoked_at = now() WHERE machine = '`+machine+`' AND NOT revoked`)
}

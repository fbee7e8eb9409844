package tokenpg

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lpsec/lpsec/internal/pgtest"
	"github.com/lpsec/lpsec/token"
)

// following starts s.Follow and returns its events ("live", "notified:"
// and the payload, "heartbeat", "lost"); Follow ends with the test.
func following(t *testing.T, s *Store) <-chan string {
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
// before it was called: notifications arrive in commit order, so it sends
// one of its own (a payload the store ignores) and waits for that.
func caughtUp(t *testing.T, db *sql.DB, events <-chan string) {
	t.Helper()
	m := fmt.Sprintf("marker-%d", marker.Add(1))
	if _, err := db.Exec(`SELECT pg_notify($1, $2)`, changesChannel, m); err != nil {
		t.Fatal(err)
	}
	awaitEvent(t, events, "notified:"+m)
}

// caughtUpSeeing is caughtUp, returning the notifications seen before the
// marker.
func caughtUpSeeing(t *testing.T, db *sql.DB, events <-chan string) []string {
	t.Helper()
	m := fmt.Sprintf("marker-%d", marker.Add(1))
	if _, err := db.Exec(`SELECT pg_notify($1, $2)`, changesChannel, m); err != nil {
		t.Fatal(err)
	}
	var seen []string
	deadline := time.After(20 * time.Second)
	for {
		select {
		case e := <-events:
			if e == "notified:"+m {
				return seen
			}
			if strings.HasPrefix(e, "notified:") {
				seen = append(seen, e)
			}
		case <-deadline:
			t.Fatalf("marker %s not notified within 20s", m)
		}
	}
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
	if seen := caughtUpSeeing(t, db, events); len(seen) != 0 {
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
	if _, err := db.Exec(`ALTER TABLE lpsec_token_registration DISABLE TRIGGER USER`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE lpsec_token_registration SET name = 'renamed' WHERE name = 'by-a'`); err != nil {
		t.Fatal(err)
	}
	if got := regNames(t, a); !equal(got, []string{"by-a", "by-b"}) {
		t.Fatalf("a lists %v; want its copy, untouched by an unnotified change", got)
	}
	if got := regNames(t, b); !equal(got, []string{"renamed", "by-b"}) {
		t.Fatalf("b (not following) lists %v; want the table", got)
	}
	if _, err := db.Exec(`ALTER TABLE lpsec_token_registration ENABLE TRIGGER USER`); err != nil {
		t.Fatal(err)
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
	var n int
	if err := db.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'lpsec-pgnotify'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminating the listener: %d backends, %v", n, err)
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
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for _, q := range []string{
		`ALTER TABLE lpsec_token_registration DISABLE TRIGGER USER`,
		`UPDATE lpsec_token_registration SET name = '` + to + `' WHERE name = '` + from + `'`,
		`ALTER TABLE lpsec_token_registration ENABLE TRIGGER USER`,
	} {
		if _, err := tx.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
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
	var n int
	if err := b.db.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'lpsec-pgnotify'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminating the listener: %d backends, %v", n, err)
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
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for _, q := range []string{
		`ALTER TABLE lpsec_token_machine DISABLE TRIGGER USER`,
		`UPDATE lpsec_token_machine SET revoked = true, revoked_at = now() WHERE machine = '` + machine + `' AND NOT revoked`,
		`ALTER TABLE lpsec_token_machine ENABLE TRIGGER USER`,
	} {
		if _, err := tx.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

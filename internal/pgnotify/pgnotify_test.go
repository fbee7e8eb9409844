package pgnotify_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lpsec/lpsec/internal/pgnotify"
	"github.com/lpsec/lpsec/internal/pgnotify/pgnotifytest"
	"github.com/lpsec/lpsec/internal/pgtest"
)

const channel = "lpsec_test_channel"

// follow starts f.Run on db and returns f's events; Run ends with the test.
func follow(t *testing.T, f *pgnotify.Follower, db *sql.DB) <-chan string {
	t.Helper()
	return pgnotifytest.Start(t, f, func(ctx context.Context) error { return f.Run(ctx, db) })
}

var await = pgnotifytest.Await

func notify(t *testing.T, db *sql.DB) {
	t.Helper()
	if _, err := db.Exec(`SELECT pg_notify($1, 'x')`, channel); err != nil {
		t.Fatal(err)
	}
}

func TestFollowerNotificationsAndLocalChanges(t *testing.T) {
	db := pgtest.Open(t)
	f := pgnotify.New(channel, 0, nil)
	if _, live := f.Current(); live {
		t.Fatal("live before Run")
	}
	events := follow(t, f, db)
	await(t, events, "live")
	g0, live := f.Current()
	if !live {
		t.Fatal("not live after the live event")
	}
	notify(t, db)
	await(t, events, "notified:x")
	g1, live := f.Current()
	if !live || g1 == g0 {
		t.Fatalf("after a notification: gen %d -> %d, live %v; want a new generation, live", g0, g1, live)
	}
	f.Changed()
	if g2, _ := f.Current(); g2 == g1 {
		t.Fatal("Changed did not move the generation")
	}
	// A notification on another channel is not ours.
	if _, err := db.Exec(`SELECT pg_notify('lpsec_other_channel', 'x')`); err != nil {
		t.Fatal(err)
	}
	g3, _ := f.Current()
	notify(t, db)
	await(t, events, "notified:x")
	if g4, _ := f.Current(); g4 == g3 {
		t.Fatal("generation did not move")
	}
}

func TestCachedServesUntilChanged(t *testing.T) {
	db := pgtest.Open(t)
	f := pgnotify.New(channel, 0, nil)
	c := pgnotify.NewCached[int](f, 0)
	var fills atomic.Int64
	fill := func() (int, error) { return int(fills.Add(1)), nil }
	get := func() int {
		t.Helper()
		v, err := c.Get(fill)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// Not following: every Get asks.
	if a, b := get(), get(); a != 1 || b != 2 {
		t.Fatalf("before Run: got %d, %d; want 1, 2 (no caching)", a, b)
	}
	events := follow(t, f, db)
	await(t, events, "live")
	if a, b := get(), get(); a != 3 || b != 3 {
		t.Fatalf("live: got %d, %d; want 3, 3 (one fill, then the copy)", a, b)
	}
	notify(t, db)
	await(t, events, "notified:x")
	if a, b := get(), get(); a != 4 || b != 4 {
		t.Fatalf("after a notification: got %d, %d; want 4, 4", a, b)
	}
	f.Changed()
	if a := get(); a != 5 {
		t.Fatalf("after a local change: got %d, want 5", a)
	}
	// A change while the query runs: its answer is served once, not kept.
	racing := func() (int, error) { f.Changed(); return int(fills.Add(1)), nil }
	f.Changed()
	if v, _ := c.Get(racing); v != 6 {
		t.Fatalf("racing fill: got %d, want 6", v)
	}
	if a := get(); a != 7 {
		t.Fatalf("after a racing fill: got %d, want 7 (not the racing answer)", a)
	}
	// Errors are returned and never kept.
	f.Changed()
	boom := errors.New("boom")
	if _, err := c.Get(func() (int, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Fatalf("failing fill: %v", err)
	}
	if a := get(); a != 8 {
		t.Fatalf("after a failing fill: got %d, want 8", a)
	}
}

// A listener connection killed by the server: copies stop being served at
// once, and the Follower comes back by itself under a new generation.
func TestFollowerReconnects(t *testing.T) {
	db := pgtest.Open(t)
	f := pgnotify.New(channel, 0, nil)
	c := pgnotify.NewCached[int](f, 0)
	events := follow(t, f, db)
	await(t, events, "live")
	g0, _ := f.Current()
	if _, err := c.Get(func() (int, error) { return 1, nil }); err != nil {
		t.Fatal(err)
	}
	if n := pgnotifytest.TerminateFollowers(t, db); n != 1 {
		t.Fatalf("terminated %d follower connections, want 1", n)
	}
	await(t, events, "lost")
	if _, live := f.Current(); live {
		t.Fatal("live after the connection was lost")
	}
	if v, _ := c.Get(func() (int, error) { return 2, nil }); v != 2 {
		t.Fatalf("while lost: got %d, want the database's answer 2", v)
	}
	await(t, events, "live")
	g1, live := f.Current()
	if !live || g1 == g0 {
		t.Fatalf("after reconnecting: gen %d -> %d, live %v", g0, g1, live)
	}
	if v, _ := c.Get(func() (int, error) { return 3, nil }); v != 3 {
		t.Fatalf("after reconnecting: got %d, want a fresh read 3", v)
	}
}

// A server that stops answering without closing the connection (a
// partition): the Follower stops vouching for copies within two
// heartbeats, by its ping, and follows again when the server answers.
func TestFollowerFrozenServer(t *testing.T) {
	cl := pgtest.StartCluster(t)
	db, err := sql.Open("pgx", cl.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := pgnotify.New(channel, 100*time.Millisecond, nil)
	events := follow(t, f, db)
	await(t, events, "live")
	await(t, events, "heartbeat") // the ping path works on a healthy server
	cl.Freeze()
	await(t, events, "lost")
	if _, live := f.Current(); live {
		t.Fatal("live while the server is frozen")
	}
	cl.Thaw()
	await(t, events, "live")
	if _, live := f.Current(); !live {
		t.Fatal("not live after the server came back")
	}
}

// The lease alone (no event) stops copies being served: a Follower whose
// last sign of life is two heartbeats old is not live.
func TestLeaseLapses(t *testing.T) {
	f := pgnotify.New(channel, time.Hour, nil)
	pgnotify.Renew(f)
	g0, live := f.Current()
	if !live {
		t.Fatal("not live after renew")
	}
	pgnotify.Age(f, 2*time.Hour) // two heartbeats have passed
	if _, live := f.Current(); live {
		t.Fatal("live after the lease ran out")
	}
	pgnotify.Renew(f)
	if g1, live := f.Current(); !live || g1 == g0 {
		t.Fatalf("renewing a lapsed lease: gen %d -> %d, live %v; want a new generation", g0, g1, live)
	}
}

func TestRunRefusesOtherDrivers(t *testing.T) {
	db := sql.OpenDB(fakeConnector{})
	defer db.Close()
	err := pgnotify.New(channel, 0, nil).Run(context.Background(), db)
	if !errors.Is(err, pgnotify.ErrNotPgx) {
		t.Fatalf("Run on another driver: %v, want pgnotify.ErrNotPgx", err)
	}
}

func TestRunOnce(t *testing.T) {
	db := pgtest.Open(t)
	f := pgnotify.New(channel, 0, nil)
	events := follow(t, f, db)
	await(t, events, "live")
	if err := f.Run(context.Background(), db); err == nil || errors.Is(err, pgnotify.ErrNotPgx) {
		t.Fatalf("second Run: %v, want an already-running error", err)
	}
}

type fakeConnector struct{}

func (fakeConnector) Connect(context.Context) (driver.Conn, error) { return fakeConn{}, nil }
func (fakeConnector) Driver() driver.Driver                        { return nil }

type fakeConn struct{}

func (fakeConn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("fake") }
func (fakeConn) Close() error                        { return nil }
func (fakeConn) Begin() (driver.Tx, error)           { return nil, errors.New("fake") }

// A value with a maximum age is read again once it is that old, even
// with nothing notified.
func TestCachedMaxAge(t *testing.T) {
	f := pgnotify.New(channel, time.Hour, nil)
	pgnotify.Renew(f)
	c := pgnotify.NewCached[int](f, time.Minute)
	n := 0
	fill := func() (int, error) { n++; return n, nil }
	if a, b := mustGet(t, c, fill), mustGet(t, c, fill); a != 1 || b != 1 {
		t.Fatalf("got %d, %d; want 1, 1", a, b)
	}
	pgnotify.Age(f, 59*time.Second)
	if a := mustGet(t, c, fill); a != 1 {
		t.Fatalf("at 59s: got %d, want the kept 1", a)
	}
	pgnotify.Age(f, time.Second)
	if a := mustGet(t, c, fill); a != 2 {
		t.Fatalf("at 60s: got %d, want a fresh read 2", a)
	}
}

func mustGet(t *testing.T, c *pgnotify.Cached[int], fill func() (int, error)) int {
	t.Helper()
	v, err := c.Get(fill)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A connection that answers queries but delivers no notifications (what a
// transaction-pooling proxy does to LISTEN) is never live: accepting
// LISTEN proves nothing, only a heartbeat that came back does. The
// Follower keeps trying, and nothing is served from memory meanwhile.
func TestFollowerDeafConnection(t *testing.T) {
	db := pgtest.Open(t)
	f := pgnotify.New(channel, 100*time.Millisecond, nil)
	pgnotify.SetAfterListen(f, func(c *pgx.Conn) {
		if _, err := c.Exec(context.Background(), "UNLISTEN *"); err != nil {
			t.Errorf("UNLISTEN: %v", err)
		}
	})
	c := pgnotify.NewCached[int](f, 0)
	fills := 0
	fill := func() (int, error) { fills++; return fills, nil }
	events := follow(t, f, db)
	for lost := 0; lost < 3; {
		select {
		case e := <-events:
			switch e {
			case "live", "heartbeat":
				t.Fatalf("%q event on a connection that does not listen", e)
			case "lost":
				lost++
			}
		case <-time.After(20 * time.Second):
			t.Fatal("no lost event within 20s")
		}
		if _, live := f.Current(); live {
			t.Fatal("live on a connection that does not listen")
		}
		before := fills
		if v, _ := c.Get(fill); v != before+1 {
			t.Fatalf("served %d from memory without delivery", v)
		}
	}
}

// Heartbeats of other Followers on the channel are neither changes nor
// proof of this Follower's own delivery.
func TestFollowerIgnoresOtherHeartbeats(t *testing.T) {
	db := pgtest.Open(t)
	f := pgnotify.New(channel, 0, nil)
	routed := make(chan string, 16)
	f.OnNotification(func(p string) bool { routed <- p; return true })
	events := follow(t, f, db)
	await(t, events, "live")
	g0, _ := f.Current()
	if _, err := db.Exec(`SELECT pg_notify($1, $2)`, channel, pgnotify.HeartbeatPrefix+"someone-else"); err != nil {
		t.Fatal(err)
	}
	notify(t, db)
	await(t, events, "notified:x")
	if p := <-routed; p != "x" {
		t.Fatalf("routed %q first; want only x", p)
	}
	if g1, _ := f.Current(); g1 != g0+1 {
		t.Fatalf("generation %d -> %d; want one move (x)", g0, g1)
	}
}

// An empty payload is a change like any other, never taken for this
// Follower's heartbeat (none is pending).
func TestFollowerEmptyPayload(t *testing.T) {
	db := pgtest.Open(t)
	f := pgnotify.New(channel, 0, nil)
	events := follow(t, f, db)
	await(t, events, "live")
	g0, _ := f.Current()
	if _, err := db.Exec(`SELECT pg_notify($1, '')`, channel); err != nil {
		t.Fatal(err)
	}
	await(t, events, "notified:")
	if g1, _ := f.Current(); g1 == g0 {
		t.Fatal("an empty-payload notification did not move the generation")
	}
}

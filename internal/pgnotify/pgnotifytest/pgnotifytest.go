// Package pgnotifytest drives a pgnotify.Follower in tests: start it with
// its events observed, wait for an event, wait until it has seen every
// change committed so far, break its connections, and change a table
// without notifying anyone. Every wait has a generous bound and fails the
// test rather than hang; none sleeps to synchronise.
package pgnotifytest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lpsec/lpsec/internal/pgnotify"
)

// bound is how long a wait may take before the test fails.
const bound = 20 * time.Second

// Start runs run (the Follower's Run, or a store's Follow) with f's events
// observed ("live", "notified:" and the payload, "heartbeat", "lost") and
// returns them. run must end with context.Canceled when the test does.
func Start(t testing.TB, f *pgnotify.Follower, run func(context.Context) error) <-chan string {
	t.Helper()
	events := make(chan string, 1<<16)
	f.Observe(func(e string) { events <- e })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("following returned %v, want context.Canceled", err)
		}
	})
	return events
}

// Await returns when event want arrives, skipping others.
func Await(t testing.TB, events <-chan string, want string) {
	t.Helper()
	deadline := time.After(bound)
	for {
		select {
		case e := <-events:
			if e == want {
				return
			}
		case <-deadline:
			t.Fatalf("no %q event within %v", want, bound)
		}
	}
}

var marker atomic.Int64

// CaughtUp returns once the Follower has seen every change committed
// before the call, with the notifications it saw meanwhile: notifications
// arrive in commit order, so it sends one of its own on channel (a
// payload no store acts on) and waits for that.
func CaughtUp(t testing.TB, db *sql.DB, channel string, events <-chan string) (seen []string) {
	t.Helper()
	m := fmt.Sprintf("pgnotifytest-marker-%d", marker.Add(1))
	if _, err := db.Exec(`SELECT pg_notify($1, $2)`, channel, m); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(bound)
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
			t.Fatalf("marker %s not notified within %v", m, bound)
		}
	}
}

// TerminateFollowers has the server close every Follower connection to
// db's database and returns how many it closed.
func TerminateFollowers(t testing.TB, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = $1`, pgnotify.ApplicationName).Scan(&n); err != nil {
		t.Fatalf("closing the followers' connections: %v", err)
	}
	return n
}

// Quietly runs stmts in one transaction with table's triggers disabled:
// a committed change that notifies nobody, standing for a notification
// lost in a gap. table is the test's constant, never input.
func Quietly(t testing.TB, db *sql.DB, table string, stmts ...string) {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	all := append([]string{`ALTER TABLE ` + table + ` DISABLE TRIGGER USER`}, stmts...)
	for _, q := range append(all, `ALTER TABLE `+table+` ENABLE TRIGGER USER`) {
		if _, err := tx.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

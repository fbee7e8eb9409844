package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"
)

func TestDatabaseIsUsable(t *testing.T) {
	db := Open(t)
	var one int
	if err := db.QueryRowContext(context.Background(), "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 = %d, %v", one, err)
	}
}

// After Durable, every acknowledged commit survives Crash (an immediate
// stop) and the crash recovery of Start.
func TestClusterCrashKeepsDurableCommits(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster")
	}
	c := StartCluster(t)
	c.Durable()
	db, err := sql.Open("pgx", c.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	var mode string
	if err := db.QueryRowContext(ctx, "SHOW synchronous_commit").Scan(&mode); err != nil || mode != "on" {
		t.Fatalf("synchronous_commit after Durable: %q, %v", mode, err)
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (n int)"); err != nil {
		t.Fatal(err)
	}
	const rows = 200
	for i := range rows {
		if _, err := db.ExecContext(ctx, "INSERT INTO t VALUES ($1)", i); err != nil {
			t.Fatal(err)
		}
	}
	c.Crash()
	if err := db.PingContext(ctx); err == nil {
		t.Fatal("ping succeeded against a crashed cluster")
	}
	c.Start()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != rows {
		t.Fatalf("rows after crash recovery: %d, %v; want %d", n, err, rows)
	}
}

func TestClusterStopStart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster")
	}
	c := StartCluster(t)
	db, err := sql.Open("pgx", c.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("ping running cluster: %v", err)
	}
	c.Stop()
	if err := db.PingContext(ctx); err == nil {
		t.Fatal("ping succeeded against a stopped cluster")
	}
	c.Start()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("ping restarted cluster: %v", err)
	}
}

// TestClusterFreezeThaw: a frozen cluster accepts connections but answers
// nothing, so a ping waits for its context; after Thaw it answers.
func TestClusterFreezeThaw(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster")
	}
	c := StartCluster(t)
	db, err := sql.Open("pgx", c.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.PingContext(context.Background()); err != nil {
		t.Fatalf("ping running cluster: %v", err)
	}
	c.Freeze()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := db.PingContext(ctx); !errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		t.Fatalf("ping frozen cluster: %v, want it to wait for the deadline", err)
	}
	c.Thaw()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	for db.PingContext(ctx2) != nil { // the pool may first meet the connection the deadline closed
		if ctx2.Err() != nil {
			t.Fatal("cluster did not answer after Thaw")
		}
	}
}

package pgtest

import (
	"context"
	"database/sql"
	"testing"
)

func TestDatabaseIsUsable(t *testing.T) {
	db := Open(t)
	var one int
	if err := db.QueryRowContext(context.Background(), "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 = %d, %v", one, err)
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

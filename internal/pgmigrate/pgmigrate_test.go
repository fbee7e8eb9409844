package pgmigrate

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"

	"github.com/lpsec/lpsec/internal/pgtest"
)

var schema = Schema{
	Table: "pgmigrate_test_schema",
	Lock:  0x6c7073656354e571,
	Versions: [][]string{
		{`CREATE TABLE pgmigrate_t (id integer PRIMARY KEY)`},
		{`ALTER TABLE pgmigrate_t ADD COLUMN name text`, `CREATE INDEX pgmigrate_t_name ON pgmigrate_t (name)`},
	},
}

func versions(t *testing.T, db *sql.DB) (n, max int) {
	t.Helper()
	if err := db.QueryRow(`SELECT count(*), coalesce(max(version), 0) FROM `+schema.Table).Scan(&n, &max); err != nil {
		t.Fatal(err)
	}
	return n, max
}

// TestMigrateConcurrentIdempotent: eight instances migrating at once leave
// exactly one row per version; running again changes nothing.
func TestMigrateConcurrentIdempotent(t *testing.T) {
	url := pgtest.Database(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			db, err := sql.Open("pgx", url)
			if err != nil {
				t.Error(err)
				return
			}
			defer db.Close()
			if err := Migrate(ctx, db, schema); err != nil {
				t.Errorf("concurrent Migrate: %v", err)
			}
		})
	}
	wg.Wait()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := Migrate(ctx, db, schema); err != nil {
		t.Fatal(err)
	}
	if n, max := versions(t, db); n != 2 || max != 2 {
		t.Fatalf("bookkeeping has %d rows, version %d; want 2, 2", n, max)
	}
	if _, err := db.Exec(`INSERT INTO pgmigrate_t (id, name) VALUES (1, 'x')`); err != nil {
		t.Fatalf("schema not at version 2: %v", err)
	}
	var col string
	if err := db.QueryRow(`SELECT column_name FROM information_schema.columns
		WHERE table_name = $1 AND data_type = 'timestamp with time zone'`, schema.Table).Scan(&col); err != nil || col != "applied_at" {
		t.Fatalf("bookkeeping time column = %q, %v; want applied_at", col, err)
	}
}

// TestMigrateTooNew: a database from newer code is refused and untouched.
func TestMigrateTooNew(t *testing.T) {
	db := pgtest.Open(t)
	ctx := context.Background()
	if err := Migrate(ctx, db, Schema{Table: schema.Table, Lock: schema.Lock, Versions: schema.Versions[:1]}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO ` + schema.Table + ` (version) VALUES (3)`); err != nil {
		t.Fatal(err)
	}
	err := Migrate(ctx, db, schema)
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Migrate = %v; want ErrSchemaTooNew", err)
	}
	if n, max := versions(t, db); n != 2 || max != 3 {
		t.Fatalf("refused Migrate changed the bookkeeping: %d rows, version %d", n, max)
	}
	if _, err := db.Exec(`INSERT INTO pgmigrate_t (id, name) VALUES (1, 'x')`); err == nil {
		t.Fatal("refused Migrate applied version 2")
	}
}

// TestMigrateFailureRollsBack: a failing statement leaves the database at
// the version it had, bookkeeping included.
func TestMigrateFailureRollsBack(t *testing.T) {
	db := pgtest.Open(t)
	ctx := context.Background()
	bad := Schema{Table: schema.Table, Lock: schema.Lock, Versions: [][]string{
		schema.Versions[0],
		{`ALTER TABLE pgmigrate_t ADD COLUMN name text`, `SELECT no_such_function()`},
	}}
	if err := Migrate(ctx, db, bad); err == nil {
		t.Fatal("Migrate with a failing statement succeeded")
	}
	var exists bool
	if err := db.QueryRow(`SELECT to_regclass('pgmigrate_t') IS NOT NULL`).Scan(&exists); err != nil || exists {
		t.Fatalf("version 1 survived a failed run: %v %v", exists, err)
	}
	if err := Migrate(ctx, db, schema); err != nil {
		t.Fatal(err)
	}
	if n, max := versions(t, db); n != 2 || max != 2 {
		t.Fatalf("%d rows, version %d after recovery", n, max)
	}
}

// TestMigrateKeepsOlderBookkeeping: a bookkeeping table made by earlier
// token code, with "applied" for the time column, keeps working.
func TestMigrateKeepsOlderBookkeeping(t *testing.T) {
	db := pgtest.Open(t)
	if _, err := db.Exec(`CREATE TABLE ` + schema.Table + ` (version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())`); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(context.Background(), db, schema); err != nil {
		t.Fatal(err)
	}
	if n, max := versions(t, db); n != 2 || max != 2 {
		t.Fatalf("%d rows, version %d", n, max)
	}
}

func TestMigrateRefusesOddTableName(t *testing.T) {
	err := Migrate(context.Background(), &sql.DB{}, Schema{Table: "x; DROP TABLE y"})
	if err == nil {
		t.Fatal("accepted a table name that is not an identifier")
	}
}

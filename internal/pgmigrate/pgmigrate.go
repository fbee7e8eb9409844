// Package pgmigrate is the one schema-migration helper of lpsec's
// PostgreSQL stores (token/tokenpg and macaroon/macaroonpg), so that both
// keep their schema version the same way and behave the same on a
// database that is behind, current or ahead of the code.
//
// Each store has a bookkeeping table of its own, always of this shape:
//
//	CREATE TABLE <store>_schema (
//		version    integer     PRIMARY KEY,
//		applied_at timestamptz NOT NULL DEFAULT now())
//
// with one row per applied version. Migrate inserts only the version, so a
// table created by earlier code under another name for the time column
// (token's "applied") keeps working.
//
// Migrate runs in one transaction holding a transaction-scoped advisory
// lock (a key per store), so instances that start together serialise: the
// first applies what is missing, the others find nothing left to do. A
// failing statement rolls the whole run back; the database stays at the
// version it had. A database whose version is newer than the code's is
// refused with ErrSchemaTooNew and left untouched: the stores report it as
// their ErrUnavailable (they fail closed rather than run against a schema
// they do not know), and the operator upgrades the program.
package pgmigrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
)

// ErrSchemaTooNew: the database was migrated by newer code.
var ErrSchemaTooNew = errors.New("database schema is newer than this program")

// Schema describes one store's migrations.
type Schema struct {
	// Table is the bookkeeping table, e.g. "lpsec_token_schema". It is a
	// constant of the store, never input.
	Table string
	// Lock is the advisory lock key that serialises this store's Migrate.
	Lock int64
	// Versions are applied in order: version N is Versions[N-1], its
	// statements run in order. Released versions are never edited, only
	// appended to.
	Versions [][]string
}

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// Migrate brings db to len(s.Versions). It is idempotent and safe to run
// from several instances at once. Errors wrap the database error, or
// ErrSchemaTooNew.
func Migrate(ctx context.Context, db *sql.DB, s Schema) (err error) {
	if !identifier.MatchString(s.Table) {
		return fmt.Errorf("pgmigrate: bookkeeping table %q is not a plain identifier", s.Table)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, s.Lock); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+s.Table+` (
		version    integer     PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("bookkeeping table: %w", err)
	}
	var v int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM `+s.Table).Scan(&v); err != nil {
		return fmt.Errorf("read version: %w", err)
	}
	if v > len(s.Versions) {
		return fmt.Errorf("%w: database schema version %d, this program knows up to %d", ErrSchemaTooNew, v, len(s.Versions))
	}
	for ; v < len(s.Versions); v++ {
		for _, stmt := range s.Versions[v] {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("version %d: %w", v+1, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO `+s.Table+` (version) VALUES ($1)`, v+1); err != nil {
			return fmt.Errorf("record version %d: %w", v+1, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

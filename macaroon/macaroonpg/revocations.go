package macaroonpg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lpsec/lpsec/internal/pgmigrate"
	"github.com/lpsec/lpsec/internal/pgnotify"
	"github.com/lpsec/lpsec/macaroon"
	"github.com/lpsec/lpsec/macaroon/internal/core"
)

// RevocationStore is a macaroon.RevocationStore kept in PostgreSQL: a login
// macaroon logged out or revoked on one server instance is refused by every
// instance that opens the same database.
//
// The bound: each instance answers from a snapshot of the live revocations
// that it reloads when the snapshot is older than CacheTTL (default
// macaroon.DefaultRevocationCacheTTL, 5 seconds), so a revocation made on
// another instance is refused within CacheTTL; the instance that revoked
// refuses at once. With macaroon.WithoutRevocationCache every check asks
// the database (one indexed query), and revocation is immediate everywhere.
// A database fault never extends the bound: once the snapshot is older than
// CacheTTL and cannot be reloaded, checks fail with macaroon.ErrUnavailable.
//
// With the cache on, Follow tightens its bound: while it runs and
// notifications flow, the snapshot is kept until a revocation is committed
// anywhere (the table's triggers NOTIFY, Follow listens) and reloaded at
// once when one is, whatever CacheTTL says, so checks cost no query and a
// revocation made on another instance is refused as soon as its
// notification arrives, normally within a millisecond of the commit. If
// notifications stop (the connection breaks, or no notification, its own
// heartbeat included, arrives for two heartbeats, 2 s), the CacheTTL rule
// applies again until Follow is back. WithoutRevocationCache keeps every
// check a query, Follow or not.
//
// Size: one row per revoked macaroon and per revoked user (a later cut-off
// replaces an earlier one) and one for "all", each deleted once it expires
// (at most MaxTTL after it was made, when no macaroon it matches can verify).
// A snapshot holds at most maxRevocationSnapshot rows; beyond that the
// store stops caching and asks the database on every check, so memory stays
// bounded whatever the table holds.
type RevocationStore struct {
	db *sql.DB
	p  *core.Settings

	follower *pgnotify.Follower

	mu       sync.Mutex
	snap     *revocationSnapshot
	loadedAt time.Time
	snapGen  uint64        // the follower's generation the snapshot was loaded under
	followed bool          // loaded while following, and nothing changed during the load
	lastErr  error         // of the last failed load
	failures atomic.Uint64 // failed loads so far
}

type revocationSnapshot struct {
	ids   map[string]time.Time // id -> expires
	users map[string][2]time.Time
	all   [2]time.Time // before, expires; zero: none
}

var _ macaroon.RevocationStore = (*RevocationStore)(nil)

const (
	revocationTable       = "lpsec_macaroon_revocations"
	revocationSchemaTable = "lpsec_macaroon_revocations_schema"
	// "lpsecRV1" as a big-endian int64.
	revocationMigrateLock = 0x6c70736563525631
	maxRevocationSnapshot = 10000
)

// revocationsChannel is what the version 2 triggers NOTIFY, with payload
// revocationPayload; other payloads on it change nothing.
const (
	revocationsChannel = "lpsec_macaroon_revoked"
	revocationPayload  = "revocation"
)

var revocationMigrations = [][]string{{
	`CREATE TABLE ` + revocationTable + ` (
		kind    text        NOT NULL CHECK (kind IN ('id', 'user', 'all')),
		key     text        NOT NULL CHECK (octet_length(key) <= 256),
		before  timestamptz,
		expires timestamptz NOT NULL,
		PRIMARY KEY (kind, key)
	);
	CREATE INDEX ` + revocationTable + `_expires ON ` + revocationTable + ` (expires);`,
}, {
	// Version 2: every committed change is notified, for Follow.
	`CREATE FUNCTION ` + revocationTable + `_notify() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM pg_notify('` + revocationsChannel + `', '` + revocationPayload + `');
		RETURN NULL;
	END $$`,
	`CREATE TRIGGER ` + revocationTable + `_changed AFTER INSERT OR UPDATE OR DELETE
		ON ` + revocationTable + ` FOR EACH ROW EXECUTE FUNCTION ` + revocationTable + `_notify()`,
	`CREATE TRIGGER ` + revocationTable + `_truncated AFTER TRUNCATE
		ON ` + revocationTable + ` FOR EACH STATEMENT EXECUTE FUNCTION ` + revocationTable + `_notify()`,
}}

// NewRevocationStore returns a store using db (opened with the "pgx"
// driver). Call Migrate once at start-up before using it. Options:
// macaroon.WithCacheTTL, WithoutRevocationCache, WithStoreTimeout,
// WithClock, WithLogger; any
// other, or a nil db, is macaroon.ErrInvalidOption.
func NewRevocationStore(db *sql.DB, opts ...macaroon.Option) (*RevocationStore, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: macaroonpg.NewRevocationStore: nil *sql.DB", macaroon.ErrInvalidOption)
	}
	p, err := core.Build("macaroonpg.NewRevocationStore", core.ForPostgresRevocations, opts)
	if err != nil {
		return nil, err
	}
	f := pgnotify.New(revocationsChannel, 0, p.Log)
	f.OnNotification(func(payload string) bool { return payload == revocationPayload })
	return &RevocationStore{db: db, p: p, follower: f}, nil
}

// Follow keeps the revocation snapshot until a revocation is committed
// anywhere (see RevocationStore), and returns ctx's error when ctx is done.
// It uses one database connection of its own, outside db's pool, and
// reconnects by itself; it fails at once only if db does not use the pgx
// driver. Run Migrate first, and at most one Follow per store:
//
//	go revocations.Follow(ctx)
func (s *RevocationStore) Follow(ctx context.Context) error {
	if err := s.follower.Run(ctx, s.db); err != nil {
		return fmt.Errorf("macaroonpg: Follow: %w", err)
	}
	return nil
}

// Migrate creates or upgrades the store's table; idempotent and safe from
// several instances at once.
func (s *RevocationStore) Migrate(ctx context.Context) error {
	if err := pgmigrate.Migrate(ctx, s.db, pgmigrate.Schema{
		Table: revocationSchemaTable, Lock: revocationMigrateLock, Versions: revocationMigrations,
	}); err != nil {
		return s.unavailable(ctx, "migrate", err)
	}
	return nil
}

// ceilMicro rounds t up to PostgreSQL's microsecond precision, so a stored
// cut-off is never earlier than the one asked for.
func ceilMicro(t time.Time) time.Time {
	if tr := t.Truncate(time.Microsecond); !tr.Equal(t) {
		return tr.Add(time.Microsecond)
	}
	return t
}

// Revoke records r (see macaroon.Revocation): idempotent, a later cut-off
// or expiry replaces an earlier one, never the reverse. It also deletes
// expired rows. This instance refuses what r matches at once.
func (s *RevocationStore) Revoke(ctx context.Context, r macaroon.Revocation) error {
	ctx, cancel := context.WithTimeout(ctx, s.p.StoreTimeout)
	defer cancel()
	if err := macaroon.CheckRevocation(r); err != nil {
		return err
	}
	kind, key := "id", r.ID
	var before any
	switch {
	case r.User != "":
		kind, key, before = "user", r.User, ceilMicro(r.Before)
	case r.All:
		kind, key, before = "all", "", ceilMicro(r.Before)
	}
	now := s.p.Now()
	// Dropped even when the statement fails: an error (a deadline after
	// COMMIT) does not prove that nothing was committed.
	defer func() {
		s.follower.Changed()
		s.mu.Lock()
		s.snap = nil // this instance reloads at its next check
		s.mu.Unlock()
	}()
	_, err := s.db.ExecContext(ctx, `WITH purge AS (DELETE FROM `+revocationTable+` WHERE expires <= $5)
		INSERT INTO `+revocationTable+` AS t (kind, key, before, expires) VALUES ($1, $2, $3, $4)
		ON CONFLICT (kind, key) DO UPDATE SET before = GREATEST(t.before, EXCLUDED.before), expires = GREATEST(t.expires, EXCLUDED.expires)`,
		kind, key, before, ceilMicro(r.Expires), now)
	if err != nil {
		return s.unavailable(ctx, "revoke", err)
	}
	return nil
}

// Revoked reports whether the login macaroon with revocation id id, of user,
// issued at issued, is revoked, within the bound described on
// RevocationStore. A database fault is an error wrapping
// macaroon.ErrUnavailable.
func (s *RevocationStore) Revoked(ctx context.Context, id, user string, issued time.Time) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.p.StoreTimeout)
	defer cancel()
	now := s.p.Now()
	if s.p.CacheTTL > 0 {
		gen, live := s.follower.Current()
		snap, err := s.snapshot(ctx, now, gen, live)
		if err != nil {
			return false, err
		}
		if snap.ids != nil {
			return snap.revoked(now, id, user, issued), nil
		}
		// Too many rows to cache: ask the database (below).
	}
	var revoked bool
	err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM `+revocationTable+` WHERE expires > $1 AND (
		(kind = 'id' AND key = $2) OR (kind = 'user' AND key = $3 AND before > $4) OR (kind = 'all' AND key = '' AND before > $4)))`,
		now, id, user, issued).Scan(&revoked)
	if err != nil {
		return false, s.unavailable(ctx, "check revocation", err)
	}
	return revoked, nil
}

// snapshot returns a snapshot that may answer now: while the follower is
// live, one loaded under its current generation; otherwise one loaded
// less than CacheTTL ago. Else it reloads. One caller loads while the others wait
// for it, and no lock is held while a check runs.
func (s *RevocationStore) snapshot(ctx context.Context, now time.Time, gen uint64, live bool) (*revocationSnapshot, error) {
	failures := s.failures.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.snap == nil:
	case live:
		// Following: only the generation says whether it is current.
		if s.followed && s.snapGen == gen {
			return s.snap, nil
		}
	case now.Before(s.loadedAt.Add(s.p.CacheTTL)) && !now.Before(s.loadedAt):
		return s.snap, nil
	}
	if s.failures.Load() != failures {
		// A load failed while this call queued for the lock: fail with it
		// rather than wait a further StoreTimeout on a database that just
		// timed out, so no caller waits more than about one StoreTimeout.
		return nil, s.lastErr
	}
	snap, err := s.load(ctx, now)
	if err != nil {
		s.snap, s.lastErr = nil, err
		s.failures.Add(1)
		return nil, err
	}
	// A revocation notified while loading may be missing from snap: it
	// answers this check (it is as fresh as a query), and while following
	// it is kept only if nothing was notified meanwhile.
	gen2, live2 := s.follower.Current()
	s.snap, s.loadedAt, s.snapGen, s.followed = snap, now, gen, live && live2 && gen2 == gen
	return snap, nil
}

func (snap *revocationSnapshot) revoked(now time.Time, id, user string, issued time.Time) bool {
	if exp, ok := snap.ids[id]; ok && now.Before(exp) {
		return true
	}
	if u, ok := snap.users[user]; ok && now.Before(u[1]) && issued.Before(u[0]) {
		return true
	}
	return !snap.all[1].IsZero() && now.Before(snap.all[1]) && issued.Before(snap.all[0])
}

// load reads every live revocation; a snapshot with nil ids means there
// were more than maxRevocationSnapshot.
func (s *RevocationStore) load(ctx context.Context, now time.Time) (*revocationSnapshot, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT kind, key, before, expires FROM `+revocationTable+`
		WHERE expires > $1 LIMIT `+fmt.Sprint(maxRevocationSnapshot+1), now)
	if err != nil {
		return nil, s.unavailable(ctx, "load revocations", err)
	}
	defer rows.Close()
	snap := &revocationSnapshot{ids: map[string]time.Time{}, users: map[string][2]time.Time{}}
	n := 0
	for rows.Next() {
		var (
			kind, key string
			before    sql.NullTime
			expires   time.Time
		)
		if err := rows.Scan(&kind, &key, &before, &expires); err != nil {
			return nil, s.unavailable(ctx, "load revocations", err)
		}
		if n++; n > maxRevocationSnapshot {
			return &revocationSnapshot{}, nil
		}
		switch kind {
		case "id":
			snap.ids[key] = expires
		case "user":
			snap.users[key] = [2]time.Time{before.Time, expires}
		case "all":
			snap.all = [2]time.Time{before.Time, expires}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, s.unavailable(ctx, "load revocations", err)
	}
	return snap, nil
}

func (s *RevocationStore) unavailable(ctx context.Context, op string, err error) error {
	var st interface{ SQLState() string }
	if errors.As(err, &st) && st.SQLState() == "42P01" { // undefined_table
		err = fmt.Errorf("%w (has Migrate been run?)", err)
	}
	s.p.Log.LogAttrs(ctx, slog.LevelError, "revocation store unavailable",
		slog.String("event", "macaroon_revocation_store_unavailable"), slog.String("op", op),
		slog.String("error", err.Error()))
	return fmt.Errorf("%w: revocations: %s: %w", macaroon.ErrUnavailable, op, err)
}

// Package tokenpg is the PostgreSQL token.Store: tokens shared by every
// server instance that opens the same database. It is a package of its own
// so that importing token for its MemoryStore or Middleware links no
// database code.
//
// Most servers want:
//
//	db, err := sql.Open("pgx", url) // import _ "github.com/jackc/pgx/v5/stdlib"
//	store, err := tokenpg.NewStore(db, token.WithLogger(logger))
//	if err := store.Migrate(ctx); err != nil { ... }
//	mw, err := token.NewMiddleware(store, token.WithLogger(logger))
//
// # Faults
//
// Every Store call is bounded by token.WithStoreTimeout (default
// token.DefaultStoreTimeout, 2 s), the wait for a pooled connection
// included: with the database frozen or partitioned away a call fails within
// that bound with token.ErrUnavailable, which the Middleware answers with
// 503, instead of hanging. Migrate is bounded only by its caller's context,
// as a migration may rightly take longer.
//
// The connection pool is the *sql.DB's and so the caller's to limit. For a
// server instance we recommend db.SetMaxOpenConns(20) (instances times this
// must stay below the server's max_connections), db.SetMaxIdleConns(20),
// db.SetConnMaxIdleTime(5*time.Minute) and db.SetConnMaxLifetime(30*time.Minute):
// requests beyond the limit queue for a connection within the store timeout,
// so an overloaded database answers ErrUnavailable quickly rather than
// piling up connections.
package tokenpg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/lpsec/lpsec/internal/pgmigrate"
	"github.com/lpsec/lpsec/token"
	"github.com/lpsec/lpsec/token/internal/core"
)

// Store is a token.Store in PostgreSQL, shared by every server instance
// that opens the same database: a token issued or revoked by one is seen by
// the others at their next query, as nothing is cached. Every query is
// parameterised; multi-step changes are transactions. Any database error
// makes the operation fail with token.ErrUnavailable, never succeed, and the next
// call tries again on a fresh connection from the *sql.DB pool, so the store
// recovers by itself when the database comes back.
//
// Call Migrate once at startup before anything else.
type Store struct {
	db  *sql.DB
	cfg core.Settings
}

var _ token.Store = (*Store)(nil)

// NewStore returns a store on db, which must use the pgx driver
// (github.com/jackc/pgx/v5/stdlib, driver name "pgx"). Options:
// token.WithClock, token.WithLogger, token.WithMachineLifetime,
// token.WithStoreTimeout; any other, or a nil db, is token.ErrInvalidOption.
//
// The pool is db's: set its limits (see the package documentation for
// recommended values).
func NewStore(db *sql.DB, opts ...token.Option) (*Store, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: tokenpg.NewStore: nil *sql.DB", token.ErrInvalidOption)
	}
	cfg, err := core.Build("tokenpg.NewStore", core.ForStores|core.ForDatabase, opts)
	if err != nil {
		return nil, err
	}
	return &Store{db: db, cfg: cfg}, nil
}

// migrations are applied in order; version N is migrations[N-1]. Released
// entries are never edited, only appended to.
var migrations = [][]string{
	{
		`CREATE TABLE lpsec_token_registration (
			id          bytea PRIMARY KEY CHECK (length(id) = 32),
			tier        text NOT NULL,
			name        text NOT NULL,
			uses        integer NOT NULL CHECK (uses = -1 OR uses > 0),
			uses_left   integer NOT NULL CHECK (uses_left >= -1),
			valid_until timestamptz,
			created     timestamptz NOT NULL,
			revoked     boolean NOT NULL DEFAULT false)`,
		`CREATE TABLE lpsec_token_machine (
			id           bytea PRIMARY KEY CHECK (length(id) = 32),
			machine      text NOT NULL,
			tier         text NOT NULL,
			registration bytea NOT NULL REFERENCES lpsec_token_registration (id),
			created      timestamptz NOT NULL,
			last_seen    timestamptz,
			valid_until  timestamptz,
			revoked      boolean NOT NULL DEFAULT false)`,
		// At most one live token per machine, whatever the code above does.
		`CREATE UNIQUE INDEX lpsec_token_machine_live ON lpsec_token_machine (machine) WHERE NOT revoked`,
		`CREATE TABLE lpsec_token_sync (
			id          bytea PRIMARY KEY CHECK (length(id) = 32),
			tier        text NOT NULL,
			name        text NOT NULL,
			valid_until timestamptz,
			created     timestamptz NOT NULL,
			last_used   timestamptz,
			revoked     boolean NOT NULL DEFAULT false)`,
	},
}

// SchemaVersion is the schema version Migrate brings the database to.
const SchemaVersion = 1

// schema is the store's bookkeeping for internal/pgmigrate; the lock key
// is "lpsectok" in ASCII.
var schema = pgmigrate.Schema{Table: "lpsec_token_schema", Lock: 0x6c70736563746f6b, Versions: migrations}

// Migrate creates or upgrades the store's tables. It is idempotent and safe
// to run from several instances at once (they serialise on an advisory
// lock); a failed run changes nothing. A database whose schema is newer
// than this code knows is refused with token.ErrUnavailable and left
// untouched.
func (s *Store) Migrate(ctx context.Context) error {
	if err := pgmigrate.Migrate(ctx, s.db, schema); err != nil {
		return unavailable("migrate", err)
	}
	return nil
}

// deadline bounds one store call (WithStoreTimeout). When it passes, pgx
// closes the connection the call was using (its context watcher sets a
// past deadline on the socket), so a frozen server cannot hold the call,
// and database/sql drops that connection from the pool.
func (s *Store) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.StoreTimeout)
}

func unavailable(op string, err error) error {
	return fmt.Errorf("%w: %s: %w", token.ErrUnavailable, op, err)
}

func (s *Store) logUnavailable(ctx context.Context, op string, err error) error {
	return core.LogUnavailable(ctx, s.cfg.Log, op, err)
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

func fromNull(t sql.NullTime) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return core.Stamp(t.Time)
}

// IssueRegistration implements Store.
func (s *Store) IssueRegistration(ctx context.Context, r token.Registration) (string, token.Registration, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	now := s.cfg.Clock()
	if err := core.CheckRegistration(r.Tier, r.Name, r.Uses, r.ValidUntil, now); err != nil {
		return "", token.Registration{}, err
	}
	tok, d, err := core.NewToken()
	if err != nil {
		return "", token.Registration{}, err
	}
	rec := token.Registration{ID: d.String(), Tier: r.Tier, Name: r.Name, Uses: r.Uses, UsesLeft: r.Uses,
		ValidUntil: core.Stamp(r.ValidUntil), Created: now}
	_, err = s.db.ExecContext(ctx, `INSERT INTO lpsec_token_registration
		(id, tier, name, uses, uses_left, valid_until, created) VALUES ($1, $2, $3, $4, $4, $5, $6)`,
		d[:], rec.Tier, rec.Name, rec.Uses, nullTime(rec.ValidUntil), rec.Created)
	if err != nil {
		return "", token.Registration{}, s.logUnavailable(ctx, "issue registration", err)
	}
	core.LogIssued(ctx, s.cfg.Log, "registration", d)
	return tok, rec, nil
}

const registrationCols = `id, tier, name, uses, uses_left, valid_until, created, revoked`

func scanRegistration(row interface{ Scan(...any) error }) (token.Registration, error) {
	var (
		r     token.Registration
		id    []byte
		until sql.NullTime
	)
	if err := row.Scan(&id, &r.Tier, &r.Name, &r.Uses, &r.UsesLeft, &until, &r.Created, &r.Revoked); err != nil {
		return token.Registration{}, err
	}
	r.ID = fmt.Sprintf("%x", id)
	r.ValidUntil = fromNull(until)
	r.Created = core.Stamp(r.Created)
	return r, nil
}

// AuthenticateRegistration implements Store.
func (s *Store) AuthenticateRegistration(ctx context.Context, tok string) (token.Registration, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	d, err := core.DigestOf(tok)
	if err != nil {
		return token.Registration{}, err
	}
	now := s.cfg.Clock()
	r, err := scanRegistration(s.db.QueryRowContext(ctx,
		`SELECT `+registrationCols+` FROM lpsec_token_registration WHERE id = $1`, d[:]))
	if errors.Is(err, sql.ErrNoRows) {
		return token.Registration{}, token.ErrUnknown
	}
	if err != nil {
		return token.Registration{}, s.logUnavailable(ctx, "authenticate registration", err)
	}
	if err := core.RegistrationState(r.Revoked, r.ValidUntil, r.UsesLeft, now); err != nil {
		return token.Registration{}, err
	}
	return r, nil
}

// Register implements Store. In one transaction it takes a per-machine
// advisory lock (so two registrations of one machine queue instead of both
// revoking the old token and racing to insert), takes one use with a
// conditional UPDATE (row-locked, so concurrent registrations cannot both
// take the last use), revokes the machine's previous token and inserts the
// new one.
func (s *Store) Register(ctx context.Context, registrationToken, machine string) (string, token.Machine, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rd, tok, md, err := core.PrepareRegister(registrationToken, machine)
	if err != nil {
		return "", token.Machine{}, err
	}
	now := s.cfg.Clock()
	m := token.Machine{ID: md.String(), Machine: machine, Registration: rd.String(),
		Created: now, ValidUntil: s.cfg.MachineValidUntil(now)}

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return "", token.Machine{}, s.logUnavailable(ctx, "register: begin", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`,
		"lpsec_token_machine:"+machine); err != nil {
		return "", token.Machine{}, s.logUnavailable(ctx, "register: lock", err)
	}
	err = tx.QueryRowContext(ctx, `UPDATE lpsec_token_registration
		SET uses_left = CASE WHEN uses_left = -1 THEN -1 ELSE uses_left - 1 END
		WHERE id = $1 AND NOT revoked AND uses_left <> 0 AND (valid_until IS NULL OR valid_until > $2)
		RETURNING tier`, rd[:], now).Scan(&m.Tier)
	if errors.Is(err, sql.ErrNoRows) {
		// Why not: read the row (still in the transaction) to say.
		r, err := scanRegistration(tx.QueryRowContext(ctx,
			`SELECT `+registrationCols+` FROM lpsec_token_registration WHERE id = $1`, rd[:]))
		if errors.Is(err, sql.ErrNoRows) {
			err = token.ErrUnknown
		} else if err != nil {
			return "", token.Machine{}, s.logUnavailable(ctx, "register: classify", err)
		} else if err = core.RegistrationState(r.Revoked, r.ValidUntil, r.UsesLeft, now); err == nil {
			// The row changed between the two statements (READ COMMITTED);
			// refuse rather than retry: the client may try again.
			err = fmt.Errorf("%w: registration token changed concurrently", token.ErrUnavailable)
		}
		core.LogRegisterFailed(ctx, s.cfg.Log, rd, err)
		return "", token.Machine{}, err
	}
	if err != nil {
		return "", token.Machine{}, s.logUnavailable(ctx, "register: use", err)
	}
	var old []byte
	err = tx.QueryRowContext(ctx, `UPDATE lpsec_token_machine SET revoked = true
		WHERE machine = $1 AND NOT revoked RETURNING id`, machine).Scan(&old)
	replaced := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", token.Machine{}, s.logUnavailable(ctx, "register: revoke previous", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO lpsec_token_machine
		(id, machine, tier, registration, created, valid_until) VALUES ($1, $2, $3, $4, $5, $6)`,
		md[:], m.Machine, m.Tier, rd[:], m.Created, nullTime(m.ValidUntil)); err != nil {
		return "", token.Machine{}, s.logUnavailable(ctx, "register: insert", err)
	}
	if err := tx.Commit(); err != nil {
		return "", token.Machine{}, s.logUnavailable(ctx, "register: commit", err)
	}
	core.LogRegistered(ctx, s.cfg.Log, rd, md)
	if replaced {
		var od core.Digest
		copy(od[:], old)
		core.LogReplaced(ctx, s.cfg.Log, od, md)
	}
	return tok, m, nil
}

const machineCols = `id, machine, tier, registration, created, last_seen, valid_until, revoked`

func scanMachine(row interface{ Scan(...any) error }) (token.Machine, error) {
	var (
		m           token.Machine
		id, reg     []byte
		seen, until sql.NullTime
	)
	if err := row.Scan(&id, &m.Machine, &m.Tier, &reg, &m.Created, &seen, &until, &m.Revoked); err != nil {
		return token.Machine{}, err
	}
	m.ID = fmt.Sprintf("%x", id)
	m.Registration = fmt.Sprintf("%x", reg)
	m.Created = core.Stamp(m.Created)
	m.LastSeen = fromNull(seen)
	m.ValidUntil = fromNull(until)
	return m, nil
}

// AuthenticateMachine implements Store in one round trip, success or
// not: a statement that reads the record and, when the token is live and
// LastSeen is a minute old or more, records LastSeen.
func (s *Store) AuthenticateMachine(ctx context.Context, tok string) (token.Machine, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	d, err := core.DigestOf(tok)
	if err != nil {
		return token.Machine{}, err
	}
	now := s.cfg.Clock()
	m, err := scanMachine(s.db.QueryRowContext(ctx, `WITH u AS (
			UPDATE lpsec_token_machine SET last_seen = $2
			WHERE id = $1 AND NOT revoked AND (valid_until IS NULL OR valid_until > $2)
				AND (last_seen IS NULL OR last_seen <= $3)
			RETURNING last_seen)
		SELECT id, machine, tier, registration, created,
			coalesce((SELECT last_seen FROM u), m.last_seen), valid_until, revoked
		FROM lpsec_token_machine m WHERE id = $1`, d[:], now, now.Add(-core.LastSeenEvery)))
	if errors.Is(err, sql.ErrNoRows) {
		return token.Machine{}, token.ErrUnknown
	}
	if err != nil {
		return token.Machine{}, s.logUnavailable(ctx, "authenticate machine", err)
	}
	if err := core.State(m.Revoked, m.ValidUntil, now); err != nil {
		return token.Machine{}, err
	}
	return m, nil
}

// IssueSync implements Store.
func (s *Store) IssueSync(ctx context.Context, sy token.Sync) (string, token.Sync, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	now := s.cfg.Clock()
	if err := core.CheckSync(sy.Tier, sy.Name, sy.ValidUntil, now); err != nil {
		return "", token.Sync{}, err
	}
	tok, d, err := core.NewToken()
	if err != nil {
		return "", token.Sync{}, err
	}
	rec := token.Sync{ID: d.String(), Tier: sy.Tier, Name: sy.Name, ValidUntil: core.Stamp(sy.ValidUntil), Created: now}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO lpsec_token_sync (id, tier, name, valid_until, created)
		VALUES ($1, $2, $3, $4, $5)`, d[:], rec.Tier, rec.Name, nullTime(rec.ValidUntil), rec.Created); err != nil {
		return "", token.Sync{}, s.logUnavailable(ctx, "issue sync", err)
	}
	core.LogIssued(ctx, s.cfg.Log, "sync", d)
	return tok, rec, nil
}

const syncCols = `id, tier, name, valid_until, created, last_used, revoked`

func scanSync(row interface{ Scan(...any) error }) (token.Sync, error) {
	var (
		sy          token.Sync
		id          []byte
		until, used sql.NullTime
	)
	if err := row.Scan(&id, &sy.Tier, &sy.Name, &until, &sy.Created, &used, &sy.Revoked); err != nil {
		return token.Sync{}, err
	}
	sy.ID = fmt.Sprintf("%x", id)
	sy.Created = core.Stamp(sy.Created)
	sy.ValidUntil = fromNull(until)
	sy.LastUsed = fromNull(used)
	return sy, nil
}

// AuthenticateSync implements Store, like AuthenticateMachine.
func (s *Store) AuthenticateSync(ctx context.Context, tok string) (token.Sync, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	d, err := core.DigestOf(tok)
	if err != nil {
		return token.Sync{}, err
	}
	now := s.cfg.Clock()
	sy, err := scanSync(s.db.QueryRowContext(ctx, `WITH u AS (
			UPDATE lpsec_token_sync SET last_used = $2
			WHERE id = $1 AND NOT revoked AND (valid_until IS NULL OR valid_until > $2)
				AND (last_used IS NULL OR last_used <= $3)
			RETURNING last_used)
		SELECT id, tier, name, valid_until, created,
			coalesce((SELECT last_used FROM u), s.last_used), revoked
		FROM lpsec_token_sync s WHERE id = $1`, d[:], now, now.Add(-core.LastSeenEvery)))
	if errors.Is(err, sql.ErrNoRows) {
		return token.Sync{}, token.ErrUnknown
	}
	if err != nil {
		return token.Sync{}, s.logUnavailable(ctx, "authenticate sync", err)
	}
	if err := core.State(sy.Revoked, sy.ValidUntil, now); err != nil {
		return token.Sync{}, err
	}
	return sy, nil
}

// The table names are constants, never input.
func (s *Store) revoke(ctx context.Context, kind, table, id string) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	d, err := core.ParseID(id)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `UPDATE `+table+` SET revoked = true WHERE id = $1`, d[:])
	if err != nil {
		return s.logUnavailable(ctx, "revoke "+kind, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.logUnavailable(ctx, "revoke "+kind, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: no %s token with this ID", token.ErrUnknown, kind)
	}
	core.LogRevoked(ctx, s.cfg.Log, kind, d)
	return nil
}

// RevokeRegistration implements Store.
func (s *Store) RevokeRegistration(ctx context.Context, id string) error {
	return s.revoke(ctx, "registration", "lpsec_token_registration", id)
}

// RevokeMachine implements Store.
func (s *Store) RevokeMachine(ctx context.Context, id string) error {
	return s.revoke(ctx, "machine", "lpsec_token_machine", id)
}

// RevokeSync implements Store.
func (s *Store) RevokeSync(ctx context.Context, id string) error {
	return s.revoke(ctx, "sync", "lpsec_token_sync", id)
}

func list[T any](ctx context.Context, s *Store, op, query string, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, query)
	if err != nil {
		return nil, s.logUnavailable(ctx, op, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, s.logUnavailable(ctx, op, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, s.logUnavailable(ctx, op, err)
	}
	return out, nil
}

// ListRegistrations implements Store.
func (s *Store) ListRegistrations(ctx context.Context) ([]token.Registration, error) {
	return list(ctx, s, "list registrations",
		`SELECT `+registrationCols+` FROM lpsec_token_registration ORDER BY created, id`, scanRegistration)
}

// ListMachines implements Store.
func (s *Store) ListMachines(ctx context.Context) ([]token.Machine, error) {
	return list(ctx, s, "list machines",
		`SELECT `+machineCols+` FROM lpsec_token_machine ORDER BY created, id`, scanMachine)
}

// ListSyncs implements Store.
func (s *Store) ListSyncs(ctx context.Context) ([]token.Sync, error) {
	return list(ctx, s, "list syncs",
		`SELECT `+syncCols+` FROM lpsec_token_sync ORDER BY created, id`, scanSync)
}

package token

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// PostgresStore is a Store in PostgreSQL, shared by every server instance
// that opens the same database: a token issued or revoked by one is seen by
// the others at their next query, as nothing is cached. Every query is
// parameterised; multi-step changes are transactions. Any database error
// makes the operation fail with ErrUnavailable, never succeed, and the next
// call tries again on a fresh connection from the *sql.DB pool, so the store
// recovers by itself when the database comes back.
//
// Call Migrate once at startup before anything else.
type PostgresStore struct {
	db  *sql.DB
	cfg config
}

var _ Store = (*PostgresStore)(nil)

// NewPostgresStore returns a store on db, which must use the pgx driver
// (github.com/jackc/pgx/v5/stdlib, driver name "pgx"). Options: WithClock,
// WithLogger, WithMachineLifetime.
func NewPostgresStore(db *sql.DB, opts ...Option) *PostgresStore {
	return &PostgresStore{db: db, cfg: newConfig(opts)}
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

// migrateLock is the key of the advisory lock that serialises Migrate
// across instances starting at once ("lpsectok" in ASCII).
const migrateLock = 0x6c70736563746f6b

// Migrate creates or upgrades the store's tables. It is idempotent and safe
// to run from several instances at once. A database whose schema is newer
// than this code knows is refused with ErrUnavailable.
func (s *PostgresStore) Migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return unavailable("migrate: begin", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrateLock)); err != nil {
		return unavailable("migrate: lock", err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS lpsec_token_schema (
		version integer PRIMARY KEY,
		applied timestamptz NOT NULL DEFAULT now())`); err != nil {
		return unavailable("migrate: schema table", err)
	}
	var v int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM lpsec_token_schema`).Scan(&v); err != nil {
		return unavailable("migrate: read version", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("%w: migrate: database schema version %d is newer than this code's %d", ErrUnavailable, v, len(migrations))
	}
	for ; v < len(migrations); v++ {
		for _, stmt := range migrations[v] {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return unavailable(fmt.Sprintf("migrate: version %d", v+1), err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO lpsec_token_schema (version) VALUES ($1)`, v+1); err != nil {
			return unavailable("migrate: record version", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return unavailable("migrate: commit", err)
	}
	return nil
}

func unavailable(op string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
}

func (s *PostgresStore) logUnavailable(ctx context.Context, op string, err error) error {
	s.cfg.log.LogAttrs(ctx, slog.LevelError, "token store unavailable",
		slog.String("event", evUnavailable), slog.String("op", op), slog.String("error", err.Error()))
	return unavailable(op, err)
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
	return stamp(t.Time)
}

// IssueRegistration implements Store.
func (s *PostgresStore) IssueRegistration(ctx context.Context, r Registration) (string, Registration, error) {
	now := s.cfg.clock()
	if err := r.check(now); err != nil {
		return "", Registration{}, err
	}
	tok, d, err := newToken()
	if err != nil {
		return "", Registration{}, err
	}
	rec := Registration{ID: d.String(), Tier: r.Tier, Name: r.Name, Uses: r.Uses, UsesLeft: r.Uses,
		ValidUntil: stamp(r.ValidUntil), Created: now}
	_, err = s.db.ExecContext(ctx, `INSERT INTO lpsec_token_registration
		(id, tier, name, uses, uses_left, valid_until, created) VALUES ($1, $2, $3, $4, $4, $5, $6)`,
		d[:], rec.Tier, rec.Name, rec.Uses, nullTime(rec.ValidUntil), rec.Created)
	if err != nil {
		return "", Registration{}, s.logUnavailable(ctx, "issue registration", err)
	}
	logIssued(ctx, s.cfg.log, "registration", d)
	return tok, rec, nil
}

const registrationCols = `id, tier, name, uses, uses_left, valid_until, created, revoked`

func scanRegistration(row interface{ Scan(...any) error }) (Registration, error) {
	var (
		r     Registration
		id    []byte
		until sql.NullTime
	)
	if err := row.Scan(&id, &r.Tier, &r.Name, &r.Uses, &r.UsesLeft, &until, &r.Created, &r.Revoked); err != nil {
		return Registration{}, err
	}
	r.ID = fmt.Sprintf("%x", id)
	r.ValidUntil = fromNull(until)
	r.Created = stamp(r.Created)
	return r, nil
}

// AuthenticateRegistration implements Store.
func (s *PostgresStore) AuthenticateRegistration(ctx context.Context, tok string) (Registration, error) {
	d, err := digestOf(tok)
	if err != nil {
		return Registration{}, err
	}
	now := s.cfg.clock()
	r, err := scanRegistration(s.db.QueryRowContext(ctx,
		`SELECT `+registrationCols+` FROM lpsec_token_registration WHERE id = $1`, d[:]))
	if errors.Is(err, sql.ErrNoRows) {
		return Registration{}, ErrUnknown
	}
	if err != nil {
		return Registration{}, s.logUnavailable(ctx, "authenticate registration", err)
	}
	if err := registrationState(&r, now); err != nil {
		return Registration{}, err
	}
	return r, nil
}

// Register implements Store. In one transaction it takes a per-machine
// advisory lock (so two registrations of one machine queue instead of both
// revoking the old token and racing to insert), takes one use with a
// conditional UPDATE (row-locked, so concurrent registrations cannot both
// take the last use), revokes the machine's previous token and inserts the
// new one.
func (s *PostgresStore) Register(ctx context.Context, registrationToken, machine string) (string, Machine, error) {
	rd, tok, md, err := prepareRegister(registrationToken, machine)
	if err != nil {
		return "", Machine{}, err
	}
	now := s.cfg.clock()
	m := Machine{ID: md.String(), Machine: machine, Registration: rd.String(),
		Created: now, ValidUntil: s.cfg.machineValidUntil(now)}

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return "", Machine{}, s.logUnavailable(ctx, "register: begin", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`,
		"lpsec_token_machine:"+machine); err != nil {
		return "", Machine{}, s.logUnavailable(ctx, "register: lock", err)
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
			err = ErrUnknown
		} else if err != nil {
			return "", Machine{}, s.logUnavailable(ctx, "register: classify", err)
		} else if err = registrationState(&r, now); err == nil {
			// The row changed between the two statements (READ COMMITTED);
			// refuse rather than retry: the client may try again.
			err = fmt.Errorf("%w: registration token changed concurrently", ErrUnavailable)
		}
		logRegisterFailed(ctx, s.cfg.log, rd, err)
		return "", Machine{}, err
	}
	if err != nil {
		return "", Machine{}, s.logUnavailable(ctx, "register: use", err)
	}
	var old []byte
	err = tx.QueryRowContext(ctx, `UPDATE lpsec_token_machine SET revoked = true
		WHERE machine = $1 AND NOT revoked RETURNING id`, machine).Scan(&old)
	replaced := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", Machine{}, s.logUnavailable(ctx, "register: revoke previous", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO lpsec_token_machine
		(id, machine, tier, registration, created, valid_until) VALUES ($1, $2, $3, $4, $5, $6)`,
		md[:], m.Machine, m.Tier, rd[:], m.Created, nullTime(m.ValidUntil)); err != nil {
		return "", Machine{}, s.logUnavailable(ctx, "register: insert", err)
	}
	if err := tx.Commit(); err != nil {
		return "", Machine{}, s.logUnavailable(ctx, "register: commit", err)
	}
	logRegistered(ctx, s.cfg.log, rd, md)
	if replaced {
		var od digest
		copy(od[:], old)
		logReplaced(ctx, s.cfg.log, od, md)
	}
	return tok, m, nil
}

const machineCols = `id, machine, tier, registration, created, last_seen, valid_until, revoked`

func scanMachine(row interface{ Scan(...any) error }) (Machine, error) {
	var (
		m           Machine
		id, reg     []byte
		seen, until sql.NullTime
	)
	if err := row.Scan(&id, &m.Machine, &m.Tier, &reg, &m.Created, &seen, &until, &m.Revoked); err != nil {
		return Machine{}, err
	}
	m.ID = fmt.Sprintf("%x", id)
	m.Registration = fmt.Sprintf("%x", reg)
	m.Created = stamp(m.Created)
	m.LastSeen = fromNull(seen)
	m.ValidUntil = fromNull(until)
	return m, nil
}

// AuthenticateMachine implements Store in one round trip, success or
// not: a statement that reads the record and, when the token is live and
// LastSeen is a minute old or more, records LastSeen.
func (s *PostgresStore) AuthenticateMachine(ctx context.Context, tok string) (Machine, error) {
	d, err := digestOf(tok)
	if err != nil {
		return Machine{}, err
	}
	now := s.cfg.clock()
	m, err := scanMachine(s.db.QueryRowContext(ctx, `WITH u AS (
			UPDATE lpsec_token_machine SET last_seen = $2
			WHERE id = $1 AND NOT revoked AND (valid_until IS NULL OR valid_until > $2)
				AND (last_seen IS NULL OR last_seen <= $3)
			RETURNING last_seen)
		SELECT id, machine, tier, registration, created,
			coalesce((SELECT last_seen FROM u), m.last_seen), valid_until, revoked
		FROM lpsec_token_machine m WHERE id = $1`, d[:], now, now.Add(-lastSeenEvery)))
	if errors.Is(err, sql.ErrNoRows) {
		return Machine{}, ErrUnknown
	}
	if err != nil {
		return Machine{}, s.logUnavailable(ctx, "authenticate machine", err)
	}
	if err := state(m.Revoked, m.ValidUntil, now); err != nil {
		return Machine{}, err
	}
	return m, nil
}

// IssueSync implements Store.
func (s *PostgresStore) IssueSync(ctx context.Context, sy Sync) (string, Sync, error) {
	now := s.cfg.clock()
	if err := sy.check(now); err != nil {
		return "", Sync{}, err
	}
	tok, d, err := newToken()
	if err != nil {
		return "", Sync{}, err
	}
	rec := Sync{ID: d.String(), Tier: sy.Tier, Name: sy.Name, ValidUntil: stamp(sy.ValidUntil), Created: now}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO lpsec_token_sync (id, tier, name, valid_until, created)
		VALUES ($1, $2, $3, $4, $5)`, d[:], rec.Tier, rec.Name, nullTime(rec.ValidUntil), rec.Created); err != nil {
		return "", Sync{}, s.logUnavailable(ctx, "issue sync", err)
	}
	logIssued(ctx, s.cfg.log, "sync", d)
	return tok, rec, nil
}

const syncCols = `id, tier, name, valid_until, created, last_used, revoked`

func scanSync(row interface{ Scan(...any) error }) (Sync, error) {
	var (
		sy          Sync
		id          []byte
		until, used sql.NullTime
	)
	if err := row.Scan(&id, &sy.Tier, &sy.Name, &until, &sy.Created, &used, &sy.Revoked); err != nil {
		return Sync{}, err
	}
	sy.ID = fmt.Sprintf("%x", id)
	sy.Created = stamp(sy.Created)
	sy.ValidUntil = fromNull(until)
	sy.LastUsed = fromNull(used)
	return sy, nil
}

// AuthenticateSync implements Store, like AuthenticateMachine.
func (s *PostgresStore) AuthenticateSync(ctx context.Context, tok string) (Sync, error) {
	d, err := digestOf(tok)
	if err != nil {
		return Sync{}, err
	}
	now := s.cfg.clock()
	sy, err := scanSync(s.db.QueryRowContext(ctx, `WITH u AS (
			UPDATE lpsec_token_sync SET last_used = $2
			WHERE id = $1 AND NOT revoked AND (valid_until IS NULL OR valid_until > $2)
				AND (last_used IS NULL OR last_used <= $3)
			RETURNING last_used)
		SELECT id, tier, name, valid_until, created,
			coalesce((SELECT last_used FROM u), s.last_used), revoked
		FROM lpsec_token_sync s WHERE id = $1`, d[:], now, now.Add(-lastSeenEvery)))
	if errors.Is(err, sql.ErrNoRows) {
		return Sync{}, ErrUnknown
	}
	if err != nil {
		return Sync{}, s.logUnavailable(ctx, "authenticate sync", err)
	}
	if err := state(sy.Revoked, sy.ValidUntil, now); err != nil {
		return Sync{}, err
	}
	return sy, nil
}

// The table names are constants, never input.
func (s *PostgresStore) revoke(ctx context.Context, kind, table, id string) error {
	d, err := parseID(id)
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
		return fmt.Errorf("%w: no %s token with this ID", ErrUnknown, kind)
	}
	logRevoked(ctx, s.cfg.log, kind, d)
	return nil
}

// RevokeRegistration implements Store.
func (s *PostgresStore) RevokeRegistration(ctx context.Context, id string) error {
	return s.revoke(ctx, "registration", "lpsec_token_registration", id)
}

// RevokeMachine implements Store.
func (s *PostgresStore) RevokeMachine(ctx context.Context, id string) error {
	return s.revoke(ctx, "machine", "lpsec_token_machine", id)
}

// RevokeSync implements Store.
func (s *PostgresStore) RevokeSync(ctx context.Context, id string) error {
	return s.revoke(ctx, "sync", "lpsec_token_sync", id)
}

func list[T any](ctx context.Context, s *PostgresStore, op, query string, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
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
func (s *PostgresStore) ListRegistrations(ctx context.Context) ([]Registration, error) {
	return list(ctx, s, "list registrations",
		`SELECT `+registrationCols+` FROM lpsec_token_registration ORDER BY created, id`, scanRegistration)
}

// ListMachines implements Store.
func (s *PostgresStore) ListMachines(ctx context.Context) ([]Machine, error) {
	return list(ctx, s, "list machines",
		`SELECT `+machineCols+` FROM lpsec_token_machine ORDER BY created, id`, scanMachine)
}

// ListSyncs implements Store.
func (s *PostgresStore) ListSyncs(ctx context.Context) ([]Sync, error) {
	return list(ctx, s, "list syncs",
		`SELECT `+syncCols+` FROM lpsec_token_sync ORDER BY created, id`, scanSync)
}

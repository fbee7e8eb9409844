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
//	go store.Follow(ctx) // admin listings from memory (see below)
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
//
// # Authentication cache
//
// By default every AuthenticateMachine is one database round trip. With
// token.WithAuthCache(ttl, size) the store remembers machine tokens that
// authenticated for ttl (at most token.MaxAuthCacheTTL), keyed by the
// token's digest. The bound on revocation: revoking, releasing or replacing
// a machine token through this Store refuses it here at once; through
// another instance sharing the database, it is refused here within ttl.
// While Follow runs the bound is the notification's delivery instead: see
// "Listings from memory". Expiry (ValidUntil) is checked on every hit, so it is exact. Failed
// authentications are never cached. A hit does not write LastSeen, which
// may therefore lag by up to ttl. Registration and sync tokens are not
// cached.
//
// # Listings from memory
//
// By default ListRegistrations and ListSyncs read their tables on every
// call. While Store.Follow runs, the store keeps both listings in memory
// and rereads a table after it changed, and at least once a second: the
// tables' triggers NOTIFY on every committed change, made by any instance
// (or by hand in psql), and Follow listens on a connection of its own. The
// bound: a change made through this Store is listed by it at once; one
// made elsewhere as soon as its notification arrives, which is after the
// commit and normally within a millisecond. Two columns are not notified,
// because they change with every registration and sync and a NOTIFY
// serialises commits: UsesLeft and LastUsed changed elsewhere are listed
// within a second. Follow proves delivery by notifying itself every quiet
// second and counts as live only once such a notification has come back,
// and for two seconds after the last one received; if notifications stop
// (the connection breaks, the server or network goes silent, a proxy
// drops LISTEN), the listings are read from the database again within
// those two seconds, until Follow is back.
// Authentication never reads these copies.
//
// Follow also tightens token.WithAuthCache: a machine token revoked,
// released, replaced or expired through another instance (or by hand) is
// evicted from this store's cache as soon as its notification arrives, and
// the cache answers only while notifications flow: when they stop, every
// authentication asks the database, and records read before the gap are
// never trusted again. The ttl then bounds only how late LastSeen is
// written.
package tokenpg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lpsec/lpsec/internal/pgmigrate"
	"github.com/lpsec/lpsec/internal/pgnotify"
	"github.com/lpsec/lpsec/token"
	"github.com/lpsec/lpsec/token/internal/core"
)

// Store is a token.Store in PostgreSQL, shared by every server instance
// that opens the same database: a token issued or revoked by one is seen by
// the others at their next query, as nothing is cached unless
// token.WithAuthCache is given or Follow runs (see the package
// documentation for their bounds). Every query is
// parameterised; multi-step changes are transactions. Any database error
// makes the operation fail with token.ErrUnavailable, never succeed, and the next
// call tries again on a fresh connection from the *sql.DB pool, so the store
// recovers by itself when the database comes back.
//
// Size: one row per issued registration and sync token; per machine name
// the live row and at most token.KeepReplaced revoked ones, plus revoked
// rows younger than the retention (PruneMachines deletes older ones through
// a partial index on revoked_at). ListMachines is a keyset scan of one page
// on the unique index on seq: no sort, no table scan, no lock that
// authentication waits on.
//
// Call Migrate once at startup before anything else.
type Store struct {
	db    *sql.DB
	cfg   core.Settings
	cache *authCache // nil unless token.WithAuthCache

	// Listings kept while Follow runs.
	follower      *pgnotify.Follower
	registrations *pgnotify.Cached[[]token.Registration]
	syncs         *pgnotify.Cached[[]token.Sync]
}

var _ token.Store = (*Store)(nil)

// NewStore returns a store on db, which must use the pgx driver
// (github.com/jackc/pgx/v5/stdlib, driver name "pgx"). Options:
// token.WithClock, token.WithLogger, token.WithMachineLifetime,
// token.WithRetryWindow, token.WithMachineRetention, token.WithStoreTimeout,
// token.WithAuthCache; any other, or a nil db, is token.ErrInvalidOption.
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
	f := pgnotify.New(changesChannel, 0, cfg.Log)
	s := &Store{db: db, cfg: cfg, cache: newAuthCache(cfg.AuthCacheTTL, cfg.AuthCacheSize), follower: f,
		registrations: pgnotify.NewCached[[]token.Registration](f, listingMaxAge),
		syncs:         pgnotify.NewCached[[]token.Sync](f, listingMaxAge)}
	f.OnNotification(s.notified)
	return s, nil
}

// listingMaxAge bounds how long a listing kept by Follow may be served:
// UsesLeft and LastUsed, not notified, lag another instance's
// registrations and syncs by at most this.
const listingMaxAge = time.Second

const (
	// changesChannel is what the version 3 triggers NOTIFY, with the
	// changed table's name or, for a machine token that stops
	// authenticating, machinePayload and its ID.
	changesChannel = "lpsec_token_changed"
	machinePayload = "machine:"
)

// notified routes one notification: a listed table's invalidates the
// listings; a machine token's evicts that token from the authentication
// cache and leaves the listings alone.
func (s *Store) notified(payload string) (listings bool) {
	id, ok := strings.CutPrefix(payload, machinePayload)
	switch {
	case ok:
		if d, err := core.ParseID(id); err == nil && s.cache != nil {
			s.cache.evict(d)
		}
	case payload == "lpsec_token_machine": // truncated
		if s.cache != nil {
			s.cache.clear()
		}
	case payload == "lpsec_token_registration", payload == "lpsec_token_sync":
		return true
	}
	return false
}

// Follow keeps ListRegistrations and ListSyncs answered from memory while
// it runs (see "Listings from memory" in the package documentation) and
// returns ctx's error when ctx is done. It uses one database connection of
// its own, outside db's pool, and reconnects by itself; it fails at once
// only if db does not use the pgx driver. Run Migrate first, and at most
// one Follow per Store:
//
//	go store.Follow(ctx)
func (s *Store) Follow(ctx context.Context) error {
	if err := s.follower.Run(ctx, s.db); err != nil {
		return fmt.Errorf("tokenpg: Follow: %w", err)
	}
	return nil
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
	{
		// Version 2 (issue 14): external registrations, possession-bound
		// re-registration with retry keys, bounded history, keyset pages.
		`ALTER TABLE lpsec_token_machine ALTER COLUMN registration DROP NOT NULL`,
		`ALTER TABLE lpsec_token_machine
			ADD COLUMN issuer       text,
			ADD COLUMN external_ref text,
			ADD COLUMN seq          bigint GENERATED ALWAYS AS IDENTITY,
			ADD COLUMN revoked_at   timestamptz,
			ADD COLUMN retry_key    bytea CHECK (retry_key IS NULL OR length(retry_key) = 32),
			ADD COLUMN retry_until  timestamptz`,
		`ALTER TABLE lpsec_token_machine ADD CONSTRAINT lpsec_token_machine_source
			CHECK ((registration IS NULL) <> (issuer IS NULL))`,
		`UPDATE lpsec_token_machine SET revoked_at = now() WHERE revoked`,
		// Keyset pagination (ListMachines) and per-name history (Register).
		`CREATE UNIQUE INDEX lpsec_token_machine_seq ON lpsec_token_machine (seq)`,
		`CREATE INDEX lpsec_token_machine_name ON lpsec_token_machine (machine, seq)`,
		`CREATE INDEX lpsec_token_machine_revoked_at ON lpsec_token_machine (revoked_at) WHERE revoked`,
	},
	{
		// Version 3: committed changes to the listed tables are notified,
		// for Follow; PostgreSQL folds a transaction's identical
		// notifications into one. Not notified: uses_left and last_used,
		// which change with every registration and sync. Each NOTIFY
		// serialises its commit on PostgreSQL's notification lock; on the
		// registration path that cost every registration on a shared
		// token 1.4-1.8x its time (row lock held longer). Listings
		// therefore reread those two columns after listingMaxAge.
		`CREATE FUNCTION lpsec_token_notify() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			PERFORM pg_notify('` + changesChannel + `', TG_TABLE_NAME);
			RETURN NULL;
		END $$`,
		`CREATE TRIGGER lpsec_token_registration_added AFTER INSERT OR DELETE
			ON lpsec_token_registration FOR EACH ROW EXECUTE FUNCTION lpsec_token_notify()`,
		// Every column but uses_left (a new column must be added here).
		`CREATE TRIGGER lpsec_token_registration_changed AFTER UPDATE
			ON lpsec_token_registration FOR EACH ROW
			WHEN ((OLD.id, OLD.tier, OLD.name, OLD.uses, OLD.valid_until, OLD.created, OLD.revoked)
				IS DISTINCT FROM (NEW.id, NEW.tier, NEW.name, NEW.uses, NEW.valid_until, NEW.created, NEW.revoked))
			EXECUTE FUNCTION lpsec_token_notify()`,
		`CREATE TRIGGER lpsec_token_registration_truncated AFTER TRUNCATE
			ON lpsec_token_registration FOR EACH STATEMENT EXECUTE FUNCTION lpsec_token_notify()`,
		`CREATE TRIGGER lpsec_token_sync_added AFTER INSERT OR DELETE
			ON lpsec_token_sync FOR EACH ROW EXECUTE FUNCTION lpsec_token_notify()`,
		// Every column but last_used (a new column must be added here).
		`CREATE TRIGGER lpsec_token_sync_changed AFTER UPDATE
			ON lpsec_token_sync FOR EACH ROW
			WHEN ((OLD.id, OLD.tier, OLD.name, OLD.valid_until, OLD.created, OLD.revoked)
				IS DISTINCT FROM (NEW.id, NEW.tier, NEW.name, NEW.valid_until, NEW.created, NEW.revoked))
			EXECUTE FUNCTION lpsec_token_notify()`,
		`CREATE TRIGGER lpsec_token_sync_truncated AFTER TRUNCATE
			ON lpsec_token_sync FOR EACH STATEMENT EXECUTE FUNCTION lpsec_token_notify()`,
		// A machine token whose authentication may answer differently
		// (revoked, released, replaced, its expiry, tier or another column
		// edited, or a live row deleted) is notified by its ID, for the
		// authentication cache.
		`CREATE FUNCTION lpsec_token_machine_notify() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			PERFORM pg_notify('` + changesChannel + `', '` + machinePayload + `' || encode(OLD.id, 'hex'));
			RETURN NULL;
		END $$`,
		// Every column AuthenticateMachine checks or returns, except
		// last_seen (written by authentication itself); a new such
		// column must be added here.
		`CREATE TRIGGER lpsec_token_machine_changed
			AFTER UPDATE OF id, machine, tier, registration, created, valid_until, revoked, issuer, external_ref
			ON lpsec_token_machine FOR EACH ROW
			WHEN ((OLD.id, OLD.machine, OLD.tier, OLD.registration, OLD.created, OLD.valid_until, OLD.revoked, OLD.issuer, OLD.external_ref)
				IS DISTINCT FROM (NEW.id, NEW.machine, NEW.tier, NEW.registration, NEW.created, NEW.valid_until, NEW.revoked, NEW.issuer, NEW.external_ref))
			EXECUTE FUNCTION lpsec_token_machine_notify()`,
		`CREATE TRIGGER lpsec_token_machine_deleted AFTER DELETE
			ON lpsec_token_machine FOR EACH ROW WHEN (NOT OLD.revoked)
			EXECUTE FUNCTION lpsec_token_machine_notify()`,
		`CREATE TRIGGER lpsec_token_machine_truncated AFTER TRUNCATE
			ON lpsec_token_machine FOR EACH STATEMENT EXECUTE FUNCTION lpsec_token_notify()`,
	},
}

// SchemaVersion is the schema version Migrate brings the database to.
const SchemaVersion = 3

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
	defer s.follower.Changed() // after the commit, so that this Store lists it at once
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

// Register implements Store. A new machine name costs two round trips and
// no explicit transaction: a read of the name's live record, then one
// autocommit statement that takes a use (an UPDATE ... WHERE uses_left > 0,
// which re-checks the count after any wait, so counts stay exact) and
// inserts the machine; a concurrent first registration of the same name
// loses on the unique index as ErrMachineTaken with its use undone. The
// registration token's row is locked only while that statement runs, and
// an Unlimited token's row is only read, never locked, so a fleet enrolling
// at once on one token does not queue behind it. A name that has a record
// (rotation, retry, expired token) takes a transaction that row-locks that
// record, revokes it, prunes the name's history and inserts.
func (s *Store) Register(ctx context.Context, registrationToken, machine string, opts ...token.RegisterOption) (string, token.Machine, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	defer s.follower.Changed() // uses_left
	p, err := core.BuildRegister(opts)
	if err != nil {
		return "", token.Machine{}, err
	}
	rd, tok, md, err := core.PrepareRegister(registrationToken, machine)
	if err != nil {
		return "", token.Machine{}, err
	}
	now := s.cfg.Clock()
	m := token.Machine{ID: md.String(), Machine: machine, Registration: rd.String(),
		Created: now, ValidUntil: s.cfg.MachineValidUntil(now)}
	in := insert{m: m, md: md, p: p, source: "registration", regID: rd.String(), tok: tok}
	in.stmt = func(ctx context.Context, tx querier, dec core.Decision, key any, until any) (string, error) {
		// A retry takes no use; a fresh registration or a rotation takes
		// one from a limited token (row-locked until COMMIT) or none from
		// an unlimited one (a plain read).
		consume := dec != core.Retry
		var tier string
		err := tx.QueryRowContext(ctx, `WITH u AS (
				UPDATE lpsec_token_registration SET uses_left = uses_left - 1
				WHERE $8::boolean AND id = $3 AND uses_left > 0 AND NOT revoked
					AND (valid_until IS NULL OR valid_until > $4)
				RETURNING tier),
			r AS (SELECT tier FROM u
				UNION ALL
				SELECT tier FROM lpsec_token_registration
				WHERE id = $3 AND (uses_left = -1 OR NOT $8::boolean) AND NOT revoked
					AND (valid_until IS NULL OR valid_until > $4))
			INSERT INTO lpsec_token_machine
				(id, machine, tier, registration, created, valid_until, retry_key, retry_until)
			SELECT $1::bytea, $2::text, tier, $3::bytea, $4::timestamptz, $5::timestamptz, $6::bytea, $7::timestamptz FROM r
			RETURNING tier`,
			md[:], machine, rd[:], now, nullTime(m.ValidUntil), key, until, consume).Scan(&tier)
		if errors.Is(err, sql.ErrNoRows) {
			if err := s.registrationRefusal(ctx, tx, rd, now, consume); err != nil {
				return "", err
			}
			// The row changed between the two statements (READ COMMITTED);
			// refuse rather than retry: the client may try again.
			return "", fmt.Errorf("%w: registration token changed concurrently", token.ErrUnavailable)
		}
		return tier, err
	}
	in.precheck = func(ctx context.Context, tx querier, dec core.Decision) error {
		// Say why the credential is refused before saying the name is
		// taken: a caller without a valid token learns nothing about names.
		return s.registrationRefusal(ctx, tx, rd, now, dec != core.Retry)
	}
	return s.register(ctx, in, now)
}

// registrationRefusal says why a registration token cannot be used now;
// nil if it can.
func (s *Store) registrationRefusal(ctx context.Context, tx querier, rd core.Digest, now time.Time, consume bool) error {
	r, err := scanRegistration(tx.QueryRowContext(ctx,
		`SELECT `+registrationCols+` FROM lpsec_token_registration WHERE id = $1`, rd[:]))
	if errors.Is(err, sql.ErrNoRows) {
		core.LogRegisterFailed(ctx, s.cfg.Log, rd, token.ErrUnknown)
		return token.ErrUnknown
	}
	if err != nil {
		return s.logUnavailable(ctx, "register: classify", err)
	}
	if err = core.State(r.Revoked, r.ValidUntil, now); err == nil && consume && r.UsesLeft == 0 {
		err = token.ErrExhausted
	}
	if err != nil {
		core.LogRegisterFailed(ctx, s.cfg.Log, rd, err)
	}
	return err
}

// RegisterExternal implements Store, in the same transaction shape as
// Register without a registration token.
func (s *Store) RegisterExternal(ctx context.Context, ext token.External, machine string, opts ...token.RegisterOption) (string, token.Machine, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	p, err := core.BuildRegister(opts)
	if err != nil {
		return "", token.Machine{}, err
	}
	if err := core.CheckExternal(ext.Issuer, ext.Ref, ext.Tier); err != nil {
		return "", token.Machine{}, err
	}
	if err := core.CheckField("machine", machine); err != nil {
		return "", token.Machine{}, err
	}
	tok, md, err := core.NewToken()
	if err != nil {
		return "", token.Machine{}, err
	}
	now := s.cfg.Clock()
	m := token.Machine{ID: md.String(), Machine: machine, Tier: ext.Tier, Issuer: ext.Issuer, ExternalRef: ext.Ref,
		Created: now, ValidUntil: s.cfg.MachineValidUntil(now)}
	in := insert{m: m, md: md, p: p, source: "external", issuer: ext.Issuer, tok: tok}
	in.stmt = func(ctx context.Context, tx querier, _ core.Decision, key any, until any) (string, error) {
		_, err := tx.ExecContext(ctx, `INSERT INTO lpsec_token_machine
			(id, machine, tier, issuer, external_ref, created, valid_until, retry_key, retry_until)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			md[:], machine, ext.Tier, ext.Issuer, ext.Ref, now, nullTime(m.ValidUntil), key, until)
		return ext.Tier, err
	}
	return s.register(ctx, in, now)
}

// insert is one registration for register: the record to insert and the
// statement that inserts it (taking a use, for Register).
type insert struct {
	m        token.Machine
	md       core.Digest
	p        core.RegisterParams
	source   string // "registration" or "external", for the taken event
	regID    string
	issuer   string
	tok      string
	stmt     func(ctx context.Context, q querier, dec core.Decision, key, until any) (tier string, err error)
	precheck func(ctx context.Context, q querier, dec core.Decision) error
}

// querier is a *sql.DB or a *sql.Tx.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (s *Store) register(ctx context.Context, in insert, now time.Time) (string, token.Machine, error) {
	// The common case, a name never registered (a fleet enrolling): no
	// transaction, one statement that takes the use and inserts, in
	// autocommit, so the registration token's row is locked only while that
	// statement runs, never across a round trip. A concurrent registration
	// of the same name between the read and the insert makes the insert
	// fail on the unique index (the whole statement, use included, is
	// undone): ErrMachineTaken.
	live, _, err := s.readLive(ctx, s.db, in.m.Machine, false)
	if err != nil {
		return "", token.Machine{}, s.logUnavailable(ctx, "register: read live", err)
	}
	if live == nil {
		var key, until any
		if in.p.HasKey {
			key, until = in.p.RetryKey[:], s.cfg.RetryUntil(now)
		}
		tier, err := in.stmt(ctx, s.db, core.Fresh, key, until)
		if err != nil {
			return "", token.Machine{}, s.insertFailed(ctx, in, err)
		}
		return s.registered(ctx, in, tier, nil, core.Fresh)
	}
	return s.registerTx(ctx, in, now)
}

// insertFailed turns an insert's error into the store's.
func (s *Store) insertFailed(ctx context.Context, in insert, err error) error {
	if errors.Is(err, token.ErrUnknown) || errors.Is(err, token.ErrRevoked) || errors.Is(err, token.ErrExpired) ||
		errors.Is(err, token.ErrExhausted) || errors.Is(err, token.ErrUnavailable) {
		return err
	}
	if isUniqueViolation(err) {
		// A concurrent registration of the same name won.
		core.LogTaken(ctx, s.cfg.Log, in.source, in.md)
		return token.ErrMachineTaken
	}
	return s.logUnavailable(ctx, "register: insert", err)
}

func (s *Store) registered(ctx context.Context, in insert, tier string, live *core.Live, dec core.Decision) (string, token.Machine, error) {
	m := in.m
	m.Tier = tier
	if in.source == "registration" {
		rd, _ := core.ParseID(in.regID)
		core.LogRegistered(ctx, s.cfg.Log, rd, in.md)
	} else {
		core.LogRegisteredExternal(ctx, s.cfg.Log, in.issuer, in.md)
	}
	switch {
	case live == nil:
	case dec == core.Retry:
		core.LogRetried(ctx, s.cfg.Log, live.ID, in.md)
	default:
		core.LogReplaced(ctx, s.cfg.Log, live.ID, in.md)
	}
	return in.tok, m, nil
}

// registerTx is register for a name that has a non-revoked record: one
// transaction that locks that record.
func (s *Store) registerTx(ctx context.Context, in insert, now time.Time) (string, token.Machine, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return "", token.Machine{}, s.logUnavailable(ctx, "register: begin", err)
	}
	defer tx.Rollback()
	live, oldKey, err := s.readLive(ctx, tx, in.m.Machine, true)
	if err != nil {
		return "", token.Machine{}, s.logUnavailable(ctx, "register: read live", err)
	}
	dec := core.Decide(live, in.p, in.regID, in.issuer, now)
	if dec == core.Taken {
		if in.precheck != nil {
			if err := in.precheck(ctx, tx, dec); err != nil {
				return "", token.Machine{}, err
			}
		}
		core.LogTaken(ctx, s.cfg.Log, in.source, live.ID)
		return "", token.Machine{}, token.ErrMachineTaken
	}
	if live != nil {
		// Revoke the previous record and delete the name's history beyond
		// KeepReplaced (the statement's snapshot does not yet see the
		// record it revokes as revoked, hence keep-1).
		if _, err := tx.ExecContext(ctx, `WITH r AS (
				UPDATE lpsec_token_machine SET revoked = true, revoked_at = $2 WHERE id = $1)
			DELETE FROM lpsec_token_machine WHERE id IN (
				SELECT id FROM lpsec_token_machine WHERE machine = $3 AND revoked
				ORDER BY seq DESC OFFSET $4)`,
			live.ID[:], now, in.m.Machine, core.KeepReplaced-1); err != nil {
			return "", token.Machine{}, s.logUnavailable(ctx, "register: revoke previous", err)
		}
	}
	var key, until any
	switch {
	case dec == core.Retry:
		key, until = oldKey, live.RetryUntil
	case in.p.HasKey:
		key, until = in.p.RetryKey[:], s.cfg.RetryUntil(now)
	}
	tier, err := in.stmt(ctx, tx, dec, key, until)
	if err != nil {
		return "", token.Machine{}, s.insertFailed(ctx, in, err)
	}
	if err := tx.Commit(); err != nil {
		if live != nil {
			s.evict(live.ID) // a failed COMMIT may still have committed
		}
		return "", token.Machine{}, s.logUnavailable(ctx, "register: commit", err)
	}
	if live != nil {
		s.evict(live.ID)
	}
	return s.registered(ctx, in, tier, live, dec)
}

// readLive reads the name's non-revoked record, if any, row-locking it
// with lock.
func (s *Store) readLive(ctx context.Context, q querier, machine string, lock bool) (*core.Live, []byte, error) {
	var (
		id, key          []byte
		reg              []byte
		issuer           sql.NullString
		seen, vu, rUntil sql.NullTime
	)
	query := `SELECT id, registration, issuer, last_seen, valid_until, retry_key, retry_until
		FROM lpsec_token_machine WHERE machine = $1 AND NOT revoked`
	if lock {
		query += ` FOR UPDATE`
	}
	err := q.QueryRowContext(ctx, query, machine).Scan(&id, &reg, &issuer, &seen, &vu, &key, &rUntil)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	l := &core.Live{Issuer: issuer.String, LastSeen: fromNull(seen), ValidUntil: fromNull(vu), RetryUntil: fromNull(rUntil)}
	copy(l.ID[:], id)
	if reg != nil {
		l.Registration = fmt.Sprintf("%x", reg)
	}
	if len(key) == len(l.RetryKey) {
		copy(l.RetryKey[:], key)
		l.HasKey = true
	}
	return l, key, nil
}

func isUniqueViolation(err error) bool {
	var pe interface{ SQLState() string }
	return errors.As(err, &pe) && pe.SQLState() == "23505"
}

// ReleaseMachine implements Store.
func (s *Store) ReleaseMachine(ctx context.Context, machine string) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if err := core.CheckField("machine", machine); err != nil {
		return err
	}
	var id []byte
	err := s.db.QueryRowContext(ctx, `UPDATE lpsec_token_machine SET revoked = true, revoked_at = $2
		WHERE machine = $1 AND NOT revoked RETURNING id`, machine, s.cfg.Clock()).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: machine name has no live machine token", token.ErrUnknown)
	}
	if err != nil {
		if s.cache != nil {
			s.cache.evictMachine(machine) // the UPDATE may have committed
		}
		return s.logUnavailable(ctx, "release machine", err)
	}
	var d core.Digest
	copy(d[:], id)
	s.evict(d)
	core.LogReleased(ctx, s.cfg.Log, d)
	return nil
}

// PruneMachines implements Store, deleting in batches of MaxListLimit
// rows found through the partial index on revoked_at.
func (s *Store) PruneMachines(ctx context.Context) (int, error) {
	cutoff := s.cfg.Clock().Add(-s.cfg.Retention)
	n := 0
	for {
		// Each batch has its own deadline: a long prune is legitimate, a
		// batch that hangs is not.
		bctx, cancel := s.deadline(ctx)
		res, err := s.db.ExecContext(bctx, `DELETE FROM lpsec_token_machine WHERE id IN (
			SELECT id FROM lpsec_token_machine WHERE revoked AND revoked_at < $1 LIMIT $2)`, cutoff, core.MaxListLimit)
		cancel()
		if err != nil {
			return n, s.logUnavailable(ctx, "prune machines", err)
		}
		k, err := res.RowsAffected()
		if err != nil {
			return n, s.logUnavailable(ctx, "prune machines", err)
		}
		n += int(k)
		if k < core.MaxListLimit {
			core.LogPruned(ctx, s.cfg.Log, n)
			return n, nil
		}
	}
}

const machineCols = `id, machine, tier, registration, created, last_seen, valid_until, revoked, issuer, external_ref`

func scanMachine(row interface{ Scan(...any) error }) (token.Machine, error) {
	var (
		m           token.Machine
		id, reg     []byte
		seen, until sql.NullTime
		iss, ref    sql.NullString
	)
	if err := row.Scan(&id, &m.Machine, &m.Tier, &reg, &m.Created, &seen, &until, &m.Revoked, &iss, &ref); err != nil {
		return token.Machine{}, err
	}
	m.ID = fmt.Sprintf("%x", id)
	if reg != nil {
		m.Registration = fmt.Sprintf("%x", reg)
	}
	m.Issuer, m.ExternalRef = iss.String, ref.String
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
	cache, session := s.authCache()
	var gen uint64
	if cache != nil {
		if m, ok := cache.get(d, now, session); ok {
			// Revoked records never enter the cache; expiry is checked
			// against the clock on every hit.
			if err := core.State(m.Revoked, m.ValidUntil, now); err != nil {
				return token.Machine{}, err
			}
			return m, nil
		}
		gen = cache.generation()
	}
	m, err := scanMachine(s.db.QueryRowContext(ctx, `WITH u AS (
			UPDATE lpsec_token_machine SET last_seen = $2
			WHERE id = $1 AND NOT revoked AND (valid_until IS NULL OR valid_until > $2)
				AND (last_seen IS NULL OR last_seen <= $3)
			RETURNING last_seen)
		SELECT id, machine, tier, registration, created,
			coalesce((SELECT last_seen FROM u), m.last_seen), valid_until, revoked, issuer, external_ref
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
	if cache != nil {
		cache.put(d, m, now, gen, session)
	}
	return m, nil
}

// authCache returns the authentication cache if it may be used now, and
// the Follower session its records must belong to. Without Follow it is
// token.WithAuthCache's ttl cache (session 0). While Follow runs, records
// are evicted by notification and trusted only within the session they
// were read in, so a notification missed in a gap cannot leave a revoked
// token cached; between sessions (not live) the cache is not used at all.
func (s *Store) authCache() (*authCache, uint64) {
	if s.cache == nil || !s.follower.Running() {
		return s.cache, 0
	}
	session, live := s.follower.Session()
	if !live {
		return nil, 0
	}
	return s.cache, session
}

// evict drops a machine record revoked through this store from the cache.
func (s *Store) evict(d core.Digest) {
	if s.cache != nil {
		s.cache.evict(d)
	}
}

// IssueSync implements Store.
func (s *Store) IssueSync(ctx context.Context, sy token.Sync) (string, token.Sync, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	defer s.follower.Changed()
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
	defer s.follower.Changed()
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
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	d, err := core.ParseID(id)
	if err != nil {
		return err
	}
	defer s.evict(d) // also when an error hides whether the UPDATE committed
	res, err := s.db.ExecContext(ctx, `UPDATE lpsec_token_machine
		SET revoked = true, revoked_at = coalesce(revoked_at, $2) WHERE id = $1`, d[:], s.cfg.Clock())
	if err != nil {
		return s.logUnavailable(ctx, "revoke machine", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.logUnavailable(ctx, "revoke machine", err)
	}
	if n == 0 {
		return fmt.Errorf("%w: no machine token with this ID", token.ErrUnknown)
	}
	core.LogRevoked(ctx, s.cfg.Log, "machine", d)
	return nil
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

// ListRegistrations implements Store; from memory while Follow runs.
func (s *Store) ListRegistrations(ctx context.Context) ([]token.Registration, error) {
	l, err := s.registrations.Get(func() ([]token.Registration, error) {
		return list(ctx, s, "list registrations",
			`SELECT `+registrationCols+` FROM lpsec_token_registration ORDER BY created, id`, scanRegistration)
	})
	return slices.Clone(l), err // the kept copy is shared
}

// ListMachines implements Store: keyset pagination on the unique index on
// seq, so a page costs an index range scan of limit rows, never a sort of
// the table.
func (s *Store) ListMachines(ctx context.Context, after string, limit int) ([]token.Machine, string, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	from, err := core.ParseCursor(after)
	if err != nil {
		return nil, "", err
	}
	if err := core.CheckLimit(limit); err != nil {
		return nil, "", err
	}
	// One row more than asked says whether there is a next page.
	rows, err := s.db.QueryContext(ctx, `SELECT `+machineCols+`, seq FROM lpsec_token_machine
		WHERE seq > $1 ORDER BY seq LIMIT $2`, from, limit+1)
	if err != nil {
		return nil, "", s.logUnavailable(ctx, "list machines", err)
	}
	defer rows.Close()
	out := []token.Machine{}
	var last int64
	more := false
	for rows.Next() {
		if len(out) == limit {
			more = true
			break
		}
		var seq int64
		m, err := scanMachine(seqScanner{rows, &seq})
		if err != nil {
			return nil, "", s.logUnavailable(ctx, "list machines", err)
		}
		out, last = append(out, m), seq
	}
	if err := rows.Err(); err != nil {
		return nil, "", s.logUnavailable(ctx, "list machines", err)
	}
	if !more {
		return out, "", nil
	}
	return out, strconv.FormatInt(last, 10), nil
}

// seqScanner appends the seq column to a scanMachine scan.
type seqScanner struct {
	rows *sql.Rows
	seq  *int64
}

func (s seqScanner) Scan(dest ...any) error { return s.rows.Scan(append(dest, s.seq)...) }

// ListSyncs implements Store; from memory while Follow runs.
func (s *Store) ListSyncs(ctx context.Context) ([]token.Sync, error) {
	l, err := s.syncs.Get(func() ([]token.Sync, error) {
		return list(ctx, s, "list syncs",
			`SELECT `+syncCols+` FROM lpsec_token_sync ORDER BY created, id`, scanSync)
	})
	return slices.Clone(l), err
}

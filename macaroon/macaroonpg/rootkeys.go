// Package macaroonpg is the PostgreSQL macaroon.RootKeyStore: root keys
// shared by every server instance that opens the same database, encrypted at
// rest under the operator's KeyEncryptionKey. It is a package of its own so
// that importing macaroon (for its Service, Discharger or memory store)
// links no database code.
//
// Most servers want:
//
//	kek, err := macaroonpg.ParseKeyEncryptionKey(os.Getenv("ROOT_KEY_KEK"))
//	store, err := macaroonpg.NewRootKeyStore(db, kek, macaroon.WithLogger(logger))
//	if err := store.Migrate(ctx); err != nil { ... }
//	svc, err := macaroon.NewService("https://livepatch.example", key, store)
//
// NewRevocationStore keeps the revocations of login macaroons
// (macaroon.WithRevocations) in the same database, so a logout on one
// instance is refused on all of them within a documented bound; with its
// cache on and RevocationStore.Follow running, that bound is the delivery
// of a database notification and checks cost no query.
//
// # Faults
//
// Every call that reaches the database is bounded by
// macaroon.WithStoreTimeout (default macaroon.DefaultStoreTimeout, 2 s):
// with the database frozen or partitioned away it fails within that bound
// with an error wrapping macaroon.ErrUnavailable instead of hanging, and the
// stores recover by themselves when the database is back. Migrate is bounded
// only by its caller's context, as a migration may rightly take longer.
//
// The connection pool is the *sql.DB's and so the caller's to limit. For a
// server instance we recommend db.SetMaxOpenConns(20) (instances times this
// must stay below the server's max_connections), db.SetMaxIdleConns(20),
// db.SetConnMaxIdleTime(5*time.Minute) and db.SetConnMaxLifetime(30*time.Minute):
// requests beyond the limit queue for a connection, and that wait counts
// against the store timeout, so an overloaded database answers
// ErrUnavailable quickly rather than piling up connections.
package macaroonpg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"

	"github.com/lpsec/lpsec/internal/pgmigrate"
	"github.com/lpsec/lpsec/macaroon"
	"github.com/lpsec/lpsec/macaroon/internal/core"
)

var (
	// ErrRootKeyCorrupt means a stored root key failed authenticated
	// decryption or has the wrong shape: the row was altered or swapped with
	// another row's ciphertext.
	ErrRootKeyCorrupt = errors.New("macaroonpg: stored root key failed authentication (tampered or corrupt)")

	// ErrKeyEncryptionKeyMismatch means a stored root key was encrypted under
	// a different key-encryption key than the one this store was given.
	ErrKeyEncryptionKeyMismatch = errors.New("macaroonpg: root key was encrypted under a different key-encryption key")
)

// RootKeyStore is a macaroon.RootKeyStore kept in PostgreSQL and shared by
// every server instance that uses the same database, so a macaroon minted by
// one instance verifies on all of them and survives restarts.
//
// Encryption at rest: each root key is stored only as AES-256-GCM ciphertext
// under the operator's KeyEncryptionKey, with the key's id as additional
// authenticated data (a ciphertext moved to another row does not decrypt)
// and the KEK's public identifier beside it (a store given the wrong KEK
// fails with ErrKeyEncryptionKeyMismatch). A dump of the table cannot mint
// or verify macaroons.
//
// Rotation: RootKey uses the newest key that may still mint
// (created less than RotationPeriod ago and kept at least MaxTTL from now).
// When there is none, the instance takes a transaction-scoped advisory lock,
// looks again and only then inserts a new key, so instances that rotate at
// the same moment serialise and all adopt the one new key. Keys are purged
// at created + RotationPeriod + MaxTTL.
//
// Revocation and caching: each instance caches keys it has read for
// CacheTTL (default 30 s). Revoke deletes the row and the local cache entry
// at once; other instances stop accepting (and minting with) the key when
// their cache entry ages out, so revocation takes effect everywhere within
// CacheTTL. A database fault never extends that bound: once an entry is
// older than CacheTTL the store asks the database and, if it cannot,
// returns an error wrapping macaroon.ErrUnavailable, never a key.
type RootKeyStore struct {
	db  *sql.DB
	kek *KeyEncryptionKey
	p   *core.Settings

	mu    sync.RWMutex
	cache map[[core.RootKeyIDLen]byte]pgCachedRootKey
	cur   *pgCachedRootKey // minting key, if fetched within CacheTTL
}

type pgCachedRootKey struct {
	id        []byte
	key       []byte
	mintUntil time.Time
	expires   time.Time
	fetched   time.Time
}

var _ macaroon.RootKeyStore = (*RootKeyStore)(nil)

const (
	rootKeyTable       = "lpsec_macaroon_root_keys"
	rootKeySchemaTable = "lpsec_macaroon_root_keys_schema"
	// Advisory lock keys ("lpsecRK1", "lpsecRK2" as big-endian int64s), one
	// for migrations and one for rotation, so the two never wait on each
	// other and do not collide with other lpsec packages' locks.
	rootKeyMigrateLock = 0x6c70736563524b31
	rootKeyRotateLock  = 0x6c70736563524b32
	// maxRootKeyCache bounds the per-instance cache; with the default policy
	// about 11 keys are live, so this is never reached in normal use.
	maxRootKeyCache = 1024
)

// rootKeyMigrations are applied in order; never edit one that has shipped,
// append a new one.
var rootKeyMigrations = [][]string{{
	`CREATE TABLE ` + rootKeyTable + ` (
		id         bytea       PRIMARY KEY CHECK (octet_length(id) = 16),
		created    timestamptz NOT NULL,
		mint_until timestamptz NOT NULL,
		expires    timestamptz NOT NULL,
		kek_id     text        NOT NULL,
		sealed     bytea       NOT NULL
	);
	CREATE INDEX ` + rootKeyTable + `_mint_until ON ` + rootKeyTable + ` (mint_until);
	CREATE INDEX ` + rootKeyTable + `_expires ON ` + rootKeyTable + ` (expires);
	COMMENT ON COLUMN ` + rootKeyTable + `.sealed IS 'nonce || AES-256-GCM(root key), AAD = label || id, under the KEK named by kek_id';`,
}}

// NewRootKeyStore returns a store using db (opened with the "pgx" driver)
// and kek. Call Migrate once at start-up before using it. Without options
// it follows the production default: a new minting key every 24 hours, each
// kept 240 hours past its last use for minting, cached for 30 seconds.
// Options: macaroon.WithRotationPeriod, WithMaxTTL, WithCacheTTL,
// WithoutRootKeyCache, WithStoreTimeout, WithClock, WithLogger; any other,
// or a nil db, is
// macaroon.ErrInvalidOption; a nil kek is macaroon.ErrInvalidKey.
func NewRootKeyStore(db *sql.DB, kek *KeyEncryptionKey, opts ...macaroon.Option) (*RootKeyStore, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: macaroonpg.NewRootKeyStore: nil *sql.DB", macaroon.ErrInvalidOption)
	}
	if kek == nil || kek.aead == nil {
		return nil, fmt.Errorf("%w: nil or zero key-encryption key (use NewKeyEncryptionKey or ParseKeyEncryptionKey)", macaroon.ErrInvalidKey)
	}
	p, err := core.Build("macaroonpg.NewRootKeyStore", core.ForPostgresRootKeys, opts)
	if err != nil {
		return nil, err
	}
	return &RootKeyStore{db: db, kek: kek, p: p, cache: make(map[[core.RootKeyIDLen]byte]pgCachedRootKey)}, nil
}

// Migrate creates or upgrades the store's tables. It is idempotent and safe
// to run from several instances at once (they serialise on an advisory
// lock); a failed run changes nothing. A database whose schema is newer
// than this code knows is refused with macaroon.ErrUnavailable and left
// untouched.
func (s *RootKeyStore) Migrate(ctx context.Context) error {
	if err := pgmigrate.Migrate(ctx, s.db, pgmigrate.Schema{
		Table: rootKeySchemaTable, Lock: rootKeyMigrateLock, Versions: rootKeyMigrations,
	}); err != nil {
		return s.unavailable(ctx, "migrate", err)
	}
	return nil
}

// RootKey returns the key to mint with and its id, rotating as described on
// RootKeyStore. It returns an error, and never mints with a fresh
// unshared key, when the database cannot be reached or the current key does
// not decrypt under this store's KEK.
func (s *RootKeyStore) RootKey(ctx context.Context) (rootKey, id []byte, err error) {
	now := s.p.Now()
	s.mu.RLock()
	c := s.cur
	s.mu.RUnlock()
	if c != nil && s.fresh(c, now) && now.Before(c.mintUntil) && !c.expires.Before(now.Add(s.p.MaxTTL)) {
		return core.Clone(c.key), core.Clone(c.id), nil
	}

	ctx, cancel := s.deadline(ctx)
	defer cancel()
	k, err := s.findMintingKey(ctx, s.db, now)
	if err == nil && k == nil {
		k, err = s.rotate(ctx, now)
	}
	if err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	s.remember(k)
	if s.p.CacheTTL > 0 {
		s.cur = k
	}
	s.mu.Unlock()
	return core.Clone(k.key), core.Clone(k.id), nil
}

// queryer is what findMintingKey needs from *sql.DB and *sql.Tx.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// findMintingKey returns the newest key that may mint at now, or nil.
func (s *RootKeyStore) findMintingKey(ctx context.Context, q queryer, now time.Time) (*pgCachedRootKey, error) {
	var (
		id, sealed        []byte
		kekID             string
		mintUntil, expire time.Time
	)
	err := q.QueryRowContext(ctx, `SELECT id, kek_id, sealed, mint_until, expires FROM `+rootKeyTable+`
		WHERE mint_until > $1 AND expires >= $2
		ORDER BY created DESC, id LIMIT 1`, now, now.Add(s.p.MaxTTL)).Scan(&id, &kekID, &sealed, &mintUntil, &expire)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, s.unavailable(ctx, "find minting root key", err)
	}
	key, err := s.decrypt(ctx, id, kekID, sealed)
	if err != nil {
		return nil, err
	}
	return &pgCachedRootKey{id: id, key: key, mintUntil: mintUntil, expires: expire, fetched: now}, nil
}

// rotate makes a new minting key unless another instance made one first.
func (s *RootKeyStore) rotate(ctx context.Context, now time.Time) (_ *pgCachedRootKey, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, s.unavailable(ctx, "rotate root key", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	// Serialise rotations: whoever waits here sees the winner's key below.
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(rootKeyRotateLock)); err != nil {
		return nil, s.unavailable(ctx, "rotate root key", err)
	}
	k, err := s.findMintingKey(ctx, tx, now)
	if err != nil {
		return nil, err
	}
	if k != nil {
		if err := tx.Commit(); err != nil {
			return nil, s.unavailable(ctx, "rotate root key", err)
		}
		return k, nil
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM `+rootKeyTable+` WHERE expires <= $1`, now)
	if err != nil {
		return nil, s.unavailable(ctx, "purge root keys", err)
	}
	purged, _ := res.RowsAffected()

	key, id, err := core.NewRootKeyMaterial()
	if err != nil {
		return nil, err
	}
	sealed, err := s.kek.seal(id, key)
	if err != nil {
		return nil, err
	}
	// PostgreSQL keeps microseconds; round here so the cached times match
	// what other instances read back.
	created := now.Truncate(time.Microsecond)
	mintUntil := created.Add(s.p.RotationPeriod)
	expires := mintUntil.Add(s.p.MaxTTL)
	if _, err := tx.ExecContext(ctx, `INSERT INTO `+rootKeyTable+` (id, created, mint_until, expires, kek_id, sealed)
		VALUES ($1, $2, $3, $4, $5, $6)`, id, created, mintUntil, expires, s.kek.ID(), sealed); err != nil {
		return nil, s.unavailable(ctx, "insert root key", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, s.unavailable(ctx, "rotate root key", err)
	}
	if purged > 0 {
		s.p.Log.LogAttrs(ctx, slog.LevelInfo, "expired root keys purged",
			slog.String("event", "macaroon_root_key_purged"), slog.String("store", "postgres"),
			slog.Int64("count", purged))
	}
	s.p.Log.LogAttrs(ctx, slog.LevelInfo, "root key rotated",
		slog.String("event", "macaroon_root_key_rotated"), slog.String("store", "postgres"),
		core.RootKeyIDAttr(id), slog.Time("expires", expires))
	return &pgCachedRootKey{id: id, key: key, mintUntil: mintUntil, expires: expires, fetched: now}, nil
}

// Get returns the root key with the given id, or exactly bakery.ErrNotFound
// when the id is malformed, unknown, revoked or expired. Any other failure
// (database unreachable, wrong KEK, tampered row) is a different error, so
// verification fails closed.
func (s *RootKeyStore) Get(ctx context.Context, id []byte) ([]byte, error) {
	if len(id) != core.RootKeyIDLen {
		return nil, bakery.ErrNotFound
	}
	now := s.p.Now()
	kid := [core.RootKeyIDLen]byte(id)
	s.mu.RLock()
	c, ok := s.cache[kid]
	s.mu.RUnlock()
	if ok && s.fresh(&c, now) && now.Before(c.expires) {
		return core.Clone(c.key), nil
	}
	ctx, cancel := s.deadline(ctx)
	defer cancel()

	var (
		sealed  []byte
		kekID   string
		mintU   time.Time
		expires time.Time
	)
	err := s.db.QueryRowContext(ctx, `SELECT kek_id, sealed, mint_until, expires FROM `+rootKeyTable+`
		WHERE id = $1 AND expires > $2`, id, now).Scan(&kekID, &sealed, &mintU, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		s.mu.Lock()
		s.forget(kid)
		s.mu.Unlock()
		return nil, bakery.ErrNotFound
	}
	if err != nil {
		return nil, s.unavailable(ctx, "get root key", err)
	}
	key, err := s.decrypt(ctx, id, kekID, sealed)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.remember(&pgCachedRootKey{id: core.Clone(id), key: key, mintUntil: mintU, expires: expires, fetched: now})
	s.mu.Unlock()
	return core.Clone(key), nil
}

// Revoke deletes the key with the given id. This instance stops using it at
// once; every other instance within CacheTTL. Revoking an unknown or purged
// id succeeds (it does not verify either way); an id of the wrong length
// wraps bakery.ErrNotFound; a database fault wraps macaroon.ErrUnavailable and
// means the key may not be revoked.
func (s *RootKeyStore) Revoke(ctx context.Context, id []byte) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if len(id) != core.RootKeyIDLen {
		return core.ErrRevokeMalformedID
	}
	res, err := s.db.ExecContext(ctx, `DELETE FROM `+rootKeyTable+` WHERE id = $1`, id)
	if err != nil {
		return s.unavailable(ctx, "revoke root key", err)
	}
	n, _ := res.RowsAffected()
	s.mu.Lock()
	s.forget([core.RootKeyIDLen]byte(id))
	s.mu.Unlock()
	s.p.Log.LogAttrs(ctx, slog.LevelWarn, "root key revoked",
		slog.String("event", "macaroon_root_key_revoked"), slog.String("store", "postgres"),
		core.RootKeyIDAttr(id), slog.Bool("existed", n > 0), slog.Duration("other_instances_within", max(s.p.CacheTTL, 0)))
	return nil
}

// fresh reports whether a cache entry may still be trusted without asking
// the database: this is the revocation bound.
func (s *RootKeyStore) fresh(c *pgCachedRootKey, now time.Time) bool {
	return s.p.CacheTTL > 0 && now.Before(c.fetched.Add(s.p.CacheTTL)) && !now.Before(c.fetched)
}

// remember caches a key for Get; callers hold s.mu.
func (s *RootKeyStore) remember(k *pgCachedRootKey) {
	if s.p.CacheTTL <= 0 {
		return
	}
	if len(s.cache) >= maxRootKeyCache {
		// Only reachable under a flood of valid ids (a tiny rotation period);
		// starting over keeps memory bounded and costs one query per key.
		clear(s.cache)
	}
	s.cache[[core.RootKeyIDLen]byte(k.id)] = *k
}

// forget drops a key from the cache and as the minting key; callers hold s.mu.
func (s *RootKeyStore) forget(kid [core.RootKeyIDLen]byte) {
	delete(s.cache, kid)
	if s.cur != nil && [core.RootKeyIDLen]byte(s.cur.id) == kid {
		s.cur = nil
	}
}

func (s *RootKeyStore) decrypt(ctx context.Context, id []byte, kekID string, sealed []byte) ([]byte, error) {
	if kekID != s.kek.ID() {
		s.p.Log.LogAttrs(ctx, slog.LevelError, "root key encrypted under another key-encryption key",
			slog.String("event", "macaroon_root_key_rejected"), slog.String("reason", "kek_mismatch"),
			core.RootKeyIDAttr(id), slog.String("stored_kek_id", kekID), slog.String("kek_id", s.kek.ID()))
		return nil, fmt.Errorf("%w: key %x was sealed under KEK %q, this store has KEK %q",
			ErrKeyEncryptionKeyMismatch, id, kekID, s.kek.ID())
	}
	key, err := s.kek.open(id, sealed)
	if err != nil {
		s.p.Log.LogAttrs(ctx, slog.LevelError, "stored root key failed authentication",
			slog.String("event", "macaroon_root_key_rejected"), slog.String("reason", "tampered"),
			core.RootKeyIDAttr(id))
		return nil, fmt.Errorf("key %x: %w", id, err)
	}
	return key, nil
}

// deadline bounds one call that reaches the database (WithStoreTimeout).
// When it passes, pgx closes the connection the call was using (its
// context watcher sets a past deadline on the socket), so a frozen server
// cannot hold the call, and database/sql drops that connection.
func (s *RootKeyStore) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.p.StoreTimeout)
}

// unavailable wraps a database error with macaroon.ErrUnavailable and logs it.
func (s *RootKeyStore) unavailable(ctx context.Context, op string, err error) error {
	// The driver's error says which SQLSTATE; asking through an interface
	// (pgconn.PgError has SQLState) works whatever wraps it.
	var st interface{ SQLState() string }
	if errors.As(err, &st) && st.SQLState() == "42P01" { // undefined_table
		err = fmt.Errorf("%w (has Migrate been run?)", err)
	}
	s.p.Log.LogAttrs(ctx, slog.LevelError, "root key store unavailable",
		slog.String("event", "macaroon_root_key_store_unavailable"), slog.String("op", op),
		slog.String("error", err.Error()))
	return fmt.Errorf("%w: %s: %w", macaroon.ErrUnavailable, op, err)
}

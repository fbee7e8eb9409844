package macaroon

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"

	"github.com/lpsec/lpsec/macaroon/internal/core"
)

// MemoryRootKeyStore is a RootKeyStore that keeps root keys in process
// memory and rotates them. It suits a single server instance that can
// accept that a restart invalidates every macaroon it minted; several
// instances, or keys that must survive restarts, need the PostgreSQL store (macaroonpg.NewRootKeyStore).
//
// Unlike bakery.NewMemRootKeyStore, it mints with a new key every
// RotationPeriod, purges keys MaxTTL after their last use for minting, and
// supports Revoke, which takes effect immediately.
type MemoryRootKeyStore struct {
	p *core.Settings

	mu      sync.RWMutex
	keys    map[[core.RootKeyIDLen]byte]memoryRootKey
	current [core.RootKeyIDLen]byte
	hasCur  bool
}

type memoryRootKey struct {
	key       []byte
	mintUntil time.Time // last instant the key is used for minting
	expires   time.Time // mintUntil + MaxTTL: purged from then on
}

var _ RootKeyStore = (*MemoryRootKeyStore)(nil)

// NewMemoryRootKeyStore returns an empty in-memory store. Without options
// it follows the production default: a new minting key every 24 hours, each
// kept for verification 240 hours past its last use for minting. Options:
// WithRotationPeriod, WithMaxTTL, WithClock, WithLogger; any other is
// ErrInvalidOption. The first key is made by the first RootKey call.
func NewMemoryRootKeyStore(opts ...Option) (*MemoryRootKeyStore, error) {
	p, err := core.Build("NewMemoryRootKeyStore", core.ForMemoryRootKeys, opts)
	if err != nil {
		return nil, err
	}
	return &MemoryRootKeyStore{p: p, keys: make(map[[core.RootKeyIDLen]byte]memoryRootKey)}, nil
}

// RootKey returns the key to mint with and its id, making a new key when the
// current one is older than RotationPeriod (or was revoked). It also purges
// expired keys, so the store holds at most about MaxTTL/RotationPeriod + 2
// keys.
func (s *MemoryRootKeyStore) RootKey(ctx context.Context) (rootKey, id []byte, err error) {
	now := s.p.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hasCur {
		if k, ok := s.keys[s.current]; ok && now.Before(k.mintUntil) {
			return core.Clone(k.key), core.Clone(s.current[:]), nil
		}
	}
	s.purgeLocked(ctx, now)
	key, newID, err := core.NewRootKeyMaterial()
	if err != nil {
		return nil, nil, err
	}
	var kid [core.RootKeyIDLen]byte
	copy(kid[:], newID)
	mintUntil := now.Add(s.p.RotationPeriod)
	s.keys[kid] = memoryRootKey{key: key, mintUntil: mintUntil, expires: mintUntil.Add(s.p.MaxTTL)}
	s.current, s.hasCur = kid, true
	s.p.Log.LogAttrs(ctx, slog.LevelInfo, "root key rotated",
		slog.String("event", "macaroon_root_key_rotated"), slog.String("store", "memory"),
		core.RootKeyIDAttr(newID), slog.Time("expires", mintUntil.Add(s.p.MaxTTL)))
	return core.Clone(key), core.Clone(newID), nil
}

// Get returns the root key with the given id, or exactly bakery.ErrNotFound
// when the id is unknown, malformed, revoked or expired.
func (s *MemoryRootKeyStore) Get(_ context.Context, id []byte) ([]byte, error) {
	if len(id) != core.RootKeyIDLen {
		return nil, bakery.ErrNotFound
	}
	now := s.p.Now()
	s.mu.RLock()
	k, ok := s.keys[[core.RootKeyIDLen]byte(id)]
	s.mu.RUnlock()
	if !ok || !now.Before(k.expires) {
		return nil, bakery.ErrNotFound
	}
	// Stored keys are never written after creation, so copying outside the
	// lock is safe.
	return core.Clone(k.key), nil
}

// Revoke forgets the key with the given id at once: macaroons minted with it
// stop verifying and, if it was the minting key, the next RootKey makes a
// new one. Revoking an unknown or already purged id succeeds (the id does
// not verify either way); an id of the wrong length wraps
// bakery.ErrNotFound.
func (s *MemoryRootKeyStore) Revoke(ctx context.Context, id []byte) error {
	if len(id) != core.RootKeyIDLen {
		return core.ErrRevokeMalformedID
	}
	kid := [core.RootKeyIDLen]byte(id)
	s.mu.Lock()
	_, existed := s.keys[kid]
	delete(s.keys, kid)
	if s.hasCur && s.current == kid {
		s.hasCur = false
	}
	s.mu.Unlock()
	s.p.Log.LogAttrs(ctx, slog.LevelWarn, "root key revoked",
		slog.String("event", "macaroon_root_key_revoked"), slog.String("store", "memory"),
		core.RootKeyIDAttr(id), slog.Bool("existed", existed))
	return nil
}

func (s *MemoryRootKeyStore) purgeLocked(ctx context.Context, now time.Time) {
	n := 0
	for id, k := range s.keys {
		if !now.Before(k.expires) {
			delete(s.keys, id)
			n++
		}
	}
	if n > 0 {
		s.p.Log.LogAttrs(ctx, slog.LevelInfo, "expired root keys purged",
			slog.String("event", "macaroon_root_key_purged"), slog.String("store", "memory"),
			slog.Int("count", n))
	}
}

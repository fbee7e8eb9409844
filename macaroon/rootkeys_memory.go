package macaroon

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"
)

// MemoryRootKeyStore is a RootKeyStore that keeps root keys in process
// memory and rotates them. It suits a single server instance that can
// accept that a restart invalidates every macaroon it minted; several
// instances, or keys that must survive restarts, need PostgresRootKeyStore.
//
// Unlike bakery.NewMemRootKeyStore, it mints with a new key every
// RotationPeriod, purges keys MaxTTL after their last use for minting, and
// supports Revoke, which takes effect immediately.
type MemoryRootKeyStore struct {
	p RootKeyPolicy

	mu      sync.RWMutex
	keys    map[[rootKeyIDLen]byte]memoryRootKey
	current [rootKeyIDLen]byte
	hasCur  bool
}

type memoryRootKey struct {
	key       []byte
	mintUntil time.Time // last instant the key is used for minting
	expires   time.Time // mintUntil + MaxTTL: purged from then on
}

var _ RootKeyStore = (*MemoryRootKeyStore)(nil)

// NewMemoryRootKeyStore returns an empty in-memory store with the given
// policy (the zero RootKeyPolicy is the production default). The first key
// is made by the first RootKey call.
func NewMemoryRootKeyStore(p RootKeyPolicy) (*MemoryRootKeyStore, error) {
	p, err := p.resolve()
	if err != nil {
		return nil, err
	}
	return &MemoryRootKeyStore{p: p, keys: make(map[[rootKeyIDLen]byte]memoryRootKey)}, nil
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
			return cloneBytes(k.key), cloneBytes(s.current[:]), nil
		}
	}
	s.purgeLocked(ctx, now)
	key, newID, err := newRootKeyMaterial()
	if err != nil {
		return nil, nil, err
	}
	var kid [rootKeyIDLen]byte
	copy(kid[:], newID)
	mintUntil := now.Add(s.p.RotationPeriod)
	s.keys[kid] = memoryRootKey{key: key, mintUntil: mintUntil, expires: mintUntil.Add(s.p.MaxTTL)}
	s.current, s.hasCur = kid, true
	s.p.Logger.LogAttrs(ctx, slog.LevelInfo, "root key rotated",
		slog.String("event", "macaroon_root_key_rotated"), slog.String("store", "memory"),
		rootKeyIDAttr(newID), slog.Time("expires", mintUntil.Add(s.p.MaxTTL)))
	return cloneBytes(key), cloneBytes(newID), nil
}

// Get returns the root key with the given id, or exactly bakery.ErrNotFound
// when the id is unknown, malformed, revoked or expired.
func (s *MemoryRootKeyStore) Get(_ context.Context, id []byte) ([]byte, error) {
	if len(id) != rootKeyIDLen {
		return nil, bakery.ErrNotFound
	}
	now := s.p.Now()
	s.mu.RLock()
	k, ok := s.keys[[rootKeyIDLen]byte(id)]
	s.mu.RUnlock()
	if !ok || !now.Before(k.expires) {
		return nil, bakery.ErrNotFound
	}
	// Stored keys are never written after creation, so copying outside the
	// lock is safe.
	return cloneBytes(k.key), nil
}

// Revoke forgets the key with the given id at once: macaroons minted with it
// stop verifying and, if it was the minting key, the next RootKey makes a
// new one. Revoking an unknown or already purged id succeeds (the id does
// not verify either way); an id of the wrong length wraps
// bakery.ErrNotFound.
func (s *MemoryRootKeyStore) Revoke(ctx context.Context, id []byte) error {
	if len(id) != rootKeyIDLen {
		return errRevokeMalformedID
	}
	kid := [rootKeyIDLen]byte(id)
	s.mu.Lock()
	_, existed := s.keys[kid]
	delete(s.keys, kid)
	if s.hasCur && s.current == kid {
		s.hasCur = false
	}
	s.mu.Unlock()
	s.p.Logger.LogAttrs(ctx, slog.LevelWarn, "root key revoked",
		slog.String("event", "macaroon_root_key_revoked"), slog.String("store", "memory"),
		rootKeyIDAttr(id), slog.Bool("existed", existed))
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
		s.p.Logger.LogAttrs(ctx, slog.LevelInfo, "expired root keys purged",
			slog.String("event", "macaroon_root_key_purged"), slog.String("store", "memory"),
			slog.Int("count", n))
	}
}

// cloneBytes hands callers their own copy, so nothing they do to a returned
// slice can change a stored key.
func cloneBytes(b []byte) []byte { return append([]byte(nil), b...) }

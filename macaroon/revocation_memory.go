package macaroon

import (
	"context"
	"sync"
	"time"

	"github.com/lpsec/lpsec/macaroon/internal/core"
)

// MemoryRevocationStore is a RevocationStore in process memory, for a
// single instance (revocations are lost on restart, together with the
// memory root keys that would verify the revoked macaroons). A revocation
// is refused at once. It holds one record per revoked macaroon id and per
// revoked user, each forgotten when it expires (at most MaxTTL after it
// was made), so its size is bounded by the revocations of the last MaxTTL.
type MemoryRevocationStore struct {
	p *core.Settings

	mu    sync.RWMutex
	ids   map[string]time.Time // id -> expires
	users map[string]core.Revocation
	all   core.Revocation
	// purgeAt is when the next purge is due: the earliest expiry held.
	purgeAt time.Time
}

var _ RevocationStore = (*MemoryRevocationStore)(nil)

// NewMemoryRevocationStore returns an empty store. Options: WithClock,
// WithLogger; any other is ErrInvalidOption.
func NewMemoryRevocationStore(opts ...Option) (*MemoryRevocationStore, error) {
	p, err := core.Build("NewMemoryRevocationStore", core.ForMemoryRevocations, opts)
	if err != nil {
		return nil, err
	}
	return &MemoryRevocationStore{p: p, ids: map[string]time.Time{}, users: map[string]core.Revocation{}}, nil
}

// Revoke records r (see Revocation); it is idempotent, and a later Before
// for the same user (or for all) replaces an earlier one, never the reverse.
func (s *MemoryRevocationStore) Revoke(_ context.Context, r Revocation) error {
	if err := CheckRevocation(r); err != nil {
		return err
	}
	now := s.p.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !now.Before(s.purgeAt) {
		s.purgeLocked(now)
	}
	switch {
	case r.ID != "":
		if r.Expires.After(s.ids[r.ID]) {
			s.ids[r.ID] = r.Expires
		}
	case r.User != "":
		s.users[r.User] = merge(s.users[r.User], r)
	default:
		s.all = merge(s.all, r)
	}
	if s.purgeAt.IsZero() || r.Expires.Before(s.purgeAt) {
		s.purgeAt = r.Expires
	}
	return nil
}

// merge keeps the latest cut-off and the latest expiry of two records.
func merge(old, r core.Revocation) core.Revocation {
	if r.Before.Before(old.Before) {
		r.Before = old.Before
	}
	if r.Expires.Before(old.Expires) {
		r.Expires = old.Expires
	}
	return r
}

// Revoked reports whether the login macaroon with revocation id id, of user,
// issued at issued, is revoked. It never fails.
func (s *MemoryRevocationStore) Revoked(_ context.Context, id, user string, issued time.Time) (bool, error) {
	now := s.p.Now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if exp, ok := s.ids[id]; ok && now.Before(exp) {
		return true, nil
	}
	if r, ok := s.users[user]; ok && now.Before(r.Expires) && issued.Before(r.Before) {
		return true, nil
	}
	return s.all.All && now.Before(s.all.Expires) && issued.Before(s.all.Before), nil
}

func (s *MemoryRevocationStore) purgeLocked(now time.Time) {
	var next time.Time
	keep := func(exp time.Time) bool {
		if !now.Before(exp) {
			return false
		}
		if next.IsZero() || exp.Before(next) {
			next = exp
		}
		return true
	}
	for id, exp := range s.ids {
		if !keep(exp) {
			delete(s.ids, id)
		}
	}
	for u, r := range s.users {
		if !keep(r.Expires) {
			delete(s.users, u)
		}
	}
	if s.all.All && !keep(s.all.Expires) {
		s.all = core.Revocation{}
	}
	s.purgeAt = next
}

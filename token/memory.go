package token

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/lpsec/lpsec/token/internal/core"
)

// MemoryStore is a Store in process memory, for tests, single-instance
// servers and development. Its contents are lost on exit and not shared
// between processes; use tokenpg.Store for anything else.
type MemoryStore struct {
	cfg core.Settings

	mu       sync.Mutex
	regs     map[core.Digest]*Registration
	machines map[core.Digest]*Machine
	syncs    map[core.Digest]*Sync
	live     map[string]core.Digest // machine name -> its live machine token
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore. Options: WithClock,
// WithLogger, WithMachineLifetime; any other is ErrInvalidOption.
func NewMemoryStore(opts ...Option) (*MemoryStore, error) {
	cfg, err := core.Build("NewMemoryStore", core.ForStores, opts)
	if err != nil {
		return nil, err
	}
	return &MemoryStore{
		cfg:      cfg,
		regs:     make(map[core.Digest]*Registration),
		machines: make(map[core.Digest]*Machine),
		syncs:    make(map[core.Digest]*Sync),
		live:     make(map[string]core.Digest),
	}, nil
}

// IssueRegistration implements Store.
func (s *MemoryStore) IssueRegistration(ctx context.Context, r Registration) (string, Registration, error) {
	if err := ctx.Err(); err != nil {
		return "", Registration{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	now := s.cfg.Clock()
	if err := core.CheckRegistration(r.Tier, r.Name, r.Uses, r.ValidUntil, now); err != nil {
		return "", Registration{}, err
	}
	tok, d, err := core.NewToken()
	if err != nil {
		return "", Registration{}, err
	}
	rec := Registration{ID: d.String(), Tier: r.Tier, Name: r.Name, Uses: r.Uses, UsesLeft: r.Uses,
		ValidUntil: core.Stamp(r.ValidUntil), Created: now}
	s.mu.Lock()
	stored := rec
	s.regs[d] = &stored
	s.mu.Unlock()
	core.LogIssued(ctx, s.cfg.Log, "registration", d)
	return tok, rec, nil
}

// AuthenticateRegistration implements Store.
func (s *MemoryStore) AuthenticateRegistration(ctx context.Context, tok string) (Registration, error) {
	if err := ctx.Err(); err != nil {
		return Registration{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	d, err := core.DigestOf(tok)
	if err != nil {
		return Registration{}, err
	}
	now := s.cfg.Clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.regs[d]
	if !ok {
		return Registration{}, ErrUnknown
	}
	if err := core.RegistrationState(r.Revoked, r.ValidUntil, r.UsesLeft, now); err != nil {
		return Registration{}, err
	}
	return *r, nil
}

// Register implements Store.
func (s *MemoryStore) Register(ctx context.Context, registrationToken, machine string) (string, Machine, error) {
	if err := ctx.Err(); err != nil {
		return "", Machine{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	rd, tok, md, err := core.PrepareRegister(registrationToken, machine)
	if err != nil {
		return "", Machine{}, err
	}
	now := s.cfg.Clock()

	s.mu.Lock()
	r, ok := s.regs[rd]
	if !ok {
		s.mu.Unlock()
		core.LogRegisterFailed(ctx, s.cfg.Log, rd, ErrUnknown)
		return "", Machine{}, ErrUnknown
	}
	if err := core.RegistrationState(r.Revoked, r.ValidUntil, r.UsesLeft, now); err != nil {
		s.mu.Unlock()
		core.LogRegisterFailed(ctx, s.cfg.Log, rd, err)
		return "", Machine{}, err
	}
	if r.UsesLeft > 0 {
		r.UsesLeft--
	}
	old, replaced := s.live[machine]
	if replaced {
		s.machines[old].Revoked = true
	}
	m := Machine{ID: md.String(), Machine: machine, Tier: r.Tier, Registration: r.ID,
		Created: now, ValidUntil: s.cfg.MachineValidUntil(now)}
	stored := m
	s.machines[md] = &stored
	s.live[machine] = md
	s.mu.Unlock()

	core.LogRegistered(ctx, s.cfg.Log, rd, md)
	if replaced {
		core.LogReplaced(ctx, s.cfg.Log, old, md)
	}
	return tok, m, nil
}

// AuthenticateMachine implements Store.
func (s *MemoryStore) AuthenticateMachine(ctx context.Context, tok string) (Machine, error) {
	if err := ctx.Err(); err != nil {
		return Machine{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	d, err := core.DigestOf(tok)
	if err != nil {
		return Machine{}, err
	}
	now := s.cfg.Clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.machines[d]
	if !ok {
		return Machine{}, ErrUnknown
	}
	if err := core.State(m.Revoked, m.ValidUntil, now); err != nil {
		return Machine{}, err
	}
	if m.LastSeen.IsZero() || !m.LastSeen.After(now.Add(-core.LastSeenEvery)) {
		m.LastSeen = now
	}
	return *m, nil
}

// IssueSync implements Store.
func (s *MemoryStore) IssueSync(ctx context.Context, sy Sync) (string, Sync, error) {
	if err := ctx.Err(); err != nil {
		return "", Sync{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	now := s.cfg.Clock()
	if err := core.CheckSync(sy.Tier, sy.Name, sy.ValidUntil, now); err != nil {
		return "", Sync{}, err
	}
	tok, d, err := core.NewToken()
	if err != nil {
		return "", Sync{}, err
	}
	rec := Sync{ID: d.String(), Tier: sy.Tier, Name: sy.Name, ValidUntil: core.Stamp(sy.ValidUntil), Created: now}
	s.mu.Lock()
	stored := rec
	s.syncs[d] = &stored
	s.mu.Unlock()
	core.LogIssued(ctx, s.cfg.Log, "sync", d)
	return tok, rec, nil
}

// AuthenticateSync implements Store.
func (s *MemoryStore) AuthenticateSync(ctx context.Context, tok string) (Sync, error) {
	if err := ctx.Err(); err != nil {
		return Sync{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	d, err := core.DigestOf(tok)
	if err != nil {
		return Sync{}, err
	}
	now := s.cfg.Clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	sy, ok := s.syncs[d]
	if !ok {
		return Sync{}, ErrUnknown
	}
	if err := core.State(sy.Revoked, sy.ValidUntil, now); err != nil {
		return Sync{}, err
	}
	if sy.LastUsed.IsZero() || !sy.LastUsed.After(now.Add(-core.LastSeenEvery)) {
		sy.LastUsed = now
	}
	return *sy, nil
}

// RevokeRegistration implements Store.
func (s *MemoryStore) RevokeRegistration(ctx context.Context, id string) error {
	return s.revoke(ctx, "registration", id, func(d core.Digest) bool {
		r, ok := s.regs[d]
		if ok {
			r.Revoked = true
		}
		return ok
	})
}

// RevokeMachine implements Store.
func (s *MemoryStore) RevokeMachine(ctx context.Context, id string) error {
	return s.revoke(ctx, "machine", id, func(d core.Digest) bool {
		m, ok := s.machines[d]
		if ok {
			m.Revoked = true
			if s.live[m.Machine] == d {
				delete(s.live, m.Machine)
			}
		}
		return ok
	})
}

// RevokeSync implements Store.
func (s *MemoryStore) RevokeSync(ctx context.Context, id string) error {
	return s.revoke(ctx, "sync", id, func(d core.Digest) bool {
		sy, ok := s.syncs[d]
		if ok {
			sy.Revoked = true
		}
		return ok
	})
}

func (s *MemoryStore) revoke(ctx context.Context, kind, id string, mark func(core.Digest) bool) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	d, err := core.ParseID(id)
	if err != nil {
		return err
	}
	s.mu.Lock()
	ok := mark(d)
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: no %s token with this ID", ErrUnknown, kind)
	}
	core.LogRevoked(ctx, s.cfg.Log, kind, d)
	return nil
}

// ListRegistrations implements Store.
func (s *MemoryStore) ListRegistrations(ctx context.Context) ([]Registration, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	s.mu.Lock()
	out := make([]Registration, 0, len(s.regs))
	for _, r := range s.regs {
		out = append(out, *r)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return older(out[i].Created, out[i].ID, out[j].Created, out[j].ID) })
	return out, nil
}

// ListMachines implements Store.
func (s *MemoryStore) ListMachines(ctx context.Context) ([]Machine, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	s.mu.Lock()
	out := make([]Machine, 0, len(s.machines))
	for _, m := range s.machines {
		out = append(out, *m)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return older(out[i].Created, out[i].ID, out[j].Created, out[j].ID) })
	return out, nil
}

// ListSyncs implements Store.
func (s *MemoryStore) ListSyncs(ctx context.Context) ([]Sync, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	s.mu.Lock()
	out := make([]Sync, 0, len(s.syncs))
	for _, sy := range s.syncs {
		out = append(out, *sy)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return older(out[i].Created, out[i].ID, out[j].Created, out[j].ID) })
	return out, nil
}

// older is the order List methods return: by creation, then by ID (the
// order PostgreSQL's ORDER BY created, id gives, hex preserving byte order).
func older(ta time.Time, ida string, tb time.Time, idb string) bool {
	if !ta.Equal(tb) {
		return ta.Before(tb)
	}
	return ida < idb
}

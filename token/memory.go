package token

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// MemoryStore is a Store in process memory, for tests, single-instance
// servers and development. Its contents are lost on exit and not shared
// between processes; use PostgresStore for anything else.
type MemoryStore struct {
	cfg config

	mu       sync.Mutex
	regs     map[digest]*Registration
	machines map[digest]*Machine
	syncs    map[digest]*Sync
	live     map[string]digest // machine name -> its live machine token
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore. Options: WithClock,
// WithLogger, WithMachineLifetime.
func NewMemoryStore(opts ...Option) *MemoryStore {
	return &MemoryStore{
		cfg:      newConfig(opts),
		regs:     make(map[digest]*Registration),
		machines: make(map[digest]*Machine),
		syncs:    make(map[digest]*Sync),
		live:     make(map[string]digest),
	}
}

// newToken returns a token and its digest.
// prepareRegister is what every Store's Register does before touching
// storage, so that both stores refuse the same inputs: it digests the
// registration token, checks the machine name, and mints the machine token.
func prepareRegister(registrationToken, machine string) (rd digest, tok string, md digest, err error) {
	if rd, err = digestOf(registrationToken); err != nil {
		return digest{}, "", digest{}, err
	}
	if err = checkField("machine", machine); err != nil {
		return digest{}, "", digest{}, err
	}
	if tok, md, err = newToken(); err != nil {
		return digest{}, "", digest{}, err
	}
	return rd, tok, md, nil
}

func newToken() (string, digest, error) {
	tok, err := Generate()
	if err != nil {
		return "", digest{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	d, err := digestOf(tok)
	return tok, d, err
}

// IssueRegistration implements Store.
func (s *MemoryStore) IssueRegistration(ctx context.Context, r Registration) (string, Registration, error) {
	if err := ctx.Err(); err != nil {
		return "", Registration{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
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
	s.mu.Lock()
	stored := rec
	s.regs[d] = &stored
	s.mu.Unlock()
	logIssued(ctx, s.cfg.log, "registration", d)
	return tok, rec, nil
}

// AuthenticateRegistration implements Store.
func (s *MemoryStore) AuthenticateRegistration(ctx context.Context, tok string) (Registration, error) {
	if err := ctx.Err(); err != nil {
		return Registration{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	d, err := digestOf(tok)
	if err != nil {
		return Registration{}, err
	}
	now := s.cfg.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.regs[d]
	if !ok {
		return Registration{}, ErrUnknown
	}
	if err := registrationState(r, now); err != nil {
		return Registration{}, err
	}
	return *r, nil
}

func registrationState(r *Registration, now time.Time) error {
	if err := state(r.Revoked, r.ValidUntil, now); err != nil {
		return err
	}
	if r.UsesLeft == 0 {
		return ErrExhausted
	}
	return nil
}

// Register implements Store.
func (s *MemoryStore) Register(ctx context.Context, registrationToken, machine string) (string, Machine, error) {
	if err := ctx.Err(); err != nil {
		return "", Machine{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	rd, tok, md, err := prepareRegister(registrationToken, machine)
	if err != nil {
		return "", Machine{}, err
	}
	now := s.cfg.clock()

	s.mu.Lock()
	r, ok := s.regs[rd]
	if !ok {
		s.mu.Unlock()
		logRegisterFailed(ctx, s.cfg.log, rd, ErrUnknown)
		return "", Machine{}, ErrUnknown
	}
	if err := registrationState(r, now); err != nil {
		s.mu.Unlock()
		logRegisterFailed(ctx, s.cfg.log, rd, err)
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
		Created: now, ValidUntil: s.cfg.machineValidUntil(now)}
	stored := m
	s.machines[md] = &stored
	s.live[machine] = md
	s.mu.Unlock()

	logRegistered(ctx, s.cfg.log, rd, md)
	if replaced {
		logReplaced(ctx, s.cfg.log, old, md)
	}
	return tok, m, nil
}

// AuthenticateMachine implements Store.
func (s *MemoryStore) AuthenticateMachine(ctx context.Context, tok string) (Machine, error) {
	if err := ctx.Err(); err != nil {
		return Machine{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	d, err := digestOf(tok)
	if err != nil {
		return Machine{}, err
	}
	now := s.cfg.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.machines[d]
	if !ok {
		return Machine{}, ErrUnknown
	}
	if err := state(m.Revoked, m.ValidUntil, now); err != nil {
		return Machine{}, err
	}
	if m.LastSeen.IsZero() || !m.LastSeen.After(now.Add(-lastSeenEvery)) {
		m.LastSeen = now
	}
	return *m, nil
}

// IssueSync implements Store.
func (s *MemoryStore) IssueSync(ctx context.Context, sy Sync) (string, Sync, error) {
	if err := ctx.Err(); err != nil {
		return "", Sync{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	now := s.cfg.clock()
	if err := sy.check(now); err != nil {
		return "", Sync{}, err
	}
	tok, d, err := newToken()
	if err != nil {
		return "", Sync{}, err
	}
	rec := Sync{ID: d.String(), Tier: sy.Tier, Name: sy.Name, ValidUntil: stamp(sy.ValidUntil), Created: now}
	s.mu.Lock()
	stored := rec
	s.syncs[d] = &stored
	s.mu.Unlock()
	logIssued(ctx, s.cfg.log, "sync", d)
	return tok, rec, nil
}

// AuthenticateSync implements Store.
func (s *MemoryStore) AuthenticateSync(ctx context.Context, tok string) (Sync, error) {
	if err := ctx.Err(); err != nil {
		return Sync{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	d, err := digestOf(tok)
	if err != nil {
		return Sync{}, err
	}
	now := s.cfg.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	sy, ok := s.syncs[d]
	if !ok {
		return Sync{}, ErrUnknown
	}
	if err := state(sy.Revoked, sy.ValidUntil, now); err != nil {
		return Sync{}, err
	}
	if sy.LastUsed.IsZero() || !sy.LastUsed.After(now.Add(-lastSeenEvery)) {
		sy.LastUsed = now
	}
	return *sy, nil
}

// RevokeRegistration implements Store.
func (s *MemoryStore) RevokeRegistration(ctx context.Context, id string) error {
	return s.revoke(ctx, "registration", id, func(d digest) bool {
		r, ok := s.regs[d]
		if ok {
			r.Revoked = true
		}
		return ok
	})
}

// RevokeMachine implements Store.
func (s *MemoryStore) RevokeMachine(ctx context.Context, id string) error {
	return s.revoke(ctx, "machine", id, func(d digest) bool {
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
	return s.revoke(ctx, "sync", id, func(d digest) bool {
		sy, ok := s.syncs[d]
		if ok {
			sy.Revoked = true
		}
		return ok
	})
}

func (s *MemoryStore) revoke(ctx context.Context, kind, id string, mark func(digest) bool) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	d, err := parseID(id)
	if err != nil {
		return err
	}
	s.mu.Lock()
	ok := mark(d)
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: no %s token with this ID", ErrUnknown, kind)
	}
	logRevoked(ctx, s.cfg.log, kind, d)
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

func logIssued(ctx context.Context, l *slog.Logger, kind string, d digest) {
	l.LogAttrs(ctx, slog.LevelInfo, "token issued",
		slog.String("event", evIssued), slog.String("kind", kind), slog.String("id_prefix", d.short()))
}

func logRegistered(ctx context.Context, l *slog.Logger, reg, m digest) {
	l.LogAttrs(ctx, slog.LevelInfo, "machine registered",
		slog.String("event", evRegistered), slog.String("kind", "machine"),
		slog.String("registration_id_prefix", reg.short()), slog.String("id_prefix", m.short()))
}

func logReplaced(ctx context.Context, l *slog.Logger, old, m digest) {
	l.LogAttrs(ctx, slog.LevelInfo, "machine re-registered; previous machine token revoked",
		slog.String("event", evReplaced), slog.String("kind", "machine"),
		slog.String("old_id_prefix", old.short()), slog.String("id_prefix", m.short()))
}

func logRevoked(ctx context.Context, l *slog.Logger, kind string, d digest) {
	l.LogAttrs(ctx, slog.LevelInfo, "token revoked",
		slog.String("event", evRevoked), slog.String("kind", kind), slog.String("id_prefix", d.short()))
}

func logRegisterFailed(ctx context.Context, l *slog.Logger, reg digest, err error) {
	l.LogAttrs(ctx, slog.LevelWarn, "registration refused",
		slog.String("event", evAuthnFailed), slog.String("kind", "registration"),
		slog.String("op", "register"), slog.String("reason", reason(err)),
		slog.String("id_prefix", reg.short()))
}

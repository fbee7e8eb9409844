package token

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/lpsec/lpsec/token/internal/core"
)

// MemoryStore is a Store in process memory, for tests, single-instance
// servers and development. Its contents are lost on exit and not shared
// between processes; use tokenpg.Store for anything else.
//
// Size: one record per issued registration and sync token, and per machine
// name at most 1+KeepReplaced machine records (about 400 bytes each) until
// PruneMachines removes revoked ones after the retention. Authentication
// takes a read lock (a write lock once a minute per token, to record
// LastSeen); ListMachines holds the read lock only while it copies one
// page, so listing never stalls authentication for longer than that.
type MemoryStore struct {
	cfg core.Settings

	mu       sync.RWMutex
	regs     map[core.Digest]*Registration
	machines map[core.Digest]*memMachine
	syncs    map[core.Digest]*Sync
	live     map[string]core.Digest   // machine name -> its live machine token
	history  map[string][]*memMachine // machine name -> its records, oldest first
	order    []*memMachine            // registration order; nil where pruned
	seqs     []int64                  // order's sequence numbers, for the cursor search
	seq      int64                    // last sequence number given
	holes    int                      // nil entries in order
}

// memMachine is a machine record with what only the store sees.
type memMachine struct {
	rec        Machine
	seq        int64
	revokedAt  time.Time
	retryKey   core.Digest
	hasKey     bool
	retryUntil time.Time
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore. Options: WithClock,
// WithLogger, WithMachineLifetime, WithRetryWindow, WithMachineRetention;
// any other is ErrInvalidOption.
func NewMemoryStore(opts ...Option) (*MemoryStore, error) {
	cfg, err := core.Build("NewMemoryStore", core.ForStores, opts)
	if err != nil {
		return nil, err
	}
	return &MemoryStore{
		cfg:      cfg,
		regs:     make(map[core.Digest]*Registration),
		machines: make(map[core.Digest]*memMachine),
		syncs:    make(map[core.Digest]*Sync),
		live:     make(map[string]core.Digest),
		history:  make(map[string][]*memMachine),
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
	s.mu.RLock()
	defer s.mu.RUnlock()
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
func (s *MemoryStore) Register(ctx context.Context, registrationToken, machine string, opts ...RegisterOption) (string, Machine, error) {
	if err := ctx.Err(); err != nil {
		return "", Machine{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	p, err := core.BuildRegister(opts)
	if err != nil {
		return "", Machine{}, err
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
	// A retry takes no use, so an exhausted token may still retry; revoked
	// and expired ones may not.
	if err := core.State(r.Revoked, r.ValidUntil, now); err != nil {
		s.mu.Unlock()
		core.LogRegisterFailed(ctx, s.cfg.Log, rd, err)
		return "", Machine{}, err
	}
	liveRec := s.liveLocked(machine)
	dec := core.Decide(liveRec, p, r.ID, "", now)
	if dec != core.Retry && r.UsesLeft == 0 {
		s.mu.Unlock()
		core.LogRegisterFailed(ctx, s.cfg.Log, rd, ErrExhausted)
		return "", Machine{}, ErrExhausted
	}
	if dec == core.Taken {
		s.mu.Unlock()
		core.LogTaken(ctx, s.cfg.Log, "registration", liveRec.ID)
		return "", Machine{}, ErrMachineTaken
	}
	if dec != core.Retry && r.UsesLeft > 0 {
		r.UsesLeft--
	}
	m := Machine{ID: md.String(), Machine: machine, Tier: r.Tier, Registration: r.ID,
		Created: now, ValidUntil: s.cfg.MachineValidUntil(now)}
	s.insertLocked(m, md, p, liveRec, dec, now)
	s.mu.Unlock()

	core.LogRegistered(ctx, s.cfg.Log, rd, md)
	logReplacement(ctx, s.cfg.Log, liveRec, dec, md)
	return tok, m, nil
}

// RegisterExternal implements Store.
func (s *MemoryStore) RegisterExternal(ctx context.Context, ext External, machine string, opts ...RegisterOption) (string, Machine, error) {
	if err := ctx.Err(); err != nil {
		return "", Machine{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	p, err := core.BuildRegister(opts)
	if err != nil {
		return "", Machine{}, err
	}
	if err := core.CheckExternal(ext.Issuer, ext.Ref, ext.Tier); err != nil {
		return "", Machine{}, err
	}
	if err := core.CheckField("machine", machine); err != nil {
		return "", Machine{}, err
	}
	tok, md, err := core.NewToken()
	if err != nil {
		return "", Machine{}, err
	}
	now := s.cfg.Clock()
	s.mu.Lock()
	liveRec := s.liveLocked(machine)
	dec := core.Decide(liveRec, p, "", ext.Issuer, now)
	if dec == core.Taken {
		s.mu.Unlock()
		core.LogTaken(ctx, s.cfg.Log, "external", liveRec.ID)
		return "", Machine{}, ErrMachineTaken
	}
	m := Machine{ID: md.String(), Machine: machine, Tier: ext.Tier, Issuer: ext.Issuer, ExternalRef: ext.Ref,
		Created: now, ValidUntil: s.cfg.MachineValidUntil(now)}
	s.insertLocked(m, md, p, liveRec, dec, now)
	s.mu.Unlock()

	core.LogRegisteredExternal(ctx, s.cfg.Log, ext.Issuer, md)
	logReplacement(ctx, s.cfg.Log, liveRec, dec, md)
	return tok, m, nil
}

func logReplacement(ctx context.Context, l *slog.Logger, live *core.Live, dec core.Decision, md core.Digest) {
	switch {
	case live == nil:
	case dec == core.Retry:
		core.LogRetried(ctx, l, live.ID, md)
	default:
		core.LogReplaced(ctx, l, live.ID, md)
	}
}

// liveLocked returns the name's non-revoked record, or nil.
func (s *MemoryStore) liveLocked(machine string) *core.Live {
	d, ok := s.live[machine]
	if !ok {
		return nil
	}
	e := s.machines[d]
	return &core.Live{ID: d, Registration: e.rec.Registration, Issuer: e.rec.Issuer, LastSeen: e.rec.LastSeen,
		ValidUntil: e.rec.ValidUntil, RetryKey: e.retryKey, HasKey: e.hasKey, RetryUntil: e.retryUntil}
}

// insertLocked revokes the name's previous record, stores m and prunes the
// name's history to KeepReplaced revoked records.
func (s *MemoryStore) insertLocked(m Machine, md core.Digest, p core.RegisterParams, live *core.Live, dec core.Decision, now time.Time) {
	if live != nil {
		old := s.machines[live.ID]
		old.rec.Revoked, old.revokedAt = true, now
	}
	s.seq++
	e := &memMachine{rec: m, seq: s.seq}
	switch {
	case dec == core.Retry:
		// The retried registration keeps its key and its window: retrying
		// cannot extend it.
		old := s.machines[live.ID]
		e.retryKey, e.hasKey, e.retryUntil = old.retryKey, true, old.retryUntil
	case p.HasKey:
		e.retryKey, e.hasKey, e.retryUntil = p.RetryKey, true, s.cfg.RetryUntil(now)
	}
	s.machines[md] = e
	s.live[m.Machine] = md
	s.order = append(s.order, e)
	s.seqs = append(s.seqs, e.seq)
	h := append(s.history[m.Machine], e)
	if drop := len(h) - 1 - KeepReplaced; drop > 0 {
		for _, old := range h[:drop] {
			s.removeLocked(old)
		}
		h = append([]*memMachine(nil), h[drop:]...)
	}
	s.history[m.Machine] = h
}

// removeLocked deletes a revoked record; the order slice is compacted when
// half of it is holes, so its size stays within twice the records held.
func (s *MemoryStore) removeLocked(e *memMachine) {
	d, _ := core.ParseID(e.rec.ID)
	delete(s.machines, d)
	i := sort.Search(len(s.seqs), func(i int) bool { return s.seqs[i] >= e.seq })
	if i < len(s.seqs) && s.seqs[i] == e.seq && s.order[i] != nil {
		s.order[i] = nil
		s.holes++
	}
	if s.holes > 1024 && s.holes > len(s.order)/2 {
		order, seqs := make([]*memMachine, 0, len(s.order)-s.holes), make([]int64, 0, len(s.order)-s.holes)
		for _, o := range s.order {
			if o != nil {
				order, seqs = append(order, o), append(seqs, o.seq)
			}
		}
		s.order, s.seqs, s.holes = order, seqs, 0
	}
}

// ReleaseMachine implements Store.
func (s *MemoryStore) ReleaseMachine(ctx context.Context, machine string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err := core.CheckField("machine", machine); err != nil {
		return err
	}
	now := s.cfg.Clock()
	s.mu.Lock()
	d, ok := s.live[machine]
	if ok {
		e := s.machines[d]
		e.rec.Revoked, e.revokedAt = true, now
		delete(s.live, machine)
	}
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: machine name has no live machine token", ErrUnknown)
	}
	core.LogReleased(ctx, s.cfg.Log, d)
	return nil
}

// PruneMachines implements Store. It scans in batches of MaxListLimit
// records, taking the write lock for one batch at a time.
func (s *MemoryStore) PruneMachines(ctx context.Context) (int, error) {
	cutoff := s.cfg.Clock().Add(-s.cfg.Retention)
	n := 0
	var after int64
	for {
		if err := ctx.Err(); err != nil {
			return n, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		s.mu.Lock()
		i := sort.Search(len(s.seqs), func(i int) bool { return s.seqs[i] > after })
		end := min(i+MaxListLimit, len(s.order))
		var victims []*memMachine
		for _, e := range s.order[i:end] {
			if e != nil && e.rec.Revoked && e.revokedAt.Before(cutoff) {
				victims = append(victims, e)
			}
		}
		if end > i {
			after = s.seqs[end-1]
		}
		for _, e := range victims {
			h := s.history[e.rec.Machine]
			for j, o := range h {
				if o == e {
					h = append(h[:j:j], h[j+1:]...)
					break
				}
			}
			if len(h) == 0 {
				delete(s.history, e.rec.Machine)
			} else {
				s.history[e.rec.Machine] = h
			}
			s.removeLocked(e)
		}
		more := end < len(s.order)
		s.mu.Unlock()
		n += len(victims)
		if !more {
			core.LogPruned(ctx, s.cfg.Log, n)
			return n, nil
		}
	}
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
	s.mu.RLock()
	e, ok := s.machines[d]
	var m Machine
	if ok {
		m = e.rec
	}
	s.mu.RUnlock()
	if !ok {
		return Machine{}, ErrUnknown
	}
	if err := core.State(m.Revoked, m.ValidUntil, now); err != nil {
		return Machine{}, err
	}
	if m.LastSeen.IsZero() || !m.LastSeen.After(now.Add(-core.LastSeenEvery)) {
		// The write lock once a minute per token; re-check under it, as the
		// record may have been revoked or pruned meanwhile.
		s.mu.Lock()
		e, ok = s.machines[d]
		if ok {
			if err := core.State(e.rec.Revoked, e.rec.ValidUntil, now); err != nil {
				s.mu.Unlock()
				return Machine{}, err
			}
			if e.rec.LastSeen.IsZero() || !e.rec.LastSeen.After(now.Add(-core.LastSeenEvery)) {
				e.rec.LastSeen = now
			}
			m = e.rec
		}
		s.mu.Unlock()
		if !ok {
			return Machine{}, ErrUnknown
		}
	}
	return m, nil
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
	now := s.cfg.Clock()
	return s.revoke(ctx, "machine", id, func(d core.Digest) bool {
		e, ok := s.machines[d]
		if ok && !e.rec.Revoked {
			e.rec.Revoked, e.revokedAt = true, now
			if s.live[e.rec.Machine] == d {
				delete(s.live, e.rec.Machine)
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
	s.mu.RLock()
	out := make([]Registration, 0, len(s.regs))
	for _, r := range s.regs {
		out = append(out, *r)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return older(out[i].Created, out[i].ID, out[j].Created, out[j].ID) })
	return out, nil
}

// ListMachines implements Store.
func (s *MemoryStore) ListMachines(ctx context.Context, after string, limit int) ([]Machine, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	from, err := core.ParseCursor(after)
	if err != nil {
		return nil, "", err
	}
	if err := core.CheckLimit(limit); err != nil {
		return nil, "", err
	}
	out := make([]Machine, 0, min(limit, 64))
	var last int64
	s.mu.RLock()
	i := sort.Search(len(s.seqs), func(i int) bool { return s.seqs[i] > from })
	for ; i < len(s.order) && len(out) < limit; i++ {
		if e := s.order[i]; e != nil {
			out = append(out, e.rec)
			last = e.seq
		}
	}
	more := false
	for ; i < len(s.order); i++ {
		if s.order[i] != nil {
			more = true
			break
		}
	}
	s.mu.RUnlock()
	if !more {
		return out, "", nil
	}
	return out, strconv.FormatInt(last, 10), nil
}

// ListSyncs implements Store.
func (s *MemoryStore) ListSyncs(ctx context.Context) ([]Sync, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	s.mu.RLock()
	out := make([]Sync, 0, len(s.syncs))
	for _, sy := range s.syncs {
		out = append(out, *sy)
	}
	s.mu.RUnlock()
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

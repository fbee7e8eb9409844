package token

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/lpsec/lpsec/token/internal/core"
)

// Store keeps token records by digest. MemoryStore and tokenpg.Store
// implement it with the same behaviour (one conformance suite tests both).
//
// Issue methods return the token value once; it is not kept anywhere.
// Authenticate methods take the token as the client sent it and return
// its record, or an error matching ErrMalformed, ErrUnknown, ErrRevoked,
// ErrExpired, ErrExhausted (registration) or ErrUnavailable; they never
// succeed when the store cannot answer. Revoke methods take a record ID
// (see ID), are idempotent, and return ErrUnknown for an ID that was never
// issued. List methods return records only, oldest first.
type Store interface {
	// IssueRegistration creates a registration token from r's Tier, Name,
	// Uses and ValidUntil.
	IssueRegistration(ctx context.Context, r Registration) (string, Registration, error)
	// AuthenticateRegistration checks a registration token without using it.
	AuthenticateRegistration(ctx context.Context, tok string) (Registration, error)
	// Register exchanges one use of a registration token for a new machine
	// token for machine, atomically. Any earlier live token of the same
	// machine is revoked in the same step, so a machine has at most one
	// live machine token and re-registering is how a client recovers a lost
	// one.
	Register(ctx context.Context, registrationToken, machine string) (string, Machine, error)
	// AuthenticateMachine checks a machine token and records LastSeen (at
	// most once a minute, so that authenticating is nearly always a read).
	AuthenticateMachine(ctx context.Context, tok string) (Machine, error)
	// IssueSync creates a sync token from s's Tier, Name and ValidUntil.
	IssueSync(ctx context.Context, s Sync) (string, Sync, error)
	// AuthenticateSync checks a sync token and records LastUsed, like
	// AuthenticateMachine.
	AuthenticateSync(ctx context.Context, tok string) (Sync, error)

	// Revoking a registration token stops new registrations with it; the
	// machine tokens already exchanged for it stay valid.
	RevokeRegistration(ctx context.Context, id string) error
	RevokeMachine(ctx context.Context, id string) error
	RevokeSync(ctx context.Context, id string) error

	ListRegistrations(ctx context.Context) ([]Registration, error)
	ListMachines(ctx context.Context) ([]Machine, error)
	ListSyncs(ctx context.Context) ([]Sync, error)
}

// An Option configures NewMemoryStore, tokenpg.NewStore or NewMiddleware.
// Each option's documentation says which constructors accept it; giving an
// option to a constructor it does not apply to, or a nil or non-positive
// value, makes the constructor fail with an error wrapping ErrInvalidOption
// that names the option, never silently ignored. Options are opaque (the
// type is shared with token/tokenpg through an internal package).
type Option = core.Option

// WithClock replaces time.Now. Stores only (NewMemoryStore,
// tokenpg.NewStore). Expiry is judged by this clock, not the database's, so
// the instances sharing a database should keep their clocks in sync (NTP).
// A nil clock is ErrInvalidOption.
func WithClock(now func() time.Time) Option {
	return core.NewOption("WithClock", core.ForStores, func(s *core.Settings) error {
		if now == nil {
			return errors.New("nil clock")
		}
		s.Now = now
		return nil
	})
}

// WithLogger receives security events: records with a stable "event"
// attribute and at most an 8-hex-digit prefix of a record ID, never a token.
// Every constructor accepts it. Without it events are discarded; a nil
// logger is ErrInvalidOption.
func WithLogger(l *slog.Logger) Option {
	return core.NewOption("WithLogger", core.ForAll, func(s *core.Settings) error {
		if l == nil {
			return errors.New("nil logger")
		}
		s.Log = l
		return nil
	})
}

// WithMachineLifetime makes machine tokens expire d after Register. Stores
// only (NewMemoryStore, tokenpg.NewStore); NewMiddleware refuses it. Without
// it machine tokens do not expire: clients keep their machine token for as
// long as they run and re-register when it is revoked. d <= 0 is
// ErrInvalidOption.
func WithMachineLifetime(d time.Duration) Option {
	return core.NewOption("WithMachineLifetime", core.ForStores, func(s *core.Settings) error {
		if d <= 0 {
			return fmt.Errorf("lifetime %v is not positive", d)
		}
		s.MachineLifetime = d
		return nil
	})
}

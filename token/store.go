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
	// token for machine, atomically. A machine name has at most one live
	// machine token: when it already has one, Register succeeds only with
	// WithCurrentToken naming that token (a rotation: the old token is
	// revoked in the same step) or, without taking a use, with the
	// WithRetryKey of the registration that made it (see the package doc);
	// otherwise it fails with ErrMachineTaken and changes nothing. An
	// expired or revoked token does not hold the name.
	Register(ctx context.Context, registrationToken, machine string, opts ...RegisterOption) (string, Machine, error)
	// RegisterExternal is Register for a machine the caller admitted on a
	// credential it verified itself (ext): same atomicity, same possession
	// rule, same events, no use counted and no registration token.
	RegisterExternal(ctx context.Context, ext External, machine string, opts ...RegisterOption) (string, Machine, error)
	// ReleaseMachine revokes the live machine token of a machine name, if
	// it has one, so that the name can be registered again: what an admin
	// does for a machine that lost its state. ErrUnknown if the name has no
	// live token.
	ReleaseMachine(ctx context.Context, machine string) error
	// PruneMachines deletes machine records revoked more than the
	// retention (WithMachineRetention) ago and returns how many. Call it
	// periodically; it works in bounded batches.
	PruneMachines(ctx context.Context) (int, error)
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
	// ListMachines returns up to limit (1..MaxListLimit) machine records
	// in registration order after the cursor ("" for the first page) and
	// the cursor of the next page, "" after the last. Its cost grows with
	// limit, not with the records held, and it never holds up
	// authentication for longer than one page takes to copy.
	ListMachines(ctx context.Context, after string, limit int) ([]Machine, string, error)
	ListSyncs(ctx context.Context) ([]Sync, error)
}

// A RegisterOption is given to Store.Register or Store.RegisterExternal.
type RegisterOption = core.RegisterOption

// WithCurrentToken proves possession of the machine name's live machine
// token: the registration is a rotation and revokes it. A malformed token
// is ErrMalformed; a token that is not the name's live one is
// ErrMachineTaken (when the name has a live token) or ignored (when it has
// none).
func WithCurrentToken(machineToken string) RegisterOption {
	return core.NewRegisterOption("WithCurrentToken", func(p *core.RegisterParams) error {
		d, err := core.DigestOf(machineToken)
		if err != nil {
			return fmt.Errorf("WithCurrentToken: %w", err)
		}
		p.Current, p.HasCurrent = d, true
		return nil
	})
}

// WithRetryKey attaches the client's idempotency key, a fresh value from
// Generate that the client keeps until it has its machine token, to a
// registration. The store keeps only its digest. Repeating the same
// registration (same registration token or same External.Issuer) with the
// same key within the retry window, while the machine token it made has
// never authenticated, returns a fresh machine token for the machine,
// revokes the unseen one and takes no use. A malformed key is
// ErrMalformed.
func WithRetryKey(key string) RegisterOption {
	return core.NewRegisterOption("WithRetryKey", func(p *core.RegisterParams) error {
		d, err := core.DigestOf(key)
		if err != nil {
			return fmt.Errorf("WithRetryKey: %w", err)
		}
		p.RetryKey, p.HasKey = d, true
		return nil
	})
}

// WithRetryWindow sets how long after a registration it may be retried
// with its WithRetryKey. Stores only; default DefaultRetryWindow; d <= 0 is
// ErrInvalidOption.
func WithRetryWindow(d time.Duration) Option {
	return core.NewOption("WithRetryWindow", core.ForStores, func(s *core.Settings) error {
		if d <= 0 {
			return fmt.Errorf("window %v is not positive", d)
		}
		s.RetryWindow = d
		return nil
	})
}

// WithMachineRetention sets how long revoked machine records are kept
// before PruneMachines deletes them (a revoked token then authenticates as
// ErrUnknown instead of ErrRevoked). Stores only; default
// DefaultMachineRetention; d <= 0 is ErrInvalidOption.
func WithMachineRetention(d time.Duration) Option {
	return core.NewOption("WithMachineRetention", core.ForStores, func(s *core.Settings) error {
		if d <= 0 {
			return fmt.Errorf("retention %v is not positive", d)
		}
		s.Retention = d
		return nil
	})
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

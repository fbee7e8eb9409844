package token

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"
)

// Store keeps token records by digest. MemoryStore and PostgresStore
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

// Option configures a store or a Middleware; each says which it applies to
// and the others ignore it.
type Option func(*config)

type config struct {
	now             func() time.Time
	log             *slog.Logger
	machineLifetime time.Duration
	errorWriter     ErrorWriter // Middleware only; nil: httperr's JSON body
}

func newConfig(opts []Option) config {
	c := config{now: time.Now, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, o := range opts {
		o(&c)
	}
	return c
}

func (c *config) clock() time.Time { return stamp(c.now()) }

// WithClock replaces time.Now (stores only). Expiry is judged by
// this clock, not the database's, so the instances sharing a database
// should keep their clocks in sync (NTP).
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.now = now
		}
	}
}

// WithLogger receives security events (stores and Middleware): records with
// a stable "event" attribute and at most an 8-hex-digit prefix of a record
// ID, never a token. The default discards them.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.log = l
		}
	}
}

// WithMachineLifetime makes machine tokens expire d after Register (stores
// only). The default, zero, is no expiry: clients keep their machine token
// for as long as they run and re-register when it is revoked.
func WithMachineLifetime(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.machineLifetime = d
		}
	}
}

func (c *config) machineValidUntil(now time.Time) time.Time {
	if c.machineLifetime <= 0 {
		return time.Time{}
	}
	return stamp(now.Add(c.machineLifetime))
}

// Stable event names.
const (
	evIssued      = "token_issued"
	evRegistered  = "token_registered"
	evReplaced    = "token_machine_replaced"
	evRevoked     = "token_revoked"
	evAuthnFailed = "token_authn_failed"
	evUnavailable = "token_store_unavailable"
)

func reason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrMalformed):
		return "malformed"
	case errors.Is(err, ErrUnknown):
		return "unknown"
	case errors.Is(err, ErrRevoked):
		return "revoked"
	case errors.Is(err, ErrExpired):
		return "expired"
	case errors.Is(err, ErrExhausted):
		return "exhausted"
	case errors.Is(err, ErrInvalid):
		return "invalid"
	default:
		return "unavailable"
	}
}

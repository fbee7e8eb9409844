package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Scope says which constructors accept an option.
type Scope uint8

const (
	// ForStores: token.NewMemoryStore and tokenpg.NewStore.
	ForStores Scope = 1 << iota
	// ForMiddleware: token.NewMiddleware.
	ForMiddleware
	// ForDatabase: tokenpg.NewStore only (it also accepts ForStores).
	ForDatabase

	ForAll = ForStores | ForMiddleware
)

// Option is token.Option. It is defined here so that tokenpg.NewStore takes
// the same options as token.NewMemoryStore; its fields stay unexported, so
// callers can only make one with token's With functions.
type Option struct {
	name  string
	scope Scope
	apply func(*Settings) error
}

// NewOption is how package token makes its options.
func NewOption(name string, sc Scope, apply func(*Settings) error) Option {
	return Option{name: name, scope: sc, apply: apply}
}

// Settings is what the options set.
type Settings struct {
	Now             func() time.Time
	Log             *slog.Logger
	MachineLifetime time.Duration // zero: machine tokens do not expire
	RetryWindow     time.Duration
	Retention       time.Duration
	StoreTimeout    time.Duration // bound on each tokenpg.Store call
	AuthCacheTTL    time.Duration // zero: tokenpg.Store caches no authentication
	AuthCacheSize   int
	// ErrorWriter writes Middleware's refusals; nil: the shared JSON body.
	ErrorWriter func(w http.ResponseWriter, r *http.Request, status int, code, message string)
}

// DefaultStoreTimeout is token.DefaultStoreTimeout.
const DefaultStoreTimeout = 2 * time.Second

// Build applies opts for the constructor ctor (named in errors), which
// accepts the options in scope sc. Misuse wraps ErrInvalidOption.
func Build(ctor string, sc Scope, opts []Option) (Settings, error) {
	s := Settings{Now: time.Now, Log: slog.New(slog.DiscardHandler),
		RetryWindow: DefaultRetryWindow, Retention: DefaultMachineRetention, StoreTimeout: DefaultStoreTimeout}
	for _, o := range opts {
		if o.apply == nil {
			return Settings{}, fmt.Errorf("%w: zero Option given to %s", ErrInvalidOption, ctor)
		}
		if o.scope&sc == 0 {
			return Settings{}, fmt.Errorf("%w: %s does not apply to %s", ErrInvalidOption, o.name, ctor)
		}
		if err := o.apply(&s); err != nil {
			return Settings{}, fmt.Errorf("%w: %s: %v", ErrInvalidOption, o.name, err)
		}
	}
	return s, nil
}

// Clock returns the current time at store precision.
func (s *Settings) Clock() time.Time { return Stamp(s.Now()) }

// MachineValidUntil is the expiry of a machine token registered at now.
func (s *Settings) MachineValidUntil(now time.Time) time.Time {
	if s.MachineLifetime <= 0 {
		return time.Time{}
	}
	return Stamp(now.Add(s.MachineLifetime))
}

// Stable event names.
const (
	EvIssued      = "token_issued"
	EvRegistered  = "token_registered"
	EvReplaced    = "token_machine_replaced"
	EvRevoked     = "token_revoked"
	EvAuthnFailed = "token_authn_failed"
	EvUnavailable = "token_store_unavailable"
	EvTaken       = "token_machine_taken"
	EvReleased    = "token_machine_released"
	EvRetried     = "token_register_retried"
	EvPruned      = "token_machines_pruned"
)

// Reason is the "reason" attribute of a token_authn_failed event.
func Reason(err error) string {
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
	case errors.Is(err, ErrMachineTaken):
		return "taken"
	default:
		return "unavailable"
	}
}

func LogIssued(ctx context.Context, l *slog.Logger, kind string, d Digest) {
	l.LogAttrs(ctx, slog.LevelInfo, "token issued",
		slog.String("event", EvIssued), slog.String("kind", kind), slog.String("id_prefix", d.Short()))
}

func LogRegistered(ctx context.Context, l *slog.Logger, reg, m Digest) {
	l.LogAttrs(ctx, slog.LevelInfo, "machine registered",
		slog.String("event", EvRegistered), slog.String("kind", "machine"),
		slog.String("registration_id_prefix", reg.Short()), slog.String("id_prefix", m.Short()))
}

// LogRegisteredExternal is token_registered for RegisterExternal.
func LogRegisteredExternal(ctx context.Context, l *slog.Logger, issuer string, m Digest) {
	l.LogAttrs(ctx, slog.LevelInfo, "machine registered",
		slog.String("event", EvRegistered), slog.String("kind", "machine"),
		slog.String("issuer", issuer), slog.String("id_prefix", m.Short()))
}

// LogTaken records a registration refused by the possession rule.
func LogTaken(ctx context.Context, l *slog.Logger, source string, live Digest) {
	l.LogAttrs(ctx, slog.LevelWarn, "registration refused: machine name has a live machine token",
		slog.String("event", EvTaken), slog.String("kind", "machine"),
		slog.String("source", source), slog.String("live_id_prefix", live.Short()))
}

// LogReleased records an admin's release of a machine name.
func LogReleased(ctx context.Context, l *slog.Logger, m Digest) {
	l.LogAttrs(ctx, slog.LevelInfo, "machine name released; its machine token revoked",
		slog.String("event", EvReleased), slog.String("kind", "machine"), slog.String("id_prefix", m.Short()))
}

// LogRetried records a registration repeated with its idempotency key.
func LogRetried(ctx context.Context, l *slog.Logger, old, m Digest) {
	l.LogAttrs(ctx, slog.LevelInfo, "registration retried; unseen machine token replaced",
		slog.String("event", EvRetried), slog.String("kind", "machine"),
		slog.String("old_id_prefix", old.Short()), slog.String("id_prefix", m.Short()))
}

// LogPruned records how many old machine records were deleted.
func LogPruned(ctx context.Context, l *slog.Logger, n int) {
	if n > 0 {
		l.LogAttrs(ctx, slog.LevelInfo, "old machine records pruned",
			slog.String("event", EvPruned), slog.Int("count", n))
	}
}

func LogReplaced(ctx context.Context, l *slog.Logger, old, m Digest) {
	l.LogAttrs(ctx, slog.LevelInfo, "machine re-registered; previous machine token revoked",
		slog.String("event", EvReplaced), slog.String("kind", "machine"),
		slog.String("old_id_prefix", old.Short()), slog.String("id_prefix", m.Short()))
}

func LogRevoked(ctx context.Context, l *slog.Logger, kind string, d Digest) {
	l.LogAttrs(ctx, slog.LevelInfo, "token revoked",
		slog.String("event", EvRevoked), slog.String("kind", kind), slog.String("id_prefix", d.Short()))
}

func LogRegisterFailed(ctx context.Context, l *slog.Logger, reg Digest, err error) {
	l.LogAttrs(ctx, slog.LevelWarn, "registration refused",
		slog.String("event", EvAuthnFailed), slog.String("kind", "registration"),
		slog.String("op", "register"), slog.String("reason", Reason(err)),
		slog.String("id_prefix", reg.Short()))
}

// LogUnavailable records a store fault and returns it wrapped in
// ErrUnavailable.
func LogUnavailable(ctx context.Context, l *slog.Logger, op string, err error) error {
	l.LogAttrs(ctx, slog.LevelError, "token store unavailable",
		slog.String("event", EvUnavailable), slog.String("op", op), slog.String("error", err.Error()))
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
}

package token

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/lpsec/lpsec/internal/authheader"
	"github.com/lpsec/lpsec/internal/httperr"
	"github.com/lpsec/lpsec/token/internal/core"
)

// MaxAuthorizationLen bounds the Authorization header the middleware reads:
// "Bearer " and a 36-character token, with room to spare. Longer headers are
// refused before any parsing or store query.
const MaxAuthorizationLen = 128

// ErrNoBearer: the request carries no "Authorization: Bearer" credentials.
var ErrNoBearer = errors.New("token: no bearer token")

// BearerToken returns the token of the request's single
// "Authorization: Bearer <token>" header, checked with Parse. The header
// follows the rules every lpsec package applies (RFC 9110 §11.6.2): scheme
// in any case, one or more spaces before the token, optional whitespace
// around the value ignored, no control or non-ASCII byte anywhere. A missing
// header or another scheme gives ErrNoBearer; several Authorization headers,
// one longer than MaxAuthorizationLen, a header that breaks those rules
// (including "Bearer" with no token) or a malformed token give
// ErrMalformed.
func BearerToken(r *http.Request) (string, error) {
	tok, err := authheader.Credentials(r.Header.Values("Authorization"), "Bearer", MaxAuthorizationLen)
	switch {
	case errors.Is(err, authheader.ErrMissing), errors.Is(err, authheader.ErrOtherScheme):
		return "", ErrNoBearer
	case err != nil:
		return "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if _, err := Parse(tok); err != nil {
		return "", err
	}
	return tok, nil
}

// Middleware authenticates HTTP requests with the tokens of a Store, one
// method per token kind. A request without a bearer token gets 401 with
// "WWW-Authenticate: Bearer" (RFC 6750 §3.1: no error code when no
// credentials were sent); any bad token gets 401 with
// `WWW-Authenticate: Bearer error="invalid_token"`, whatever was wrong with
// it; a store fault gets 503. It logs one record per refused request.
//
// Refusals are written by WithErrorWriter's writer, by default the JSON
// body every lpsec middleware writes, {"code":"…","error":"…"}:
//
//	status  code           WWW-Authenticate                when
//	401     unauthorized   Bearer                          no bearer token
//	401     invalid_token  Bearer error="invalid_token"    any bad token
//	503     unavailable    -                               store fault
type Middleware struct {
	store      Store
	log        *slog.Logger
	writeError ErrorWriter
}

// ErrorWriter writes a refusal of Middleware: the status, a stable code and
// a message (see the table at Middleware). WWW-Authenticate is already set.
// It must not echo anything from the request.
type ErrorWriter func(w http.ResponseWriter, r *http.Request, status int, code, message string)

// WithErrorWriter replaces the writer of Middleware's refusals (default:
// the JSON body {"code","error"} every lpsec middleware writes).
// NewMiddleware only; a nil writer is ErrInvalidOption.
func WithErrorWriter(ew ErrorWriter) Option {
	return core.NewOption("WithErrorWriter", core.ForMiddleware, func(s *core.Settings) error {
		if ew == nil {
			return errors.New("nil ErrorWriter")
		}
		s.ErrorWriter = ew
		return nil
	})
}

// NewMiddleware returns a Middleware on store. Options: WithLogger,
// WithErrorWriter; any other (WithClock, WithMachineLifetime belong to the
// store) is ErrInvalidOption, as is a nil store.
func NewMiddleware(store Store, opts ...Option) (*Middleware, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: NewMiddleware: nil Store", ErrInvalidOption)
	}
	c, err := core.Build("NewMiddleware", core.ForMiddleware, opts)
	if err != nil {
		return nil, err
	}
	ew := ErrorWriter(func(w http.ResponseWriter, _ *http.Request, status int, code, msg string) {
		httperr.Write(w, status, code, msg)
	})
	if c.ErrorWriter != nil {
		ew = c.ErrorWriter
	}
	return &Middleware{store: store, log: c.Log, writeError: ew}, nil
}

type ctxKey int

const (
	ctxMachine ctxKey = iota
	ctxSync
	ctxRegistration
)

// Machine passes requests with a valid machine token to next, with the
// record in the context (MachineFromContext).
func (m *Middleware) Machine(next http.Handler) http.Handler {
	return m.wrap("machine", next, func(ctx context.Context, tok string) (context.Context, string, error) {
		rec, err := m.store.AuthenticateMachine(ctx, tok)
		return context.WithValue(ctx, ctxMachine, rec), rec.ID, err
	})
}

// Sync passes requests with a valid sync token to next, with the record in
// the context (SyncFromContext).
func (m *Middleware) Sync(next http.Handler) http.Handler {
	return m.wrap("sync", next, func(ctx context.Context, tok string) (context.Context, string, error) {
		rec, err := m.store.AuthenticateSync(ctx, tok)
		return context.WithValue(ctx, ctxSync, rec), rec.ID, err
	})
}

// Registration passes requests with a usable registration token to next,
// with the record in the context (RegistrationFromContext). It does not use
// the token up: the handler calls Store.Register with BearerToken(r), which
// checks it again atomically and may still fail (ErrExhausted when
// concurrent registrations took the last use).
func (m *Middleware) Registration(next http.Handler) http.Handler {
	return m.wrap("registration", next, func(ctx context.Context, tok string) (context.Context, string, error) {
		rec, err := m.store.AuthenticateRegistration(ctx, tok)
		return context.WithValue(ctx, ctxRegistration, rec), rec.ID, err
	})
}

type authFunc func(ctx context.Context, tok string) (context.Context, string, error)

func (m *Middleware) wrap(kind string, next http.Handler, auth authFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		tok, err := BearerToken(r)
		if err != nil {
			m.refuse(ctx, w, r, kind, "", err)
			return
		}
		ctx, id, err := auth(ctx, tok)
		if err != nil {
			// The digest prefix lets an admin match the refusal to a record
			// (or see it matches none) without the log holding the token.
			prefix := ""
			if d, derr := core.DigestOf(tok); derr == nil {
				prefix = d.Short()
			}
			m.refuse(r.Context(), w, r, kind, prefix, err)
			return
		}
		m.log.LogAttrs(ctx, slog.LevelDebug, "token authenticated",
			slog.String("event", "token_authn_ok"), slog.String("kind", kind),
			slog.String("id_prefix", id[:core.LogPrefixLen]))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (m *Middleware) refuse(ctx context.Context, w http.ResponseWriter, r *http.Request, kind, prefix string, err error) {
	attrs := []slog.Attr{slog.String("event", core.EvAuthnFailed), slog.String("kind", kind)}
	switch {
	case errors.Is(err, ErrNoBearer):
		attrs = append(attrs, slog.String("reason", "missing"))
	default:
		attrs = append(attrs, slog.String("reason", core.Reason(err)))
	}
	if prefix != "" {
		attrs = append(attrs, slog.String("id_prefix", prefix))
	}
	if errors.Is(err, ErrUnavailable) {
		m.log.LogAttrs(ctx, slog.LevelError, "token check failed: store unavailable", attrs...)
		m.writeError(w, r, http.StatusServiceUnavailable, "unavailable", "token store unavailable")
		return
	}
	m.log.LogAttrs(ctx, slog.LevelWarn, "token refused", attrs...)
	if errors.Is(err, ErrNoBearer) {
		w.Header().Set("WWW-Authenticate", `Bearer`)
		m.writeError(w, r, http.StatusUnauthorized, "unauthorized", "bearer token required")
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	m.writeError(w, r, http.StatusUnauthorized, "invalid_token", "token not accepted")
}

// MachineFromContext returns the machine token record Middleware.Machine
// put in ctx.
func MachineFromContext(ctx context.Context) (Machine, bool) {
	v, ok := ctx.Value(ctxMachine).(Machine)
	return v, ok
}

// SyncFromContext returns the sync token record Middleware.Sync put in ctx.
func SyncFromContext(ctx context.Context) (Sync, bool) {
	v, ok := ctx.Value(ctxSync).(Sync)
	return v, ok
}

// RegistrationFromContext returns the registration token record
// Middleware.Registration put in ctx.
func RegistrationFromContext(ctx context.Context) (Registration, bool) {
	v, ok := ctx.Value(ctxRegistration).(Registration)
	return v, ok
}

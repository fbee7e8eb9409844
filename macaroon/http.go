package macaroon

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"

	"github.com/lpsec/lpsec/internal/httperr"
	"github.com/lpsec/lpsec/macaroon/internal/core"
)

// ErrorWriter writes a refusal: status, a stable machine-readable code and a
// human-readable message (see Middleware for the table). The middleware has
// already set WWW-Authenticate when the status is 401. A custom writer must
// not echo anything from the request: it is where credentials arrive.
type ErrorWriter func(w http.ResponseWriter, r *http.Request, status int, code, message string)

// WriteJSONError is the default ErrorWriter: the JSON body
// {"code":"…","error":"…"} that the auth and token middlewares also write,
// with Content-Type application/json and Cache-Control no-store.
func WriteJSONError(w http.ResponseWriter, _ *http.Request, status int, code, message string) {
	httperr.Write(w, status, code, message)
}

// Minter mints, for a request, a macaroon granting ops whose third-party
// caveats the client must get discharged (typically Service.MintResource).
// The middleware sends it in httpbakery's discharge-required answer.
type Minter func(ctx context.Context, r *http.Request, ops []bakery.Op) (*bakery.Macaroon, error)

// WithErrorWriter replaces the writer of a Middleware's refusals (default
// WriteJSONError). It is never used for the discharge-required answer,
// whose format is httpbakery's. NewMiddleware only; nil is
// ErrInvalidOption.
func WithErrorWriter(ew ErrorWriter) Option {
	return core.NewOption("WithErrorWriter", core.ForMiddleware, func(s *core.Settings) error {
		if ew == nil {
			return errors.New("nil ErrorWriter")
		}
		s.ErrorWriter = ew
		return nil
	})
}

// WithDischargeRequired makes the middleware answer httpbakery's
// discharge-required error (WriteDischargeRequired) with a macaroon from
// mint whenever a fresh discharged macaroon would let the request through:
// no macaroon (ErrMissing), a missing or expired discharge
// (ErrDischargeRequired), an expired macaroon (ErrExpired) or an unknown
// root key (ErrUnknownRootKey). Stock httpbakery clients (Go and Python)
// then discharge it and retry. cookieNameSuffix names the cookie they keep
// it in ("" means DefaultCookieNameSuffix; otherwise at most 128 bytes of
// cookie-name token characters); the cookie path is the site root, as
// httpbakery's default. NewMiddleware only; a nil mint or a bad suffix is
// ErrInvalidOption.
func WithDischargeRequired(mint Minter, cookieNameSuffix string) Option {
	return core.NewOption("WithDischargeRequired", core.ForMiddleware, func(s *core.Settings) error {
		if mint == nil {
			return errors.New("nil Minter")
		}
		if err := checkCookieSuffix(cookieNameSuffix); err != nil {
			return fmt.Errorf("cookie name suffix: %w", err)
		}
		s.Mint, s.CookieSuffix = mint, cookieNameSuffix
		return nil
	})
}

// Middleware is macaroon's HTTP layer: it verifies the macaroons of a
// request (Service.VerifyRequest) for the operations an endpoint needs,
// puts the Grant in the request context (GrantFromContext) and refuses
// everything else. Service.Require is the short form with the defaults.
//
// Every verification error maps to one answer (the table the package
// documents once; the example server and its integration tests rely on it):
//
//	error                 status  code                 WWW-Authenticate
//	ErrMissing            401     unauthorized         Macaroon
//	ErrMalformed          400     malformed_macaroon   -
//	ErrExpired            401     expired              Macaroon
//	ErrDischargeRequired  401     discharge_required   Macaroon
//	ErrUnknownRootKey     401     unknown_root_key     Macaroon
//	ErrRevoked            401     revoked              Macaroon
//	ErrUserRefused        403     user_refused         -
//	ErrDenied             403     denied               -
//	ErrUnavailable        503     unavailable          -
//
// With WithDischargeRequired, ErrMissing, ErrExpired, ErrDischargeRequired
// and ErrUnknownRootKey are answered instead with httpbakery's
// discharge-required error (407 to protocol version 0, else 401 with
// WWW-Authenticate: Macaroon), carrying a freshly minted macaroon; a
// failure to mint is 503 unavailable. A revoked macaroon (ErrRevoked) or
// refused user is never answered with a fresh one: revocation must stick. Bodies never contain anything the
// request carried.
type Middleware struct {
	svc          *Service
	writeError   ErrorWriter
	mint         Minter
	cookieSuffix string
}

// NewMiddleware returns a Middleware verifying with svc. Options:
// WithErrorWriter, WithDischargeRequired; any other option, or a nil svc,
// is ErrInvalidOption.
func NewMiddleware(svc *Service, opts ...Option) (*Middleware, error) {
	if svc == nil {
		return nil, fmt.Errorf("%w: NewMiddleware: nil Service", ErrInvalidOption)
	}
	s, err := core.Build("NewMiddleware", core.ForMiddleware, opts)
	if err != nil {
		return nil, err
	}
	m := &Middleware{svc: svc, writeError: WriteJSONError, mint: s.Mint, cookieSuffix: s.CookieSuffix}
	if s.ErrorWriter != nil {
		m.writeError = s.ErrorWriter
	}
	return m, nil
}

// Require returns a middleware that serves next only to requests whose
// macaroons grant every one of ops (with no ops, every request is refused
// with 403: an empty check is a bug, and fails closed).
func (s *Service) Require(ops ...bakery.Op) func(http.Handler) http.Handler {
	m := &Middleware{svc: s, writeError: WriteJSONError}
	return m.Require(ops...)
}

// Require returns a middleware that serves next only to requests whose
// macaroons grant every one of ops, with the Grant in the context.
func (m *Middleware) Require(ops ...bakery.Op) func(http.Handler) http.Handler {
	ops = append([]bakery.Op(nil), ops...)
	return m.RequireFunc(func(*http.Request) []bakery.Op { return ops })
}

// RequireFunc is Require for endpoints whose operations depend on the
// request (a path value, say): opsFor is called once per request.
func (m *Middleware) RequireFunc(opsFor func(*http.Request) []bakery.Op) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			ops := opsFor(r)
			g, err := m.svc.VerifyRequest(ctx, r, ops...)
			if err == nil {
				next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, grantKey{}, g)))
				return
			}
			m.refuse(w, r, ops, err)
		})
	}
}

func (m *Middleware) refuse(w http.ResponseWriter, r *http.Request, ops []bakery.Op, err error) {
	if m.mint != nil && recoverable(err) {
		mac, merr := m.mint(r.Context(), r, ops)
		if merr != nil {
			m.svc.log.ErrorContext(r.Context(), "cannot mint a macaroon to discharge",
				"event", "macaroon_mint_failed", "error", merr.Error())
			m.writeError(w, r, http.StatusServiceUnavailable, "unavailable", "cannot mint a macaroon now")
			return
		}
		if werr := WriteDischargeRequired(w, r, DischargeRequired{Macaroon: mac, MacaroonPath: "/", CookieNameSuffix: m.cookieSuffix}); werr != nil {
			m.writeError(w, r, http.StatusInternalServerError, "internal", "internal error")
		}
		return
	}
	status, code, msg := HTTPStatus(err)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", authScheme)
	}
	m.writeError(w, r, status, code, msg)
}

// recoverable reports whether a freshly minted and discharged macaroon
// would let the request through.
func recoverable(err error) bool {
	if errors.Is(err, ErrUnavailable) {
		return false
	}
	return errors.Is(err, ErrMissing) || errors.Is(err, ErrDischargeRequired) ||
		errors.Is(err, ErrExpired) || errors.Is(err, ErrUnknownRootKey)
}

// HTTPStatus maps a verification error to the status, code and message of
// Middleware's table; the message says which kind of failure it was and
// nothing about the macaroon. An error matching none of the sentinels is
// 403 denied (fail closed).
func HTTPStatus(err error) (status int, code, message string) {
	switch {
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable, "unavailable", "cannot verify macaroons now"
	case errors.Is(err, ErrMissing):
		return http.StatusUnauthorized, "unauthorized", "macaroon required"
	case errors.Is(err, ErrMalformed):
		return http.StatusBadRequest, "malformed_macaroon", "malformed macaroon"
	case errors.Is(err, ErrDischargeRequired):
		return http.StatusUnauthorized, "discharge_required", "macaroon needs a discharge"
	case errors.Is(err, ErrExpired):
		return http.StatusUnauthorized, "expired", "macaroon expired"
	case errors.Is(err, ErrUnknownRootKey):
		return http.StatusUnauthorized, "unknown_root_key", "macaroon's root key is unknown or revoked"
	case errors.Is(err, ErrRevoked):
		return http.StatusUnauthorized, "revoked", "macaroon was logged out or revoked"
	case errors.Is(err, ErrUserRefused):
		return http.StatusForbidden, "user_refused", "this user is no longer accepted"
	default: // ErrDenied and anything unknown
		return http.StatusForbidden, "denied", "macaroon does not grant this operation"
	}
}

type grantKey struct{}

// GrantFromContext returns the Grant a Middleware put in the request
// context.
func GrantFromContext(ctx context.Context) (*Grant, bool) {
	g, ok := ctx.Value(grantKey{}).(*Grant)
	return g, ok && g != nil
}

// Package core holds what package macaroon and its PostgreSQL root-key
// store, macaroon/macaroonpg, share: the options (so that
// macaroonpg.NewRootKeyStore takes macaroon's options) and the root-key
// material. Keeping them here lets macaroonpg live in its own package, so
// that importing macaroon links no database driver.
package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"
)

// ErrInvalidOption is macaroon.ErrInvalidOption.
var ErrInvalidOption = errors.New("macaroon: invalid option")

// Defaults; package macaroon exports and documents them.
const (
	DefaultTTL            = 8 * time.Hour
	DefaultMaxTTL         = 240 * time.Hour
	DefaultDischargeTTL   = 10 * time.Minute
	DefaultRotationPeriod = 24 * time.Hour
	DefaultCacheTTL       = 30 * time.Second
	DefaultRevocationTTL  = 5 * time.Second
	DefaultClientTimeout  = 30 * time.Second
	DefaultStoreTimeout   = 2 * time.Second
)

// Scope says which constructors accept an option.
type Scope uint16

const (
	ForService Scope = 1 << iota
	ForDischarger
	ForDischargeClient
	ForMemoryRootKeys
	ForPostgresRootKeys
	ForMiddleware
	ForMemoryRevocations
	ForPostgresRevocations

	ForRootKeys    = ForMemoryRootKeys | ForPostgresRootKeys
	ForRevocations = ForMemoryRevocations | ForPostgresRevocations
	ForStores      = ForRootKeys | ForRevocations
)

// RevocationStore is macaroon.RevocationStore (declared here so that
// Settings can hold one).
type RevocationStore interface {
	Revoke(ctx context.Context, r Revocation) error
	Revoked(ctx context.Context, id, user string, issued time.Time) (bool, error)
}

// Revocation is macaroon.Revocation.
type Revocation struct {
	ID      string
	User    string
	All     bool
	Before  time.Time
	Expires time.Time
}

// Option is macaroon.Option; its fields stay unexported, so callers can
// only make one with macaroon's With functions.
type Option struct {
	name  string
	scope Scope
	apply func(*Settings) error
}

// NewOption is how package macaroon makes its options.
func NewOption(name string, sc Scope, apply func(*Settings) error) Option {
	return Option{name: name, scope: sc, apply: apply}
}

// Settings is what the options set.
type Settings struct {
	Now          func() time.Time
	Log          *slog.Logger
	DefaultTTL   time.Duration
	MaxTTL       time.Duration
	ThirdParties map[string]*bakery.PublicKey
	// IdentityProviders are the third parties whose discharges may
	// declare a login macaroon's user (WithIdentityProvider).
	IdentityProviders map[string]*bakery.PublicKey
	DischargeTTL      time.Duration
	HTTPClient        *http.Client

	RotationPeriod time.Duration
	CacheTTL       time.Duration // zero: no cache (WithoutRootKeyCache)
	StoreTimeout   time.Duration // bound on each PostgreSQL store call

	Revocations RevocationStore
	CheckUser   func(ctx context.Context, user string) error
	// CheckIdentity is WithCheckIdentity's callback: provider, user, groups.
	CheckIdentity func(ctx context.Context, provider, user string, groups []string) error

	// NewMiddleware: the refusal writer (nil: the shared JSON body) and,
	// with WithDischargeRequired, the minter and cookie name suffix.
	ErrorWriter  func(w http.ResponseWriter, r *http.Request, status int, code, message string)
	Mint         func(ctx context.Context, r *http.Request, ops []bakery.Op) (*bakery.Macaroon, error)
	CookieSuffix string
}

// Build applies opts for the constructor ctor (named in errors), which
// accepts the options in scope sc. Misuse wraps ErrInvalidOption.
func Build(ctor string, sc Scope, opts []Option) (*Settings, error) {
	s := &Settings{
		Now:               time.Now,
		Log:               slog.New(slog.DiscardHandler),
		DefaultTTL:        DefaultTTL,
		MaxTTL:            DefaultMaxTTL,
		DischargeTTL:      DefaultDischargeTTL,
		RotationPeriod:    DefaultRotationPeriod,
		CacheTTL:          DefaultCacheTTL,
		StoreTimeout:      DefaultStoreTimeout,
		ThirdParties:      map[string]*bakery.PublicKey{},
		IdentityProviders: map[string]*bakery.PublicKey{},
	}
	for _, o := range opts {
		if o.apply == nil {
			return nil, fmt.Errorf("%w: zero Option given to %s", ErrInvalidOption, ctor)
		}
		if o.scope&sc == 0 {
			return nil, fmt.Errorf("%w: %s does not apply to %s", ErrInvalidOption, o.name, ctor)
		}
		if err := o.apply(s); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalidOption, o.name, err)
		}
	}
	if sc&ForPostgresRevocations != 0 && !cacheSet(opts) {
		s.CacheTTL = DefaultRevocationTTL
	}
	for loc := range s.IdentityProviders {
		if _, dup := s.ThirdParties[loc]; dup {
			return nil, fmt.Errorf("%w: WithIdentityProvider: %q is also pinned with WithThirdParty; a location is an identity provider or an entitlement service, not both", ErrInvalidOption, loc)
		}
	}
	if sc&ForService != 0 && s.DefaultTTL > s.MaxTTL {
		return nil, fmt.Errorf("%w: WithDefaultTTL %v exceeds WithMaxTTL %v", ErrInvalidOption, s.DefaultTTL, s.MaxTTL)
	}
	return s, nil
}

// Root keys are 32 bytes; their ids 16. Get rejects any other id length
// before touching storage, which bounds what an attacker-chosen id can cost.
const (
	RootKeyLen   = 32
	RootKeyIDLen = 16
)

// ErrRevokeMalformedID is what Revoke returns for an id that no store ever
// issues; it wraps bakery.ErrNotFound.
var ErrRevokeMalformedID = fmt.Errorf("macaroon: revoke root key: id must be %d bytes: %w", RootKeyIDLen, bakery.ErrNotFound)

// NewRootKeyMaterial returns a fresh 32-byte root key and a 16-byte id, both
// from crypto/rand and independent, so the id reveals nothing about the key
// and cannot be guessed.
func NewRootKeyMaterial() (key, id []byte, err error) {
	buf := make([]byte, RootKeyLen+RootKeyIDLen)
	if _, err := rand.Read(buf); err != nil {
		return nil, nil, fmt.Errorf("macaroon: generate root key: %w", err)
	}
	return buf[:RootKeyLen:RootKeyLen], buf[RootKeyLen:], nil
}

// RootKeyIDAttr renders a key id for logs. Ids are not secret (every
// macaroon carries its id) and identify which key an operator revoked.
func RootKeyIDAttr(id []byte) slog.Attr {
	return slog.String("root_key_id", hex.EncodeToString(id))
}

// Clone hands callers their own copy, so nothing they do to a returned
// slice reaches a store's state.
func Clone(b []byte) []byte { return append([]byte(nil), b...) }

// cacheSet reports whether opts set the cache TTL (the revocation store's
// default differs from the root-key store's).
func cacheSet(opts []Option) bool {
	for _, o := range opts {
		if o.name == "WithCacheTTL" || o.name == "WithoutRevocationCache" {
			return true
		}
	}
	return false
}

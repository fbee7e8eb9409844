package macaroon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"

	"github.com/lpsec/lpsec/macaroon/internal/core"
)

// An Option configures NewService, NewDischarger, NewDischargeClient,
// NewMemoryRootKeyStore, macaroonpg.NewRootKeyStore,
// NewMemoryRevocationStore or macaroonpg.NewRevocationStore. Each option's
// documentation says which constructors accept it; giving an option to a
// constructor it does not apply to, a nil value or a non-positive duration
// makes the constructor fail with an error wrapping ErrInvalidOption that
// names the option, never silently ignored. Options are opaque (the type is
// shared with macaroon/macaroonpg through an internal package).
type Option = core.Option

// ErrInvalidOption: a constructor was given an option it does not accept,
// an option with a nil or non-positive value, conflicting options, or a
// missing required argument. The error names what was wrong.
var ErrInvalidOption = core.ErrInvalidOption

// Defaults of the options (internal/core applies them; a test keeps the two
// in step).
const (
	// DefaultTTL is the lifetime of a macaroon minted with ttl 0
	// (WithDefaultTTL): one working day. A login macaroon is a bearer
	// credential; a holder logs in again cheaply, so a stolen one should
	// not outlive the day it was taken. Revocation (WithRevocations) ends
	// sessions earlier, but only those someone knows to end.
	DefaultTTL = 8 * time.Hour
	// DefaultMaxTTL caps every macaroon lifetime, and is how long root-key
	// stores keep a key after its last use for minting (WithMaxTTL). It is
	// the 240 hours the live-patch protocol's clients allow; DefaultTTL is
	// shorter.
	DefaultMaxTTL = 240 * time.Hour
	// DefaultDischargeTTL is the lifetime of a discharge (WithDischargeTTL).
	DefaultDischargeTTL = 10 * time.Minute
	// DefaultRootKeyRotationPeriod is how long one root key mints
	// (WithRotationPeriod).
	DefaultRootKeyRotationPeriod = 24 * time.Hour
	// DefaultRootKeyCacheTTL bounds how long the PostgreSQL store trusts a
	// key it read without asking again (WithCacheTTL).
	DefaultRootKeyCacheTTL = 30 * time.Second
	// DefaultRevocationCacheTTL bounds how long a PostgreSQL revocation
	// store answers from the revocations it last read (WithCacheTTL): a
	// revocation made on one instance is refused on every other within it.
	DefaultRevocationCacheTTL = 5 * time.Second
)

func positive(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("duration %v is not positive", d)
	}
	return nil
}

// WithLogger receives security events: records with a stable "event"
// attribute that never carry a macaroon, a signature or a key. NewService,
// NewDischarger and the root-key stores accept it (NewDischargeClient logs
// nothing). Without it events are discarded; a nil logger is
// ErrInvalidOption.
func WithLogger(l *slog.Logger) Option {
	return core.NewOption("WithLogger", core.ForService|core.ForDischarger|core.ForStores, func(s *core.Settings) error {
		if l == nil {
			return errors.New("nil logger")
		}
		s.Log = l
		return nil
	})
}

// WithClock replaces time.Now. NewService, NewDischarger, the root-key
// stores and the revocation stores accept it. Instances sharing a database should have synchronised
// clocks: skew shifts rotation and expiry by the same amount. A nil clock
// is ErrInvalidOption.
func WithClock(now func() time.Time) Option {
	return core.NewOption("WithClock", core.ForService|core.ForDischarger|core.ForStores, func(s *core.Settings) error {
		if now == nil {
			return errors.New("nil clock")
		}
		s.Now = now
		return nil
	})
}

// WithDefaultTTL sets the lifetime of a macaroon minted with ttl 0
// (default DefaultTTL). NewService only. It must be positive and at most
// the MaxTTL.
func WithDefaultTTL(d time.Duration) Option {
	return core.NewOption("WithDefaultTTL", core.ForService, func(s *core.Settings) error {
		s.DefaultTTL = d
		return positive(d)
	})
}

// WithMaxTTL is the longest lifetime of a macaroon (default DefaultMaxTTL).
// For NewService it caps every requested lifetime; for the root-key stores
// it is how long a key is kept after its last use for minting (a key lives
// until created + RotationPeriod + MaxTTL), so give the stores at least the
// Service's value. It must be positive.
func WithMaxTTL(d time.Duration) Option {
	return core.NewOption("WithMaxTTL", core.ForService|core.ForRootKeys, func(s *core.Settings) error {
		s.MaxTTL = d
		return positive(d)
	})
}

// WithThirdParty pins a third party that resource macaroons may address:
// its https location and public key. A caveat for any other location is
// refused, so a fetched (spoofable) public key is never used. NewService
// only; give it once per third party (the same location twice, a nil key
// or a location that is not https is ErrInvalidOption).
func WithThirdParty(location string, key *bakery.PublicKey) Option {
	return core.NewOption("WithThirdParty", core.ForService, func(s *core.Settings) error {
		if err := checkHTTPSLocation(location); err != nil {
			return err
		}
		if key == nil {
			return fmt.Errorf("%q: nil public key", location)
		}
		if _, dup := s.ThirdParties[location]; dup {
			return fmt.Errorf("%q given twice", location)
		}
		s.ThirdParties[location] = key
		return nil
	})
}

// WithDischargeTTL sets the lifetime the Discharger writes into every
// discharge as a time-before caveat (default DefaultDischargeTTL).
// NewDischarger only; it must be positive.
func WithDischargeTTL(d time.Duration) Option {
	return core.NewOption("WithDischargeTTL", core.ForDischarger, func(s *core.Settings) error {
		s.DischargeTTL = d
		return positive(d)
	})
}

// WithHTTPClient makes a DischargeClient's requests with a copy of c
// (default: a client with a 30 s timeout). Redirects are never followed,
// whatever c says. NewDischargeClient only; nil is ErrInvalidOption.
func WithHTTPClient(c *http.Client) Option {
	return core.NewOption("WithHTTPClient", core.ForDischargeClient, func(s *core.Settings) error {
		if c == nil {
			return errors.New("nil *http.Client")
		}
		s.HTTPClient = c
		return nil
	})
}

// WithRotationPeriod sets how long one root key is used for minting before
// a new one is made (default DefaultRootKeyRotationPeriod). Root-key stores
// only. Below one second is ErrInvalidOption: callers could grow the key set
// without bound, and PostgreSQL keeps only microseconds.
func WithRotationPeriod(d time.Duration) Option {
	return core.NewOption("WithRotationPeriod", core.ForRootKeys, func(s *core.Settings) error {
		if d < time.Second {
			return fmt.Errorf("period %v is shorter than one second", d)
		}
		s.RotationPeriod = d
		return nil
	})
}

// WithCacheTTL sets how long a PostgreSQL store answers from what it read
// from the database without asking again: for macaroonpg.NewRootKeyStore
// (default DefaultRootKeyCacheTTL) the bound on how long a revoked key may
// still verify (and mint) on other instances, for
// macaroonpg.NewRevocationStore (default DefaultRevocationCacheTTL) the
// bound on how long a revoked login macaroon may still verify on other
// instances. PostgreSQL stores only (the memory stores are immediate); it
// must be positive. To revoke at once everywhere use WithoutRootKeyCache
// or WithoutRevocationCache.
func WithCacheTTL(d time.Duration) Option {
	return core.NewOption("WithCacheTTL", core.ForPostgresRootKeys|core.ForPostgresRevocations, func(s *core.Settings) error {
		s.CacheTTL = d
		return positive(d)
	})
}

// WithoutRevocationCache makes a PostgreSQL revocation store ask the
// database on every check, so a revocation is refused at once on every
// instance, for one indexed query per verified login macaroon.
// macaroonpg.NewRevocationStore only.
func WithoutRevocationCache() Option {
	return core.NewOption("WithoutRevocationCache", core.ForPostgresRevocations, func(s *core.Settings) error {
		s.CacheTTL = 0
		return nil
	})
}

// WithRevocations makes NewService refuse, with ErrRevoked, every login
// macaroon that store says was revoked, and enables Service.Logout,
// RevokeID, RevokeUser and RevokeAll. NewService only; a nil store is
// ErrInvalidOption.
func WithRevocations(store RevocationStore) Option {
	return core.NewOption("WithRevocations", core.ForService, func(s *core.Settings) error {
		if store == nil {
			return errors.New("nil RevocationStore")
		}
		s.Revocations = store
		return nil
	})
}

// WithCheckUser makes NewService ask check, on every verification of a
// login macaroon, whether its user may still act: a user removed from the
// admin list, or whose single-sign-on account was disabled, is then refused
// at the next request instead of when the macaroon expires. An error from
// check refuses the request with ErrUserRefused, or with ErrUnavailable
// when it wraps ErrUnavailable (the user directory could not answer).
// check runs after the macaroon has verified, never for resource
// macaroons. NewService only; nil is ErrInvalidOption.
func WithCheckUser(check func(ctx context.Context, user string) error) Option {
	return core.NewOption("WithCheckUser", core.ForService, func(s *core.Settings) error {
		if check == nil {
			return errors.New("nil check")
		}
		s.CheckUser = check
		return nil
	})
}

// WithoutRootKeyCache makes a PostgreSQL root-key store ask the database on
// every Get, so revocation is immediate on every instance.
// macaroonpg.NewRootKeyStore only.
func WithoutRootKeyCache() Option {
	return core.NewOption("WithoutRootKeyCache", core.ForPostgresRootKeys, func(s *core.Settings) error {
		s.CacheTTL = 0
		return nil
	})
}

// allowedLocations checks and normalises NewDischargeClient's allow-list.
func allowedLocations(locs []string) (map[string]bool, error) {
	if len(locs) == 0 {
		return nil, fmt.Errorf("%w: NewDischargeClient: no allowed locations", ErrInvalidOption)
	}
	allowed := make(map[string]bool, len(locs))
	for _, loc := range locs {
		if err := checkHTTPSLocation(loc); err != nil {
			return nil, fmt.Errorf("%w: NewDischargeClient: allowed location: %w", ErrInvalidOption, err)
		}
		allowed[strings.TrimSuffix(loc, "/")] = true
	}
	return allowed, nil
}

package oidc

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
)

// An Option configures [NewVerifier]. Options are made only by the With
// functions of this package; a value that makes no sense makes NewVerifier
// return an error wrapping [ErrInvalidOption] that names the option.
type Option struct {
	name  string
	apply func(*settings) error
}

// Defaults of the options.
const (
	// DefaultClockSkew is how far the verifier's clock and the provider's
	// may disagree on exp, iat and nbf ([WithClockSkew]; at most MaxClockSkew).
	DefaultClockSkew = time.Minute
	MaxClockSkew     = 5 * time.Minute
	// DefaultMaxTokenSize bounds the length of a token before anything is
	// decoded ([WithMaxTokenSize]).
	DefaultMaxTokenSize = 16 << 10
	// DefaultKeyRefreshInterval is the least time between two fetches of
	// the provider's key set: tokens with unknown key IDs cause at most one
	// fetch per interval ([WithKeyRefresh]).
	DefaultKeyRefreshInterval = time.Minute
	// DefaultKeyMaxAge is how long fetched keys are used without a
	// successful refetch; after it, if the provider cannot be reached, every
	// token is refused with ErrProviderUnavailable ([WithKeyRefresh]).
	DefaultKeyMaxAge = time.Hour
)

// Bounds that are not options: the size of a discovery document or key
// set the verifier reads, the number of keys it keeps, the size of a JWT
// header.
const (
	maxDocumentBytes = 256 << 10
	maxKeys          = 64
	maxHeaderBytes   = 4 << 10
)

// defaultAlgorithms are the asymmetric JWS algorithms of RFC 7518 and
// RFC 8037. HMAC ("HS256"...) is never allowed: its key would be the
// client secret or, worse, a public key an attacker knows.
var defaultAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

type settings struct {
	client         *http.Client
	logger         *slog.Logger
	now            func() time.Time
	skew           time.Duration
	maxTokenSize   int
	algorithms     []string
	refresh        time.Duration
	keyMaxAge      time.Duration
	emailIdentity  bool
	adminClaim     string
	adminValue     string
	adminSubjects  []string
	adminEmails    []string
	adminRuleGiven bool
}

func build(opts []Option) (*settings, error) {
	s := &settings{
		client:       http.DefaultClient,
		logger:       slog.New(slog.DiscardHandler),
		now:          time.Now,
		skew:         DefaultClockSkew,
		maxTokenSize: DefaultMaxTokenSize,
		algorithms:   defaultAlgorithms,
		refresh:      DefaultKeyRefreshInterval,
		keyMaxAge:    DefaultKeyMaxAge,
	}
	for _, o := range opts {
		if o.apply == nil {
			return nil, fmt.Errorf("%w: zero Option given to NewVerifier", ErrInvalidOption)
		}
		if err := o.apply(s); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalidOption, o.name, err)
		}
	}
	if !s.adminRuleGiven {
		return nil, fmt.Errorf("%w: no admin rule: give WithAdminClaim, WithAdminSubjects or WithAdminEmails", ErrInvalidOption)
	}
	if len(s.adminEmails) > 0 && !s.emailIdentity {
		// An email allow-list without verified emails would trust an
		// address the user typed into their profile.
		s.emailIdentity = true
	}
	if s.keyMaxAge < s.refresh {
		return nil, fmt.Errorf("%w: WithKeyRefresh: maximum key age %v is shorter than the refresh interval %v", ErrInvalidOption, s.keyMaxAge, s.refresh)
	}
	return s, nil
}

// WithHTTPClient sets the client that fetches the discovery document and
// the key set (default http.DefaultClient). Build it with
// tlsconfig.HTTPClient so that the provider is reached over TLS 1.2+ with
// the configured CA pool and proxies; this package does not import
// tlsconfig (the six lpsec packages are independent). A nil client is an
// error. Responses are read up to 256 KiB whatever the client.
func WithHTTPClient(c *http.Client) Option {
	return Option{"WithHTTPClient", func(s *settings) error {
		if c == nil {
			return fmt.Errorf("nil client")
		}
		s.client = c
		return nil
	}}
}

// WithLogger sends security events to logger: "sso_login" (with the
// user and issuer) and "sso_refused" (with a reason: "too_large",
// "malformed", "algorithm", "unknown_key", "signature",
// "provider_unavailable", "issuer", "audience", "expired",
// "not_yet_valid", "nonce", "no_identity", "not_admin"). Records never
// hold the token. Without this option events are discarded; a nil logger
// is an error.
func WithLogger(logger *slog.Logger) Option {
	return Option{"WithLogger", func(s *settings) error {
		if logger == nil {
			return fmt.Errorf("nil logger")
		}
		s.logger = logger
		return nil
	}}
}

// WithClock replaces time.Now for the token's time claims and the key
// cache; tests use it. A nil clock is an error.
func WithClock(now func() time.Time) Option {
	return Option{"WithClock", func(s *settings) error {
		if now == nil {
			return fmt.Errorf("nil clock")
		}
		s.now = now
		return nil
	}}
}

// WithClockSkew sets how far exp, iat and nbf may be off
// (default DefaultClockSkew; 0 to MaxClockSkew).
func WithClockSkew(d time.Duration) Option {
	return Option{"WithClockSkew", func(s *settings) error {
		if d < 0 || d > MaxClockSkew {
			return fmt.Errorf("skew %v outside [0, %v]", d, MaxClockSkew)
		}
		s.skew = d
		return nil
	}}
}

// WithMaxTokenSize bounds the token length in bytes (default
// DefaultMaxTokenSize); n must be positive.
func WithMaxTokenSize(n int) Option {
	return Option{"WithMaxTokenSize", func(s *settings) error {
		if n <= 0 {
			return fmt.Errorf("size %d is not positive", n)
		}
		s.maxTokenSize = n
		return nil
	}}
}

// WithAlgorithms restricts the accepted signing algorithms (default: RS*,
// PS*, ES* and EdDSA). "none" and the HMAC algorithms are refused: an
// ID token must be signed by the provider's private key.
func WithAlgorithms(algs ...string) Option {
	return Option{"WithAlgorithms", func(s *settings) error {
		if len(algs) == 0 {
			return fmt.Errorf("no algorithm")
		}
		for _, a := range algs {
			if !slices.Contains(defaultAlgorithms, a) {
				return fmt.Errorf("algorithm %q is not an allowed asymmetric JWS algorithm", a)
			}
		}
		s.algorithms = slices.Clone(algs)
		return nil
	}}
}

// WithKeyRefresh sets the least time between two fetches of the key set
// (default DefaultKeyRefreshInterval) and how long fetched keys are used
// without a successful refetch (default DefaultKeyMaxAge). Both must be
// positive and maxAge at least interval. The interval is also how long a
// token signed with a key published since the last fetch may be refused
// (ErrUnknownKey), and how long after a failed fetch the next is tried:
// providers publish a new key before signing with it, so a short interval
// matters only for providers that do not.
func WithKeyRefresh(interval, maxAge time.Duration) Option {
	return Option{"WithKeyRefresh", func(s *settings) error {
		if interval <= 0 || maxAge <= 0 {
			return fmt.Errorf("need a positive interval and maximum age, have %v and %v", interval, maxAge)
		}
		s.refresh, s.keyMaxAge = interval, maxAge
		return nil
	}}
}

// WithEmailIdentity makes the user identity the token's "email" claim,
// which the provider must mark "email_verified": true; without it the
// identity is the issuer and subject. Use it only with a provider that
// owns the email domain: elsewhere an address can change hands.
func WithEmailIdentity() Option {
	return Option{"WithEmailIdentity", func(s *settings) error {
		s.emailIdentity = true
		return nil
	}}
}

// WithAdminClaim grants admin rights to tokens whose claim holds value:
// the claim is a string equal to value or an array of strings holding it
// (as "groups" or "roles" claims are). Both must be non-empty.
func WithAdminClaim(claim, value string) Option {
	return Option{"WithAdminClaim", func(s *settings) error {
		if claim == "" || value == "" {
			return fmt.Errorf("need a claim name and a value")
		}
		s.adminClaim, s.adminValue, s.adminRuleGiven = claim, value, true
		return nil
	}}
}

// WithAdminSubjects grants admin rights to the listed subjects ("sub"
// claims of this issuer). At least one, none empty.
func WithAdminSubjects(subjects ...string) Option {
	return Option{"WithAdminSubjects", func(s *settings) error {
		if len(subjects) == 0 || slices.Contains(subjects, "") {
			return fmt.Errorf("need non-empty subjects")
		}
		s.adminSubjects = append(s.adminSubjects, subjects...)
		s.adminRuleGiven = true
		return nil
	}}
}

// WithAdminEmails grants admin rights to the listed email addresses,
// compared without case, and only when the provider marks the email
// verified; it implies [WithEmailIdentity].
func WithAdminEmails(emails ...string) Option {
	return Option{"WithAdminEmails", func(s *settings) error {
		if len(emails) == 0 {
			return fmt.Errorf("need at least one email")
		}
		for _, e := range emails {
			if !strings.Contains(e, "@") {
				return fmt.Errorf("%q is not an email address", e)
			}
			s.adminEmails = append(s.adminEmails, strings.ToLower(e))
		}
		s.adminRuleGiven = true
		return nil
	}}
}

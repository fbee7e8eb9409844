package macaroon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"
	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery/checkers"

	"github.com/lpsec/lpsec/macaroon/internal/core"
)

// Identity discharges: how Canonical's SSO (Candid, Ubuntu SSO) logs users
// in with the bakery. The first party mints a macaroon whose third-party
// caveat is addressed to an identity service; the identity service
// authenticates the holder and discharges the caveat with "declared
// username <user>" (and "declared groups <g>...") caveats in front of its
// time-before caveat.
const (
	// IdentityCondition is the condition of the identity caveat
	// MintIdentityLogin writes, Candid's name for "whoever discharges this
	// must say who the user is".
	IdentityCondition = "is-authenticated-user"
	// groupsKey is the declared attribute that carries the groups.
	groupsKey = "groups"
	// MaxGroups bounds the groups one identity discharge may declare.
	MaxGroups = 64
)

// identityCaveatIndex is where MintIdentityLogin writes the identity
// caveat in the primary macaroon: after issued-at (0) and time-before (1).
// A holder can only append, so nothing a holder adds can take this place.
const identityCaveatIndex = 2

// ErrUntrustedDeclaration means a macaroon carried a declared attribute
// (a user or groups) somewhere other than where a trusted party writes it:
// the minting position of a login macaroon, or the front of the discharge
// of the identity caveat that MintIdentityLogin addressed to a pinned
// identity provider. Examples: a discharge from an entitlement service (or
// any other third party) declaring a user, a declaration a holder appended,
// a second or conflicting declaration. The macaroon is refused, never used
// with the declaration ignored. It also matches ErrDenied.
var ErrUntrustedDeclaration error = &deniedError{"macaroon: declared attribute from an untrusted position"}

// deniedError is a sentinel that is a refinement of ErrDenied.
type deniedError struct{ msg string }

func (e *deniedError) Error() string { return e.msg }

// Is makes errors.Is(err, ErrDenied) true.
func (e *deniedError) Is(target error) bool { return target == ErrDenied }

// WithIdentityProvider pins an identity service (Candid, Ubuntu SSO, the
// example examples/identity): its https location and public key.
// Service.MintIdentityLogin addresses its identity caveat to it, and Verify
// takes a login macaroon's user and groups from that caveat's discharge,
// never from a discharge of any other third party. NewService only; give it
// once per provider. The same location twice, a location also given to
// WithThirdParty, a nil key or a location that is not https is
// ErrInvalidOption.
func WithIdentityProvider(location string, key *bakery.PublicKey) Option {
	return core.NewOption("WithIdentityProvider", core.ForService, func(s *core.Settings) error {
		if err := checkHTTPSLocation(location); err != nil {
			return err
		}
		if key == nil {
			return fmt.Errorf("%q: nil public key", location)
		}
		if _, dup := s.IdentityProviders[location]; dup {
			return fmt.Errorf("%q given twice", location)
		}
		s.IdentityProviders[location] = key
		return nil
	})
}

// WithCheckIdentity makes NewService ask check, on every verification of
// an identity login (MintIdentityLogin), whether the user and groups the
// identity provider at provider declared may act, before WithCheckUser. Use
// it when users come from several sources: a provider trusted to name the
// admins of one list must not be able to declare a name another source
// vouches for (an OpenID Connect "ISSUER#SUBJECT", say). An error refuses the
// request with ErrUserRefused, or with ErrUnavailable when it wraps
// ErrUnavailable. NewService only; nil is ErrInvalidOption.
func WithCheckIdentity(check func(ctx context.Context, provider string, id Identity) error) Option {
	return core.NewOption("WithCheckIdentity", core.ForService, func(s *core.Settings) error {
		if check == nil {
			return errors.New("nil check")
		}
		s.CheckIdentity = func(ctx context.Context, provider, user string, groups []string) error {
			return check(ctx, provider, Identity{User: user, Groups: groups})
		}
		return nil
	})
}

// checkIdentity runs WithCheckIdentity's callback.
func (s *Service) checkIdentity(ctx context.Context, g *Grant) error {
	if s.cfg.CheckIdentity == nil {
		return nil
	}
	if err := s.cfg.CheckIdentity(ctx, g.IdentityProvider, g.User, slices.Clone(g.Groups)); err != nil {
		if errors.Is(err, ErrUnavailable) {
			return err
		}
		return fmt.Errorf("%w: %q from %q: %v", ErrUserRefused, g.User, g.IdentityProvider, err)
	}
	return nil
}

// MintIdentityLogin mints a login macaroon for a user the identity provider
// pinned at location (WithIdentityProvider) will name. Its caveats are
// issued-at, time-before (ttl as for MintLogin: 0 is DefaultTTL, capped to
// MaxTTL) and a third-party caveat with IdentityCondition addressed to the
// provider. It grants nothing until discharged: the holder gets the caveat
// discharged by the provider (DischargeClient.DischargeAll), and Verify then
// takes the user and groups from that discharge alone. The resulting
// Grant goes through WithCheckUser and WithRevocations like any login.
func (s *Service) MintIdentityLogin(ctx context.Context, location string, ttl time.Duration, ops ...bakery.Op) (*bakery.Macaroon, error) {
	if !s.idp[location] {
		return nil, fmt.Errorf("%w: %q is not pinned with WithIdentityProvider", ErrLocationNotAllowed, location)
	}
	return s.mint(ctx, "identity_login", "", location, ttl, ops, func(exp, issued time.Time) []checkers.Caveat {
		// issued-at first marks an identity login: MintLogin writes the
		// declared user there and MintResource time-before, so no holder
		// and no other kind of macaroon can have it at position 0.
		return []checkers.Caveat{{Condition: checkers.Condition(condIssuedAt, issued.Format(time.RFC3339Nano))},
			checkers.TimeBeforeCaveat(exp), {Location: location, Condition: IdentityCondition}}
	})
}

// identityDischarge returns the index in ms of the discharge of an identity
// login's identity caveat, or 0 when ms[0] is not an identity login. The
// slice's signature has been verified, so the primary's caveats are the
// minted ones followed by what holders appended.
func (s *Service) identityDischarge(ms Slice) (idx int, provider string, err error) {
	cavs := ms[0].Caveats()
	if len(cavs) == 0 || len(cavs[0].VerificationId) > 0 {
		return 0, "", nil
	}
	if name, _, _ := checkers.ParseCaveat(string(cavs[0].Id)); name != condIssuedAt {
		return 0, "", nil
	}
	if len(cavs) <= identityCaveatIndex || len(cavs[identityCaveatIndex].VerificationId) == 0 {
		return 0, "", fmt.Errorf("%w: identity login without its identity caveat", ErrDenied)
	}
	c := cavs[identityCaveatIndex]
	// The location is not signed, but the caveat is encrypted to the key
	// pinned for the location it was minted with, so only that provider
	// could have made a discharge that verified. A location rewritten to
	// an unpinned one is refused.
	if !s.idp[c.Location] {
		return 0, "", fmt.Errorf("%w: identity caveat addressed to %q, which is not a pinned identity provider", ErrUntrustedDeclaration, truncate(c.Location, 128))
	}
	for k := 1; k < len(ms); k++ {
		if bytes.Equal(ms[k].Id(), c.Id) {
			if idx != 0 {
				return 0, "", fmt.Errorf("%w: two discharges of the identity caveat", ErrUntrustedDeclaration)
			}
			idx = k
		}
	}
	if idx == 0 {
		// missingDischarges has run; unreachable, but fail closed.
		return 0, "", &DischargeRequiredError{Caveats: []ThirdPartyCaveat{{Location: c.Location, ID: bytes.Clone(c.Id)}}}
	}
	return idx, c.Location, nil
}

// declare applies one declared caveat of the identity discharge.
func (c *caveatResult) declare(arg string) error {
	key, val, ok := strings.Cut(arg, " ")
	if !ok {
		return fmt.Errorf("%w: bad declared caveat", ErrDenied)
	}
	switch key {
	case userKey:
		if c.user != "" {
			return fmt.Errorf("%w: user declared twice", ErrUntrustedDeclaration)
		}
		if err := checkUser(val); err != nil {
			return fmt.Errorf("%w: declared user: %v", ErrDenied, err)
		}
		c.user = val
	case groupsKey:
		if c.groups != nil {
			return fmt.Errorf("%w: groups declared twice", ErrUntrustedDeclaration)
		}
		groups, err := parseGroups(val)
		if err != nil {
			return fmt.Errorf("%w: declared groups: %v", ErrDenied, err)
		}
		c.groups = groups
	default:
		return fmt.Errorf("%w: unsupported declared attribute %q", ErrDenied, truncate(key, 64))
	}
	return nil
}

// parseGroups splits a declared groups value. Every group follows the rules
// of a user name (no control characters, at most 256 bytes) and has no
// space (the separator); there are at most MaxGroups, none repeated.
func parseGroups(val string) ([]string, error) {
	groups := strings.Split(val, " ")
	if len(groups) > MaxGroups {
		return nil, fmt.Errorf("more than %d groups", MaxGroups)
	}
	seen := make(map[string]bool, len(groups))
	for _, g := range groups {
		if err := checkUser(g); err != nil {
			return nil, errors.New("a group name is empty, too long or has a control character")
		}
		if seen[g] {
			return nil, errors.New("a group is repeated")
		}
		seen[g] = true
	}
	return groups, nil
}

// Identity is what an identity service declares about the holder it
// authenticated.
type Identity struct {
	// User is a stable identifier (never a display name): 1..256 bytes of
	// UTF-8 without control characters.
	User string
	// Groups are optional; each follows User's rules and has no space, at
	// most MaxGroups of them.
	Groups []string
}

// IdentifyFunc authenticates the holder asking for an identity discharge
// (r is nil when Discharge is called directly) and says who it is. An
// error refuses the discharge; it is logged but never sent to the client.
type IdentifyFunc func(ctx context.Context, r *http.Request) (Identity, error)

// NewIdentityDischarger returns a Discharger for an identity service: it
// discharges only caveats whose condition is IdentityCondition, and only
// when identify names the holder; the discharge declares the user (and
// groups) in front of its time-before caveat, where Service.Verify looks for
// them. Options and errors are NewDischarger's; a nil identify is
// ErrInvalidOption.
func NewIdentityDischarger(key *bakery.KeyPair, identify IdentifyFunc, opts ...Option) (*Discharger, error) {
	if identify == nil {
		return nil, fmt.Errorf("%w: NewIdentityDischarger: nil IdentifyFunc", ErrInvalidOption)
	}
	d, err := NewDischarger(key, func(_ context.Context, _ *http.Request, cond string) error {
		if cond != IdentityCondition {
			return fmt.Errorf("condition is not %q", IdentityCondition)
		}
		return nil
	}, opts...)
	if err != nil {
		return nil, err
	}
	d.identify = identify
	return d, nil
}

// declarations returns the declared caveats of an identity discharge,
// checking what identify returned.
func declarations(id Identity) ([]checkers.Caveat, error) {
	if err := checkUser(id.User); err != nil {
		return nil, err
	}
	cavs := []checkers.Caveat{checkers.DeclaredCaveat(userKey, id.User)}
	if len(id.Groups) > 0 {
		joined := strings.Join(id.Groups, " ")
		if _, err := parseGroups(joined); err != nil || strings.Count(joined, " ") != len(id.Groups)-1 {
			return nil, errors.New("macaroon: groups must be distinct names without spaces")
		}
		cavs = append(cavs, checkers.DeclaredCaveat(groupsKey, joined))
	}
	return cavs, nil
}

// identityDeclared is the event of a verified identity login.
func (s *Service) identityDeclared(ctx context.Context, g *Grant, provider string) {
	s.log.InfoContext(ctx, "macaroon identity declared", "event", "macaroon_identity_declared",
		"user", g.User, "groups", len(g.Groups), "identity_provider", provider)
}

package macaroon

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"
	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery/checkers"
	"github.com/go-macaroon-bakery/macaroonpb"
	"gopkg.in/errgo.v1"

	"github.com/lpsec/lpsec/macaroon/internal/core"
)

const (
	maxUserBytes      = 256
	maxConditionBytes = 1024
	maxOps            = 64
	// userKey is the declared attribute that carries the identity.
	userKey = "username"
	// condIssuedAt is the second caveat of a login macaroon: when it was
	// minted, for RevokeUser and RevokeAll cut-offs.
	condIssuedAt = "issued-at"
	// condAllow and condDeny are the attenuation caveats of the bakery's
	// standard namespace (Python macaroonbakery's allow_caveat and
	// deny_caveat; the Go bakery v1's AllowCaveat): space-separated
	// actions. A holder appends them to narrow a macaroon.
	condAllow = "allow"
	condDeny  = "deny"
)

// Service mints and verifies macaroons. It is safe for concurrent use.
type Service struct {
	key      *bakery.KeyPair
	rootKeys RootKeyStore
	cfg      *core.Settings
	oven     *bakery.Oven
	tp       map[string]bool
	idp      map[string]bool
	log      *slog.Logger
	now      func() time.Time
	stdNS    *checkers.Namespace
}

// Grant is what a verified macaroon authorizes.
type Grant struct {
	// User is the identity declared when a login macaroon was minted (or,
	// for MintIdentityLogin, by the pinned identity provider's discharge),
	// or "" for a resource macaroon. A holder can never set or change it.
	User string
	// Ops are all the operations the macaroon grants (a superset of those
	// the request asked for).
	Ops []bakery.Op
	// Expiry is the earliest time-before caveat of the macaroon and its
	// discharges.
	Expiry time.Time
	// ID identifies the primary macaroon for revocation (Service.Logout,
	// RevokeID): hex of SHA-256 of its id, MacaroonIDLen characters,
	// shared by every attenuation of it. It is not secret: it cannot be
	// turned back into a macaroon.
	ID string
	// Issued is when a login macaroon was minted (zero for a resource
	// macaroon, or a login macaroon minted before lpsec wrote it).
	Issued time.Time
	// Groups are the groups the identity provider declared for an
	// identity login (MintIdentityLogin), nil otherwise.
	Groups []string
	// IdentityProvider is the location of the pinned identity provider
	// whose discharge declared User (MintIdentityLogin), "" otherwise.
	IdentityProvider string
}

// NewService returns a Service that writes location into every macaroon,
// encrypts third-party caveats with key (see the package documentation for
// what the keys are) and mints and verifies with the root keys of rootKeys.
// Options: WithThirdParty, WithIdentityProvider, WithCheckIdentity, WithDefaultTTL, WithMaxTTL, WithRevocations,
// WithCheckUser, WithClock, WithLogger; any other, an empty location or a nil rootKeys is
// ErrInvalidOption, and a bad key pair ErrInvalidKey.
func NewService(location string, key *bakery.KeyPair, rootKeys RootKeyStore, opts ...Option) (*Service, error) {
	if location == "" {
		return nil, fmt.Errorf("%w: NewService: empty location", ErrInvalidOption)
	}
	if err := CheckKeyPair(key); err != nil {
		return nil, fmt.Errorf("macaroon: NewService: key: %w", err)
	}
	if rootKeys == nil {
		return nil, fmt.Errorf("%w: NewService: nil RootKeyStore", ErrInvalidOption)
	}
	cfg, err := core.Build("NewService", core.ForService, opts)
	if err != nil {
		return nil, err
	}
	locator := bakery.NewThirdPartyStore()
	tp := make(map[string]bool, len(cfg.ThirdParties))
	for loc, pk := range cfg.ThirdParties {
		locator.AddInfo(loc, bakery.ThirdPartyInfo{PublicKey: *pk, Version: bakery.LatestVersion})
		tp[loc] = true
	}
	idp := make(map[string]bool, len(cfg.IdentityProviders))
	for loc, pk := range cfg.IdentityProviders {
		locator.AddInfo(loc, bakery.ThirdPartyInfo{PublicKey: *pk, Version: bakery.LatestVersion})
		idp[loc] = true
	}
	stdNS := checkers.New(nil).Namespace()
	oven := bakery.NewOven(bakery.OvenParams{
		Namespace:          stdNS,
		RootKeyStoreForOps: func([]bakery.Op) bakery.RootKeyStore { return rootKeys },
		Key:                key,
		Location:           location,
		Locator:            locator,
	})
	return &Service{key: key, rootKeys: rootKeys, cfg: cfg, oven: oven, tp: tp, idp: idp, log: cfg.Log, now: cfg.Now, stdNS: stdNS}, nil
}

// PublicKey returns the service's public key.
func (s *Service) PublicKey() bakery.PublicKey { return s.key.Public }

// MintLogin mints a login macaroon for user granting ops. Its first caveat
// declares the user, its second records when it was issued (for RevokeUser
// and RevokeAll), its third expires it after ttl (0 means DefaultTTL;
// anything above MaxTTL is capped to MaxTTL). A holder may narrow it by
// appending "allow ACTION..." or "deny ACTION..." caveats.
func (s *Service) MintLogin(ctx context.Context, user string, ttl time.Duration, ops ...bakery.Op) (*bakery.Macaroon, error) {
	if err := checkUser(user); err != nil {
		return nil, err
	}
	// The declared caveat must come first: Verify takes the identity only
	// from caveat 0 of the primary macaroon, a position a holder, who can
	// only append, can never write.
	return s.mint(ctx, "login", user, "", ttl, ops, func(exp, issued time.Time) []checkers.Caveat {
		// issued-at second: login macaroons minted before lpsec wrote it
		// have time-before there, so no holder can ever write position 1.
		return []checkers.Caveat{checkers.DeclaredCaveat(userKey, user),
			{Condition: checkers.Condition(condIssuedAt, issued.Format(time.RFC3339Nano))}, checkers.TimeBeforeCaveat(exp)}
	})
}

// MintResource mints a resource macaroon granting ops, with a time-before
// caveat and a third-party caveat that the pinned third party at location
// must discharge after checking condition.
func (s *Service) MintResource(ctx context.Context, location, condition string, ttl time.Duration, ops ...bakery.Op) (*bakery.Macaroon, error) {
	if !s.tp[location] {
		return nil, fmt.Errorf("%w: %q is not pinned with WithThirdParty", ErrLocationNotAllowed, location)
	}
	if condition == "" || len(condition) > maxConditionBytes || !utf8.ValidString(condition) {
		return nil, fmt.Errorf("macaroon: third-party condition must be 1..%d bytes of UTF-8", maxConditionBytes)
	}
	return s.mint(ctx, "resource", "", location, ttl, ops, func(exp, _ time.Time) []checkers.Caveat {
		return []checkers.Caveat{checkers.TimeBeforeCaveat(exp), {Location: location, Condition: condition}}
	})
}

func (s *Service) mint(ctx context.Context, kind, user, location string, ttl time.Duration, ops []bakery.Op, caveats func(exp, issued time.Time) []checkers.Caveat) (*bakery.Macaroon, error) {
	if err := checkOps(ops); err != nil {
		return nil, err
	}
	if ttl < 0 {
		return nil, fmt.Errorf("macaroon: negative ttl %v", ttl)
	}
	if ttl == 0 {
		ttl = s.cfg.DefaultTTL
	}
	capped := ttl > s.cfg.MaxTTL
	if capped {
		ttl = s.cfg.MaxTTL
	}
	issued := s.now().UTC()
	exp := issued.Add(ttl)
	m, err := s.oven.NewMacaroon(ctx, bakery.LatestVersion, caveats(exp, issued), ops...)
	if err != nil {
		// The only fallible dependency is the root-key store.
		if errors.Is(err, ErrUnavailable) {
			return nil, fmt.Errorf("minting: %w", err)
		}
		return nil, fmt.Errorf("%w: minting: %v", ErrUnavailable, err)
	}
	attrs := []any{"event", "macaroon_minted", "kind", kind, "ops", opsString(ops), "expiry", exp, "ttl_capped", capped}
	if user != "" {
		attrs = append(attrs, "user", user)
	}
	if location != "" {
		attrs = append(attrs, "third_party", location)
	}
	s.log.InfoContext(ctx, "macaroon minted", attrs...)
	return m, nil
}

// VerifyRequest verifies the macaroons r carries (see RequestMacaroons)
// for ops; see Verify.
func (s *Service) VerifyRequest(ctx context.Context, r *http.Request, ops ...bakery.Op) (*Grant, error) {
	mss, err := RequestMacaroons(r)
	if err != nil {
		s.logFailure(ctx, err)
		return nil, err
	}
	return s.Verify(ctx, mss, ops...)
}

// Verify checks that one of the presented slices (a primary macaroon
// followed by its discharges) grants every one of ops, which must not be
// empty. It returns the grant or an error matching ErrMissing,
// ErrMalformed, ErrExpired, ErrDenied, ErrDischargeRequired (a
// *DischargeRequiredError), ErrUnknownRootKey or ErrUnavailable.
//
// Every first-party caveat must be understood: time-before anywhere, and
// "declared username" only as the first caveat of the primary macaroon,
// where MintLogin puts it, or (username and groups) at the front of the
// identity provider's discharge of a MintIdentityLogin macaroon. Anything
// else, including a declared caveat a holder or another third party wrote
// (ErrUntrustedDeclaration), denies the request: nothing is ignored.
func (s *Service) Verify(ctx context.Context, mss []Slice, ops ...bakery.Op) (*Grant, error) {
	g, err := s.verify(ctx, mss, ops)
	if err != nil {
		s.logFailure(ctx, err)
		return nil, err
	}
	return g, nil
}

func (s *Service) verify(ctx context.Context, mss []Slice, ops []bakery.Op) (*Grant, error) {
	if len(ops) == 0 {
		// The bakery lets an empty check pass; an empty check is a bug in
		// the caller, so it must fail closed.
		return nil, fmt.Errorf("%w: no operation to authorize", ErrDenied)
	}
	if err := checkOps(ops); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDenied, err)
	}
	if len(mss) == 0 {
		return nil, ErrMissing
	}
	if len(mss) > MaxSlices {
		return nil, fmt.Errorf("%w: %d slices, at most %d", ErrMalformed, len(mss), MaxSlices)
	}
	var worst error
	for _, ms := range mss {
		g, err := s.verifySlice(ctx, ms, ops)
		if err == nil {
			return g, nil
		}
		if worst == nil || rank(err) > rank(worst) {
			worst = err
		}
	}
	return nil, worst
}

// verifySlice verifies one slice. All state is local to the call: nothing
// learnt about one request can leak into the next.
func (s *Service) verifySlice(ctx context.Context, ms Slice, want []bakery.Op) (g *Grant, err error) {
	defer func() {
		// Last containment only: known crashers are rejected before
		// reaching the dependency, this catches the unknown ones.
		if r := recover(); r != nil {
			g, err = nil, fmt.Errorf("%w: input made a dependency panic", ErrMalformed)
		}
	}()
	if err := checkSlice(ms); err != nil {
		return nil, err
	}
	primary := ms[0]
	storageID, ops, err := decodeID(primary.Id())
	if err != nil {
		return nil, err
	}
	rootKey, err := s.rootKeys.Get(ctx, storageID)
	if err != nil {
		if errgo.Cause(err) == bakery.ErrNotFound || errors.Is(err, bakery.ErrNotFound) {
			return nil, ErrUnknownRootKey
		}
		if errors.Is(err, ErrUnavailable) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if missing := missingDischarges(ms); len(missing) > 0 {
		return nil, &DischargeRequiredError{Caveats: missing}
	}
	if _, err := primary.VerifySignature(rootKey, ms[1:]); err != nil {
		// The macaroon library's message can quote caveat ids; keep ours fixed.
		return nil, fmt.Errorf("%w: signature verification failed", ErrDenied)
	}
	idIdx, provider, err := s.identityDischarge(ms)
	if err != nil {
		return nil, err
	}
	cv, err := s.checkCaveats(ms, idIdx)
	if err != nil {
		return nil, err
	}
	// Attenuation caveats can only remove operations.
	ops = slices.DeleteFunc(ops, func(op bakery.Op) bool { return !cv.permits(op.Action) })
	for _, w := range want {
		if !containsOp(ops, w) {
			return nil, fmt.Errorf("%w: operation %s not granted", ErrDenied, opString(w))
		}
	}
	g = &Grant{User: cv.user, Ops: ops, Expiry: cv.expiry, ID: macaroonID(primary.Id()), Issued: cv.issued, Groups: cv.groups}
	if idIdx != 0 {
		g.IdentityProvider = provider
		if err := s.checkIdentity(ctx, g); err != nil {
			return nil, err
		}
	}
	if g.User != "" {
		if err := s.checkSession(ctx, g); err != nil {
			return nil, err
		}
	}
	if idIdx != 0 {
		s.identityDeclared(ctx, g, provider)
	}
	return g, nil
}

// caveatResult is what the first-party caveats of a slice say.
type caveatResult struct {
	user   string
	groups []string
	expiry time.Time
	issued time.Time
	// allow is the intersection of every allow caveat's actions (nil: no
	// allow caveat); deny the union of every deny caveat's.
	allow map[string]bool
	deny  map[string]bool
}

func (c *caveatResult) permits(action string) bool {
	return (c.allow == nil || c.allow[action]) && !c.deny[action]
}

// restrict applies an allow or deny caveat's actions.
func (c *caveatResult) restrict(name, arg string) error {
	actions := strings.Fields(arg)
	if len(actions) > maxOps {
		return fmt.Errorf("%w: %s caveat with more than %d actions", ErrDenied, name, maxOps)
	}
	if name == condDeny {
		if c.deny == nil {
			c.deny = map[string]bool{}
		}
		for _, a := range actions {
			c.deny[a] = true
		}
		return nil
	}
	next := make(map[string]bool, len(actions))
	for _, a := range actions {
		if c.allow == nil || c.allow[a] {
			next[a] = true
		}
	}
	c.allow = next
	return nil
}

// checkCaveats checks every first-party caveat of an authenticated slice.
// idIdx is the index of the identity discharge of an identity login (0:
// not an identity login).
func (s *Service) checkCaveats(ms Slice, idIdx int) (cv caveatResult, err error) {
	now := s.now()
	primaryExpiry := false
	// declaring: still in the identity discharge's leading declared
	// caveats, the only place after minting where a declaration is
	// trusted. The provider closes them with its time-before; a holder can
	// only append after it.
	declaring := idIdx != 0
	closed := false
	fail := func(err error) (caveatResult, error) { return caveatResult{}, err }
	for i, m := range ms {
		for j, c := range m.Caveats() {
			// Only the verification id makes a caveat third-party, as in
			// the signature check. The location is not signed: keying on
			// it would let anyone skip a first-party caveat (the minted
			// expiry, say) by giving it a location.
			if len(c.VerificationId) > 0 {
				if i == idIdx {
					declaring = false // nothing after it is the provider's declaration
				}
				continue // third party: its discharge was verified by signature
			}
			name, arg, perr := checkers.ParseCaveat(string(c.Id))
			if perr != nil {
				return fail(fmt.Errorf("%w: unparsable caveat", ErrDenied))
			}
			if i == idIdx && declaring && name != checkers.CondDeclared {
				declaring, closed = false, true
			}
			switch name {
			case checkers.CondTimeBefore:
				t, terr := time.Parse(time.RFC3339Nano, arg)
				if terr != nil {
					return fail(fmt.Errorf("%w: bad time-before caveat", ErrDenied))
				}
				if !now.Before(t) {
					if i == 0 {
						return fail(fmt.Errorf("%w: at %s", ErrExpired, t.UTC().Format(time.RFC3339)))
					}
					return fail(&DischargeRequiredError{
						Caveats: []ThirdPartyCaveat{{Location: dischargeLocation(ms, m.Id()), ID: m.Id()}},
						cause:   fmt.Errorf("%w: discharge expired at %s", ErrExpired, t.UTC().Format(time.RFC3339)),
					})
				}
				if cv.expiry.IsZero() || t.Before(cv.expiry) {
					cv.expiry = t
				}
				if i == 0 {
					primaryExpiry = true
				}
			case checkers.CondDeclared:
				if i == idIdx && declaring {
					if err := cv.declare(arg); err != nil {
						return fail(err)
					}
					continue
				}
				// Otherwise identity comes only from the minting
				// position; a declared caveat anywhere else was added
				// by a holder (or a third party) and could create or
				// change an identity, so the whole macaroon is refused.
				if i != 0 || j != 0 {
					return fail(fmt.Errorf("%w: declared caveat outside the minting position or the identity discharge", ErrUntrustedDeclaration))
				}
				key, val, ok := strings.Cut(arg, " ")
				if !ok || key != userKey || checkUser(val) != nil {
					return fail(fmt.Errorf("%w: bad declared caveat", ErrDenied))
				}
				cv.user = val
			case condIssuedAt:
				// Only where MintLogin writes it: a holder appending a
				// later issue time could escape a RevokeUser cut-off.
				if i != 0 || !(j == 1 && cv.user != "" || j == 0 && idIdx != 0) {
					return fail(fmt.Errorf("%w: issued-at caveat outside the minting position", ErrDenied))
				}
				t, terr := time.Parse(time.RFC3339Nano, arg)
				if terr != nil {
					return fail(fmt.Errorf("%w: bad issued-at caveat", ErrDenied))
				}
				cv.issued = t
			case condAllow, condDeny:
				if err := cv.restrict(name, arg); err != nil {
					return fail(err)
				}
			default:
				return fail(fmt.Errorf("%w: unsupported caveat %q", ErrDenied, truncate(name, 64)))
			}
		}
	}
	if !primaryExpiry {
		return fail(fmt.Errorf("%w: macaroon has no expiry", ErrDenied))
	}
	if idIdx != 0 {
		if cv.user == "" {
			return fail(fmt.Errorf("%w: identity discharge declares no user", ErrDenied))
		}
		if !closed {
			// Declarations nothing follows could have been extended by
			// the holder: only a caveat the provider wrote after them
			// shows where its declarations end.
			return fail(fmt.Errorf("%w: identity discharge declarations are not closed by a time-before caveat", ErrUntrustedDeclaration))
		}
	}
	return cv, nil
}

// decodeID decodes a version 3 bakery macaroon id (raw or base64url, as the
// bakery writes it for V1 macaroons) into storage id and operations. It
// replaces bakery's Oven.decodeMacaroonId, which indexes id[0] and
// id[1+16:] without checking the length and panics on short ids.
func decodeID(id []byte) ([]byte, []bakery.Op, error) {
	if len(id) == 0 || len(id) > maxIDBytes {
		return nil, nil, fmt.Errorf("%w: macaroon id length out of range", ErrMalformed)
	}
	if id[0] == 'A' {
		dec, err := base64.RawURLEncoding.DecodeString(string(id))
		if err != nil {
			return nil, nil, fmt.Errorf("%w: bad base64 macaroon id", ErrMalformed)
		}
		id = dec
	}
	if len(id) < 2 || id[0] != byte(bakery.Version3) {
		return nil, nil, fmt.Errorf("%w: unsupported macaroon id version", ErrMalformed)
	}
	var pb macaroonpb.MacaroonId
	if err := pb.UnmarshalBinary(id[1:]); err != nil {
		return nil, nil, fmt.Errorf("%w: bad macaroon id", ErrMalformed)
	}
	if len(pb.StorageId) == 0 || len(pb.Ops) == 0 {
		return nil, nil, fmt.Errorf("%w: macaroon id without storage id or operations", ErrMalformed)
	}
	var ops []bakery.Op
	for _, op := range pb.Ops {
		if op == nil || op.Entity == "" || len(op.Actions) == 0 {
			return nil, nil, fmt.Errorf("%w: empty operation in macaroon id", ErrMalformed)
		}
		for _, a := range op.Actions {
			if a == "" || len(ops) >= maxOps {
				return nil, nil, fmt.Errorf("%w: bad operations in macaroon id", ErrMalformed)
			}
			ops = append(ops, bakery.Op{Entity: op.Entity, Action: a})
		}
	}
	return pb.StorageId, ops, nil
}

// missingDischarges lists the third-party caveats, in the primary and in
// the discharges, that no macaroon of the slice discharges.
func missingDischarges(ms Slice) []ThirdPartyCaveat {
	var missing []ThirdPartyCaveat
	for _, m := range ms {
		for _, c := range m.Caveats() {
			if len(c.VerificationId) == 0 {
				continue
			}
			found := false
			for _, d := range ms[1:] {
				if bytes.Equal(d.Id(), c.Id) {
					found = true
					break
				}
			}
			if !found {
				missing = append(missing, ThirdPartyCaveat{Location: c.Location, ID: bytes.Clone(c.Id)})
			}
		}
	}
	return missing
}

// dischargeLocation finds the location of the caveat a discharge answers.
func dischargeLocation(ms Slice, id []byte) string {
	for _, m := range ms {
		for _, c := range m.Caveats() {
			if len(c.VerificationId) > 0 && bytes.Equal(c.Id, id) {
				return c.Location
			}
		}
	}
	return ""
}

func (s *Service) logFailure(ctx context.Context, err error) {
	s.log.WarnContext(ctx, "macaroon verification failed",
		"event", "macaroon_verify_failed", "reason", reason(err), "error", err.Error())
}

func checkUser(user string) error {
	if user == "" || len(user) > maxUserBytes || !utf8.ValidString(user) {
		return fmt.Errorf("macaroon: user name must be 1..%d bytes of UTF-8", maxUserBytes)
	}
	for _, r := range user {
		if r < 0x20 || r == 0x7f {
			return errors.New("macaroon: user name contains a control character")
		}
	}
	return nil
}

func checkOps(ops []bakery.Op) error {
	if len(ops) == 0 {
		return errors.New("macaroon: at least one operation is required")
	}
	if len(ops) > maxOps {
		return fmt.Errorf("macaroon: at most %d operations", maxOps)
	}
	for _, op := range ops {
		if op.Entity == "" || op.Action == "" {
			return fmt.Errorf("macaroon: operation %s has an empty entity or action", opString(op))
		}
	}
	return nil
}

func checkHTTPSLocation(loc string) error {
	u, err := url.Parse(loc)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%w: %q is not a plain https URL", ErrLocationNotAllowed, loc)
	}
	return nil
}

func containsOp(ops []bakery.Op, op bakery.Op) bool {
	for _, o := range ops {
		if o == op {
			return true
		}
	}
	return false
}

func opString(op bakery.Op) string { return op.Entity + ":" + op.Action }

func opsString(ops []bakery.Op) string {
	s := make([]string, len(ops))
	for i, op := range ops {
		s[i] = opString(op)
	}
	return strings.Join(s, ",")
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

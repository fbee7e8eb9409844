package macaroon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"
	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery/checkers"

	"github.com/lpsec/lpsec/macaroon/internal/core"
)

// Errors of sessions that end (WithRevocations, WithCheckUser).
var (
	// ErrRevoked means the login macaroon was revoked: logged out
	// (Service.Logout, RevokeID), or minted before a RevokeUser or
	// RevokeAll cut-off. Logging in again gives a new one.
	ErrRevoked = errors.New("macaroon: revoked")
	// ErrUserRefused means the WithCheckUser callback refused the login
	// macaroon's user (removed from the admin list, account disabled).
	ErrUserRefused = errors.New("macaroon: user no longer authorized")
	// ErrNoRevocationStore means a Revoke method was called on a Service
	// built without WithRevocations.
	ErrNoRevocationStore = errors.New("macaroon: no revocation store (WithRevocations)")
)

// AllowCaveat returns the first-party caveat a holder appends to narrow a
// macaroon to actions: a request for any other action is then refused with
// ErrDenied. Several allow caveats intersect; a caveat can only remove
// operations, never add one. It is the bakery's standard "allow" caveat
// (Python macaroonbakery's allow_caveat), so any bakery client can write it.
func AllowCaveat(actions ...string) checkers.Caveat {
	return checkers.Caveat{Condition: checkers.Condition(condAllow, strings.Join(actions, " "))}
}

// DenyCaveat returns the first-party caveat that removes actions from a
// macaroon (the bakery's standard "deny" caveat).
func DenyCaveat(actions ...string) checkers.Caveat {
	return checkers.Caveat{Condition: checkers.Condition(condDeny, strings.Join(actions, " "))}
}

// MacaroonIDLen is the length of a Grant.ID: hex of SHA-256 of the primary
// macaroon's id.
const MacaroonIDLen = 2 * sha256.Size

// A RevocationStore records revocations of login macaroons and answers
// whether one is revoked. NewMemoryRevocationStore keeps them in process
// memory for a single instance; macaroonpg.NewRevocationStore in
// PostgreSQL for every instance sharing the database. Implementations must
// be safe for concurrent use.
type RevocationStore = core.RevocationStore

// A Revocation is one record of a RevocationStore. Exactly one of ID, User
// and All is set:
//
//   - ID revokes one login macaroon (and every attenuation of it, which
//     shares its id): the Grant.ID of a verification.
//   - User revokes every login macaroon of that user issued before Before.
//   - All revokes every login macaroon issued before Before.
//
// A store keeps at most one record per ID and per User and one for All,
// with the latest Before, and may forget a record at Expires, when no
// macaroon it matches can verify any more. A login macaroon without an
// issue time (minted before lpsec wrote one) counts as issued at the zero
// time, so every User and All revocation matches it.
type Revocation = core.Revocation

// RevocationID returns the id under which RevokeID revokes m: the Grant.ID
// its verification gives. A server may show it at login (it is not
// secret) so that an admin can end that one session later.
func RevocationID(m *bakery.Macaroon) string { return macaroonID(m.M().Id()) }

// macaroonID is the revocation id of a primary macaroon: the id is unique
// per minting (it holds a random nonce) and shared by every attenuation.
func macaroonID(id []byte) string {
	sum := sha256.Sum256(id)
	return hex.EncodeToString(sum[:])
}

// CheckRevocation validates r as a store must before recording it; the
// stores in this package and in macaroonpg call it. Errors wrap
// ErrInvalidRevocation.
func CheckRevocation(r Revocation) error {
	n := 0
	if r.ID != "" {
		n++
		if !validMacaroonID(r.ID) {
			return fmt.Errorf("%w: id must be %d lowercase hex characters", ErrInvalidRevocation, MacaroonIDLen)
		}
		if !r.Before.IsZero() {
			return fmt.Errorf("%w: an id revocation has no Before", ErrInvalidRevocation)
		}
	}
	if r.User != "" {
		n++
		if err := checkUser(r.User); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidRevocation, err)
		}
	}
	if r.All {
		n++
	}
	if n != 1 {
		return fmt.Errorf("%w: exactly one of ID, User and All must be set", ErrInvalidRevocation)
	}
	if r.ID == "" && r.Before.IsZero() {
		return fmt.Errorf("%w: a user or all revocation needs Before", ErrInvalidRevocation)
	}
	if r.Expires.IsZero() {
		return fmt.Errorf("%w: no Expires", ErrInvalidRevocation)
	}
	return nil
}

// ErrInvalidRevocation means a revocation was malformed: a bad id or user,
// none or several of ID, User and All, or a missing time.
var ErrInvalidRevocation = errors.New("macaroon: invalid revocation")

func validMacaroonID(id string) bool {
	if len(id) != MacaroonIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Logout revokes the login macaroon that g was verified from, and every
// attenuation of it, until it expires. It needs WithRevocations.
func (s *Service) Logout(ctx context.Context, g *Grant) error {
	if g == nil || g.User == "" || g.ID == "" {
		return fmt.Errorf("%w: Logout needs the Grant of a login macaroon", ErrInvalidRevocation)
	}
	return s.revoke(ctx, Revocation{ID: g.ID, Expires: g.Expiry}, "logout", slog.String("user", g.User))
}

// RevokeID revokes the login macaroon whose Grant.ID is id (64 lowercase
// hex characters) and its attenuations, for MaxTTL from now (no macaroon
// lives longer). It needs WithRevocations.
func (s *Service) RevokeID(ctx context.Context, id string) error {
	return s.revoke(ctx, Revocation{ID: id, Expires: s.now().Add(s.cfg.MaxTTL)}, "id")
}

// RevokeUser revokes every login macaroon of user issued before before. A
// before later than now is refused (it would also refuse logins still to
// come); the zero time means now. It needs WithRevocations.
func (s *Service) RevokeUser(ctx context.Context, user string, before time.Time) error {
	before, err := s.cutoff(before)
	if err != nil {
		return err
	}
	return s.revoke(ctx, Revocation{User: user, Before: before, Expires: before.Add(s.cfg.MaxTTL)}, "user", slog.String("user", user))
}

// RevokeAll revokes every login macaroon issued before before (the zero
// time means now; later than now is refused). It needs WithRevocations.
func (s *Service) RevokeAll(ctx context.Context, before time.Time) error {
	before, err := s.cutoff(before)
	if err != nil {
		return err
	}
	return s.revoke(ctx, Revocation{All: true, Before: before, Expires: before.Add(s.cfg.MaxTTL)}, "all")
}

func (s *Service) cutoff(before time.Time) (time.Time, error) {
	now := s.now()
	if before.IsZero() {
		return now, nil
	}
	if before.After(now) {
		return time.Time{}, fmt.Errorf("%w: cut-off %s is in the future", ErrInvalidRevocation, before.UTC().Format(time.RFC3339))
	}
	return before, nil
}

func (s *Service) revoke(ctx context.Context, r Revocation, scope string, attrs ...slog.Attr) error {
	if s.cfg.Revocations == nil {
		return ErrNoRevocationStore
	}
	if err := CheckRevocation(r); err != nil {
		return err
	}
	if err := s.cfg.Revocations.Revoke(ctx, r); err != nil {
		if errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidRevocation) {
			return err
		}
		return fmt.Errorf("%w: revoke: %w", ErrUnavailable, err)
	}
	attrs = append(attrs, slog.String("event", "macaroon_revoked"), slog.String("scope", scope))
	if r.ID != "" {
		attrs = append(attrs, slog.String("macaroon_id", r.ID))
	} else {
		attrs = append(attrs, slog.Time("before", r.Before))
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "macaroon revoked", attrs...)
	return nil
}

// checkSession applies WithCheckUser, then WithRevocations, to a verified
// login macaroon: a removed user is told so (ErrUserRefused) rather than
// that their macaroon was revoked, which a new login would not mend.
func (s *Service) checkSession(ctx context.Context, g *Grant) error {
	if s.cfg.CheckUser != nil {
		if err := s.cfg.CheckUser(ctx, g.User); err != nil {
			if errors.Is(err, ErrUnavailable) {
				return err
			}
			return fmt.Errorf("%w: %q: %v", ErrUserRefused, g.User, err)
		}
	}
	if s.cfg.Revocations != nil {
		revoked, err := s.cfg.Revocations.Revoked(ctx, g.ID, g.User, g.Issued)
		if err != nil {
			if errors.Is(err, ErrUnavailable) {
				return err
			}
			return fmt.Errorf("%w: revocations: %w", ErrUnavailable, err)
		}
		if revoked {
			return ErrRevoked
		}
	}
	return nil
}

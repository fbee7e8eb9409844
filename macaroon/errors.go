package macaroon

import (
	"errors"
	"fmt"
	"strings"
)

// Errors returned by Verify and VerifyRequest (with ErrRevoked and
// ErrUserRefused, for sessions that end). Every failure matches exactly
// one of them with errors.Is (a *DischargeRequiredError whose discharge has
// expired also matches ErrExpired).
var (
	// ErrMissing means the request carried no macaroon at all.
	ErrMissing = errors.New("macaroon: no macaroon presented")
	// ErrMalformed means the input could not be decoded, broke a size or
	// count bound, or used a format lpsec does not accept.
	ErrMalformed = errors.New("macaroon: malformed")
	// ErrExpired means a time-before caveat has passed.
	ErrExpired = errors.New("macaroon: expired")
	// ErrDenied means the macaroon is authentic-looking but does not
	// authorize the request: bad signature, an unsupported or misplaced
	// caveat, or an operation it does not grant.
	ErrDenied = errors.New("macaroon: denied")
	// ErrDischargeRequired means third-party caveats lack a valid discharge;
	// the error is a *DischargeRequiredError naming them.
	ErrDischargeRequired = errors.New("macaroon: discharge required")
	// ErrUnknownRootKey means the root key the macaroon names is not (or no
	// longer) in the store: it expired, was revoked or never existed.
	ErrUnknownRootKey = errors.New("macaroon: unknown root key")
	// ErrUnavailable means the root-key store could not answer (database
	// down, query failed, context cancelled); the request fails closed. It
	// never means the key does not exist (that is ErrUnknownRootKey). The
	// stores in this package return it, and Service passes it on.
	ErrUnavailable = errors.New("macaroon: root key store unavailable")
)

// Errors about configuration, keys and the third-party side.
var (
	// ErrInvalidKey means a key could not be parsed, or a public key does
	// not belong to its private key.
	ErrInvalidKey = errors.New("macaroon: invalid key")
	// ErrLocationNotAllowed means a third-party location is not pinned
	// (minting) or not allow-listed over https (discharge acquisition).
	ErrLocationNotAllowed = errors.New("macaroon: third-party location not allowed")
)

// ThirdPartyCaveat names a third-party caveat that needs a discharge.
type ThirdPartyCaveat struct {
	// Location is the third party's location as written in the caveat. It
	// is not covered by the signature: never contact it without checking
	// it against an allow-list (DischargeClient does).
	Location string
	// ID is the caveat id; the discharge macaroon must carry it as its id.
	ID []byte
}

// DischargeRequiredError reports the third-party caveats that still need a
// (fresh) discharge. It matches ErrDischargeRequired with errors.Is, and
// also ErrExpired when a presented discharge had expired.
type DischargeRequiredError struct {
	Caveats []ThirdPartyCaveat
	cause   error
}

func (e *DischargeRequiredError) Error() string {
	locs := make([]string, 0, len(e.Caveats))
	for _, c := range e.Caveats {
		locs = append(locs, fmt.Sprintf("%q", c.Location))
	}
	msg := ErrDischargeRequired.Error() + " from " + strings.Join(locs, ", ")
	if e.cause != nil {
		msg += " (" + e.cause.Error() + ")"
	}
	return msg
}

// Is makes errors.Is(err, ErrDischargeRequired) true.
func (e *DischargeRequiredError) Is(target error) bool { return target == ErrDischargeRequired }

// Unwrap returns why an existing discharge was not accepted (ErrExpired), or nil.
func (e *DischargeRequiredError) Unwrap() error { return e.cause }

// reason maps an error to the stable reason attribute of security events.
func reason(err error) string {
	switch {
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	case errors.Is(err, ErrDischargeRequired):
		return "discharge_required"
	case errors.Is(err, ErrExpired):
		return "expired"
	case errors.Is(err, ErrRevoked):
		return "revoked"
	case errors.Is(err, ErrUserRefused):
		return "user_refused"
	case errors.Is(err, ErrDenied):
		return "denied"
	case errors.Is(err, ErrUnknownRootKey):
		return "unknown_root_key"
	case errors.Is(err, ErrMissing):
		return "missing"
	case errors.Is(err, ErrMalformed):
		return "malformed"
	}
	return "error"
}

// rank orders verification failures so that, when several slices are
// presented, the caller sees the one that got furthest (the most useful).
func rank(err error) int {
	switch {
	case errors.Is(err, ErrUnavailable):
		return 7
	case errors.Is(err, ErrDischargeRequired):
		return 6
	case errors.Is(err, ErrExpired):
		return 5
	case errors.Is(err, ErrRevoked), errors.Is(err, ErrUserRefused):
		return 5
	case errors.Is(err, ErrDenied):
		return 4
	case errors.Is(err, ErrUnknownRootKey):
		return 3
	case errors.Is(err, ErrMalformed):
		return 2
	}
	return 1
}

package token

import (
	"math"
	"time"

	"github.com/google/uuid"

	"github.com/lpsec/lpsec/token/internal/core"
)

// Errors. Authentication failures are told apart (for logs and admin tools)
// but the HTTP middleware answers every one of them with the same 401.
var (
	// ErrMalformed: the token (or record ID, or Authorization header) is not
	// in the one accepted form.
	ErrMalformed = core.ErrMalformed
	// ErrUnknown: no record has this token's digest (or this ID).
	ErrUnknown = core.ErrUnknown
	// ErrRevoked: the token was revoked, or replaced by a newer registration
	// of the same machine.
	ErrRevoked = core.ErrRevoked
	// ErrExpired: the token's valid-until has passed.
	ErrExpired = core.ErrExpired
	// ErrExhausted: the registration token has no uses left.
	ErrExhausted = core.ErrExhausted
	// ErrInvalid: a record given to an Issue method or a machine name breaks
	// a rule (empty or too long field, bad uses count, expiry in the past).
	ErrInvalid = core.ErrInvalid
	// ErrUnavailable: the store could not answer (database down, timeout,
	// cancelled context, unmigrated schema, or a schema newer than this
	// code). Callers must treat it as "not authenticated"; the middleware
	// answers 503.
	ErrUnavailable = core.ErrUnavailable
	// ErrMachineTaken: the machine name already has a live machine token
	// and the registration neither proved possession of it
	// (WithCurrentToken) nor repeated its own unanswered registration
	// (WithRetryKey). Usually a second machine with the same machine ID
	// (a cloned VM or image) or someone trying to take the name over; an
	// admin releases the name (Store.ReleaseMachine) if its owner lost its
	// state. Servers answer it with 409 Conflict.
	ErrMachineTaken = core.ErrMachineTaken
	// ErrInvalidOption: a constructor was given an option it does not
	// accept, or an option with a nil or non-positive value. The error names
	// the option.
	ErrInvalidOption = core.ErrInvalidOption
)

const (
	// Unlimited as Registration.Uses allows any number of registrations.
	Unlimited = -1
	// MaxUses bounds Registration.Uses (it is stored as a 32-bit integer).
	MaxUses = math.MaxInt32
	// MaxFieldLen bounds, in bytes, tiers, names and machine names.
	MaxFieldLen = 256
	// KeepReplaced is how many revoked or replaced machine records a store
	// keeps per machine name, newest first: older ones are deleted when the
	// name registers again, so any number of re-registrations leaves at
	// most KeepReplaced+1 records per name.
	KeepReplaced = 4
	// MaxListLimit bounds the limit of one ListMachines page.
	MaxListLimit = 1000
	// DefaultRetryWindow is how long after a registration the same
	// registration may be repeated with its retry key (WithRetryWindow).
	DefaultRetryWindow = 15 * time.Minute
	// DefaultMachineRetention is how long revoked machine records are kept
	// before PruneMachines deletes them (WithMachineRetention).
	DefaultMachineRetention = 30 * 24 * time.Hour
)

// External names a credential the caller verified itself, for
// Store.RegisterExternal: the store records who vouched for the machine
// instead of a registration token's ID. Nothing secret goes in it.
type External struct {
	// Issuer names the kind of credential, for example
	// "entitlement-service". A retry (WithRetryKey) must come from the
	// same issuer.
	Issuer string
	// Ref identifies the credential, for example a contract or macaroon
	// ID; stored for audit, never used to authenticate.
	Ref string
	// Tier is given to the machine.
	Tier string
}

// Generate returns a new token: a random (version 4) UUID in canonical
// lowercase form, with 122 bits from crypto/rand.
func Generate() (string, error) {
	// NewRandomFromReader(rand.Reader) is NewRandom without its two pieces of
	// package-global state: uuid.SetRand could swap the reader, and
	// uuid.EnableRandPool would serve tokens from a buffer that keeps future
	// tokens on the heap. This package never calls EnableRandPool, and does
	// not depend on anyone else not calling it.
	return core.Generate()
}

// Parse accepts only the canonical 36-character 8-4-4-4-12 form (hex digits
// of either case) of a version 4, RFC 4122 variant, non-nil UUID. Every
// other spelling uuid.Parse tolerates (urn:uuid:, braces, 32 hex digits) is
// refused: one token has one spelling, so a length check bounds all input and
// logs and proxies cannot disagree about what was sent. Errors match
// ErrMalformed and never contain the input.
func Parse(s string) (uuid.UUID, error) { return core.Parse(s) }

// ID returns the record ID of a token: the lowercase hex SHA-256 of its 16
// bytes, which is what stores keep and what List and Revoke use. An ID is not
// a credential: it cannot be turned back into the token.
func ID(tok string) (string, error) {
	d, err := core.DigestOf(tok)
	if err != nil {
		return "", err
	}
	return d.String(), nil
}

// Registration is a registration ("auth") token's record. An admin issues
// it; a machine exchanges it with Store.Register for a machine token.
type Registration struct {
	ID   string // set by the store
	Tier string // given to every machine that registers with this token
	Name string // free text for admins
	// Uses is how many registrations the token allows: 1..MaxUses, or
	// Unlimited. Zero is refused, so forgetting to set it never means
	// "unlimited".
	Uses       int
	UsesLeft   int       // set by the store; Unlimited when Uses is
	ValidUntil time.Time // zero: no expiry
	Created    time.Time // set by the store
	Revoked    bool      // set by the store
}

// Machine is a machine token's record.
type Machine struct {
	ID           string    // set by the store
	Machine      string    // the machine's identifier as the client sent it
	Tier         string    // from the registration token
	Registration string    // ID of the registration token it was exchanged for; "" for RegisterExternal
	Issuer       string    // External.Issuer for RegisterExternal; "" otherwise
	ExternalRef  string    // External.Ref for RegisterExternal; "" otherwise
	Created      time.Time // set by the store
	LastSeen     time.Time // last successful authentication, to the minute; zero: never
	ValidUntil   time.Time // from WithMachineLifetime; zero: no expiry
	Revoked      bool      // revoked, or replaced by a newer registration
}

// Sync is a sync token's record: it lets another server fetch this one's
// patches for one tier.
type Sync struct {
	ID         string // set by the store
	Tier       string
	Name       string
	ValidUntil time.Time // zero: no expiry
	Created    time.Time // set by the store
	LastUsed   time.Time // last successful authentication, to the minute; zero: never
	Revoked    bool      // set by the store
}

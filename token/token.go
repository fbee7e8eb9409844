package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Errors. Authentication failures are told apart (for logs and admin tools)
// but the HTTP middleware answers every one of them with the same 401.
var (
	// ErrMalformed: the token (or record ID) is not in the one accepted form.
	ErrMalformed = errors.New("token: malformed token")
	// ErrUnknown: no record has this token's digest (or this ID).
	ErrUnknown = errors.New("token: unknown token")
	// ErrRevoked: the token was revoked, or replaced by a newer registration
	// of the same machine.
	ErrRevoked = errors.New("token: revoked token")
	// ErrExpired: the token's valid-until has passed.
	ErrExpired = errors.New("token: expired token")
	// ErrExhausted: the registration token has no uses left.
	ErrExhausted = errors.New("token: registration token has no uses left")
	// ErrInvalid: a record given to an Issue method or a machine name breaks
	// a rule (empty or too long field, bad uses count, expiry in the past).
	ErrInvalid = errors.New("token: invalid record")
	// ErrUnavailable: the store could not answer (database down, timeout,
	// cancelled context, unmigrated schema). Callers must treat it as "not
	// authenticated"; the middleware answers 503.
	ErrUnavailable = errors.New("token: store unavailable")
)

const (
	// Unlimited as Registration.Uses allows any number of registrations.
	Unlimited = -1
	// MaxUses bounds Registration.Uses (it is stored as a 32-bit integer).
	MaxUses = math.MaxInt32
	// MaxFieldLen bounds, in bytes, tiers, names and machine names.
	MaxFieldLen = 256
	// canonicalLen is the length of the 8-4-4-4-12 form.
	canonicalLen = 36
	// idLen is the length of a record ID: hex SHA-256.
	idLen = 2 * sha256.Size
	// lastSeenEvery is how often LastSeen and LastUsed are brought up to
	// date: at most once a minute per token, so that authenticating is a read,
	// not a write, nearly always.
	lastSeenEvery = time.Minute
	// logPrefixLen is how much of an ID goes into log records: enough to
	// correlate, far too little to be worth anything to a reader of the logs.
	logPrefixLen = 8
)

// Generate returns a new token: a random (version 4) UUID in canonical
// lowercase form, with 122 bits from crypto/rand.
func Generate() (string, error) {
	// NewRandomFromReader(rand.Reader) is NewRandom without its two pieces of
	// package-global state: uuid.SetRand could swap the reader, and
	// uuid.EnableRandPool would serve tokens from a buffer that keeps future
	// tokens on the heap. This package never calls EnableRandPool, and does
	// not depend on anyone else not calling it.
	u, err := uuid.NewRandomFromReader(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("token: reading crypto/rand: %w", err)
	}
	return u.String(), nil
}

// Parse accepts only the canonical 36-character 8-4-4-4-12 form (hex digits
// of either case) of a version 4, RFC 4122 variant, non-nil UUID. Every
// other spelling uuid.Parse tolerates (urn:uuid:, braces, 32 hex digits) is
// refused: one token has one spelling, so a length check bounds all input and
// logs and proxies cannot disagree about what was sent. Errors match
// ErrMalformed and never contain the input.
func Parse(s string) (uuid.UUID, error) {
	var u uuid.UUID
	if len(s) != canonicalLen {
		return uuid.Nil, fmt.Errorf("%w: length %d, want %d", ErrMalformed, len(s), canonicalLen)
	}
	j := 0
	for i := 0; i < canonicalLen; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if s[i] != '-' {
				return uuid.Nil, fmt.Errorf("%w: want '-' at offset %d", ErrMalformed, i)
			}
			i++
			continue
		}
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			return uuid.Nil, fmt.Errorf("%w: non-hex character near offset %d", ErrMalformed, i)
		}
		u[j] = hi<<4 | lo
		j++
		i += 2
	}
	if u == uuid.Nil {
		return uuid.Nil, fmt.Errorf("%w: nil UUID", ErrMalformed)
	}
	if v := u[6] >> 4; v != 4 {
		return uuid.Nil, fmt.Errorf("%w: UUID version %d, want 4", ErrMalformed, v)
	}
	if u[8]&0xc0 != 0x80 {
		return uuid.Nil, fmt.Errorf("%w: not the RFC 4122 variant", ErrMalformed)
	}
	return u, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// digest is what the stores keep instead of a token: SHA-256 of the 16 bytes
// of the UUID, so the two spellings (upper and lower case) of one token have
// one digest.
type digest [sha256.Size]byte

func digestOf(tok string) (digest, error) {
	u, err := Parse(tok)
	if err != nil {
		return digest{}, err
	}
	return sha256.Sum256(u[:]), nil
}

func (d digest) String() string { return hex.EncodeToString(d[:]) }

// short is the only part of a digest that goes into log records.
func (d digest) short() string { return d.String()[:logPrefixLen] }

// ID returns the record ID of a token: the lowercase hex SHA-256 of its 16
// bytes, which is what stores keep and what List and Revoke use. An ID is not
// a credential: it cannot be turned back into the token.
func ID(tok string) (string, error) {
	d, err := digestOf(tok)
	if err != nil {
		return "", err
	}
	return d.String(), nil
}

func parseID(id string) (digest, error) {
	var d digest
	if len(id) != idLen {
		return d, fmt.Errorf("%w: record ID has length %d, want %d", ErrMalformed, len(id), idLen)
	}
	for i := 0; i < idLen; i += 2 {
		hi, ok1 := unhex(id[i])
		lo, ok2 := unhex(id[i+1])
		if !ok1 || !ok2 {
			return d, fmt.Errorf("%w: record ID is not hex", ErrMalformed)
		}
		d[i/2] = hi<<4 | lo
	}
	return d, nil
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
	Registration string    // ID of the registration token it was exchanged for
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

// stamp is the precision both stores keep (PostgreSQL timestamptz holds
// microseconds), so the same record reads back the same from either.
func stamp(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

func live(validUntil, now time.Time) bool {
	return validUntil.IsZero() || now.Before(validUntil)
}

func checkField(what, v string) error {
	if v == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	}
	if len(v) > MaxFieldLen {
		return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalid, what, MaxFieldLen)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%w: %s is not UTF-8", ErrInvalid, what)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("%w: %s contains a control character", ErrInvalid, what)
		}
	}
	return nil
}

func checkExpiry(validUntil, now time.Time) error {
	if !validUntil.IsZero() && !now.Before(stamp(validUntil)) {
		return fmt.Errorf("%w: valid-until is not in the future", ErrInvalid)
	}
	return nil
}

func (r Registration) check(now time.Time) error {
	if err := checkField("tier", r.Tier); err != nil {
		return err
	}
	if err := checkField("name", r.Name); err != nil {
		return err
	}
	if r.Uses != Unlimited && (r.Uses < 1 || r.Uses > MaxUses) {
		return fmt.Errorf("%w: uses must be 1..%d or Unlimited", ErrInvalid, MaxUses)
	}
	return checkExpiry(r.ValidUntil, now)
}

func (s Sync) check(now time.Time) error {
	if err := checkField("tier", s.Tier); err != nil {
		return err
	}
	if err := checkField("name", s.Name); err != nil {
		return err
	}
	return checkExpiry(s.ValidUntil, now)
}

// state says why a record does not authenticate, or nil.
func state(revoked bool, validUntil, now time.Time) error {
	if revoked {
		return ErrRevoked
	}
	if !live(validUntil, now) {
		return ErrExpired
	}
	return nil
}

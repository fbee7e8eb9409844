// Package core holds what package token and its PostgreSQL store,
// token/tokenpg, share: the error values, the token and record-ID formats,
// the rules a record must keep, the options and the security events. With
// them here, tokenpg behaves exactly as token's MemoryStore (one conformance
// suite checks both) while token neither exports its internals nor links a
// database driver.
package core

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

// The error values package token exports; their documentation is there.
var (
	ErrMalformed     = errors.New("token: malformed token")
	ErrUnknown       = errors.New("token: unknown token")
	ErrRevoked       = errors.New("token: revoked token")
	ErrExpired       = errors.New("token: expired token")
	ErrExhausted     = errors.New("token: registration token has no uses left")
	ErrInvalid       = errors.New("token: invalid record")
	ErrUnavailable   = errors.New("token: store unavailable")
	ErrInvalidOption = errors.New("token: invalid option")
)

const (
	Unlimited   = -1
	MaxUses     = math.MaxInt32
	MaxFieldLen = 256
	// canonicalLen is the length of the 8-4-4-4-12 form.
	canonicalLen = 36
	// idLen is the length of a record ID: hex SHA-256.
	idLen = 2 * sha256.Size
	// LastSeenEvery is how often LastSeen and LastUsed are brought up to
	// date: at most once a minute per token, so that authenticating is a
	// read, not a write, nearly always.
	LastSeenEvery = time.Minute
	// LogPrefixLen is how much of an ID goes into log records: enough to
	// correlate, far too little to be worth anything to a reader of the logs.
	LogPrefixLen = 8
)

// Generate returns a new random (version 4) UUID in canonical lowercase
// form. NewRandomFromReader(rand.Reader) is NewRandom without its two pieces
// of package-global state: uuid.SetRand could swap the reader, and
// uuid.EnableRandPool would serve tokens from a buffer that keeps future
// tokens on the heap.
func Generate() (string, error) {
	u, err := uuid.NewRandomFromReader(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("token: reading crypto/rand: %w", err)
	}
	return u.String(), nil
}

// Parse accepts only the canonical 8-4-4-4-12 form of a version 4, RFC 4122
// variant, non-nil UUID. Errors match ErrMalformed and never contain s.
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

// Digest is what the stores keep instead of a token: SHA-256 of the 16
// bytes of the UUID, so the two spellings (upper and lower case) of one
// token have one digest. It is also the record ID.
type Digest [sha256.Size]byte

// DigestOf parses tok and returns its digest.
func DigestOf(tok string) (Digest, error) {
	u, err := Parse(tok)
	if err != nil {
		return Digest{}, err
	}
	return sha256.Sum256(u[:]), nil
}

func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// Short is the only part of a digest that goes into log records.
func (d Digest) Short() string { return d.String()[:LogPrefixLen] }

// ParseID parses a record ID (hex digest, either case).
func ParseID(id string) (Digest, error) {
	var d Digest
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

// NewToken returns a new token and its digest.
func NewToken() (string, Digest, error) {
	tok, err := Generate()
	if err != nil {
		return "", Digest{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	d, err := DigestOf(tok)
	return tok, d, err
}

// PrepareRegister is what every store's Register does before touching
// storage, so that all stores refuse the same inputs: it digests the
// registration token, checks the machine name, and mints the machine token.
func PrepareRegister(registrationToken, machine string) (rd Digest, tok string, md Digest, err error) {
	if rd, err = DigestOf(registrationToken); err != nil {
		return Digest{}, "", Digest{}, err
	}
	if err = CheckField("machine", machine); err != nil {
		return Digest{}, "", Digest{}, err
	}
	if tok, md, err = NewToken(); err != nil {
		return Digest{}, "", Digest{}, err
	}
	return rd, tok, md, nil
}

// Stamp is the precision every store keeps (PostgreSQL timestamptz holds
// microseconds), so the same record reads back the same from either.
func Stamp(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// CheckField checks a tier, name or machine name.
func CheckField(what, v string) error {
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
	if !validUntil.IsZero() && !now.Before(Stamp(validUntil)) {
		return fmt.Errorf("%w: valid-until is not in the future", ErrInvalid)
	}
	return nil
}

// CheckRegistration checks what IssueRegistration is given.
func CheckRegistration(tier, name string, uses int, validUntil, now time.Time) error {
	if err := CheckField("tier", tier); err != nil {
		return err
	}
	if err := CheckField("name", name); err != nil {
		return err
	}
	if uses != Unlimited && (uses < 1 || uses > MaxUses) {
		return fmt.Errorf("%w: uses must be 1..%d or Unlimited", ErrInvalid, MaxUses)
	}
	return checkExpiry(validUntil, now)
}

// CheckSync checks what IssueSync is given.
func CheckSync(tier, name string, validUntil, now time.Time) error {
	if err := CheckField("tier", tier); err != nil {
		return err
	}
	if err := CheckField("name", name); err != nil {
		return err
	}
	return checkExpiry(validUntil, now)
}

// State says why a record does not authenticate, or nil.
func State(revoked bool, validUntil, now time.Time) error {
	if revoked {
		return ErrRevoked
	}
	if !validUntil.IsZero() && !now.Before(validUntil) {
		return ErrExpired
	}
	return nil
}

// RegistrationState is State for a registration token, which can also be
// used up.
func RegistrationState(revoked bool, validUntil time.Time, usesLeft int, now time.Time) error {
	if err := State(revoked, validUntil, now); err != nil {
		return err
	}
	if usesLeft == 0 {
		return ErrExhausted
	}
	return nil
}

// ErrMachineTaken is token.ErrMachineTaken.
var ErrMachineTaken = errors.New("token: machine name has a live machine token")

const (
	// KeepReplaced is how many revoked or replaced records a store keeps
	// per machine name (newest first); older ones are deleted when the name
	// registers again, so re-registrations cannot grow a store.
	KeepReplaced = 4
	// MaxListLimit bounds one page of ListMachines.
	MaxListLimit = 1000
	// DefaultRetryWindow, DefaultMachineRetention: see token.
	DefaultRetryWindow      = 15 * time.Minute
	DefaultMachineRetention = 30 * 24 * time.Hour
)

// RegisterOption is token.RegisterOption.
type RegisterOption struct {
	name  string
	apply func(*RegisterParams) error
}

// NewRegisterOption is how package token makes its register options.
func NewRegisterOption(name string, apply func(*RegisterParams) error) RegisterOption {
	return RegisterOption{name: name, apply: apply}
}

// RegisterParams is what the register options set.
type RegisterParams struct {
	Current    Digest // digest of the machine token the caller holds
	HasCurrent bool
	RetryKey   Digest // digest of the caller's idempotency key
	HasKey     bool
}

// BuildRegister applies register options; misuse is ErrInvalidOption, a
// malformed token or key ErrMalformed.
func BuildRegister(opts []RegisterOption) (RegisterParams, error) {
	var p RegisterParams
	for _, o := range opts {
		if o.apply == nil {
			return RegisterParams{}, fmt.Errorf("%w: zero RegisterOption", ErrInvalidOption)
		}
		if err := o.apply(&p); err != nil {
			return RegisterParams{}, err
		}
	}
	return p, nil
}

// ParseCursor reads a ListMachines cursor: "" (the start) or the decimal
// sequence number of the last record of the previous page.
func ParseCursor(c string) (int64, error) {
	if c == "" {
		return 0, nil
	}
	if len(c) > 19 {
		return 0, fmt.Errorf("%w: cursor longer than 19 digits", ErrMalformed)
	}
	var n int64
	for i := 0; i < len(c); i++ {
		if c[i] < '0' || c[i] > '9' {
			return 0, fmt.Errorf("%w: cursor is not a decimal number", ErrMalformed)
		}
		n = n*10 + int64(c[i]-'0')
	}
	if n <= 0 || (len(c) > 1 && c[0] == '0') {
		return 0, fmt.Errorf("%w: cursor is not a positive number in canonical form", ErrMalformed)
	}
	return n, nil
}

// CheckLimit checks a ListMachines page size.
func CheckLimit(limit int) error {
	if limit < 1 || limit > MaxListLimit {
		return fmt.Errorf("%w: limit must be 1..%d", ErrInvalid, MaxListLimit)
	}
	return nil
}

// CheckExternal checks what RegisterExternal is given.
func CheckExternal(issuer, ref, tier string) error {
	if err := CheckField("issuer", issuer); err != nil {
		return err
	}
	if err := CheckField("credential reference", ref); err != nil {
		return err
	}
	return CheckField("tier", tier)
}

// Live is the machine-name record a registration meets: the name's one
// non-revoked record.
type Live struct {
	ID           Digest
	Registration string // registration ID, or "" for an external one
	Issuer       string // external issuer, or ""
	LastSeen     time.Time
	ValidUntil   time.Time
	RetryKey     Digest
	HasKey       bool
	RetryUntil   time.Time
}

// Decision is what a registration does with the name's live record.
type Decision int

const (
	// Fresh: no live record (or an expired one, replaced): a normal
	// registration.
	Fresh Decision = iota
	// Rotate: the caller proved possession of the live token.
	Rotate
	// Retry: the caller repeats a registration whose answer it never saw:
	// same key, same credential source, within the window, token never used.
	Retry
	// Taken: refused with ErrMachineTaken.
	Taken
)

// Decide applies the possession rule. live is nil when the name has no
// non-revoked record. regID / issuer name the credential of this attempt.
func Decide(live *Live, p RegisterParams, regID, issuer string, now time.Time) Decision {
	if live == nil {
		return Fresh
	}
	if !live.ValidUntil.IsZero() && !now.Before(live.ValidUntil) {
		return Fresh // expired: nobody holds a working token
	}
	if p.HasCurrent && p.Current == live.ID {
		return Rotate
	}
	if p.HasKey && live.HasKey && p.RetryKey == live.RetryKey && live.LastSeen.IsZero() &&
		now.Before(live.RetryUntil) && live.Registration == regID && live.Issuer == issuer {
		return Retry
	}
	return Taken
}

// RetryUntil is the end of the retry window of a registration at now.
func (s *Settings) RetryUntil(now time.Time) time.Time { return Stamp(now.Add(s.RetryWindow)) }

package auth

import (
	"errors"
	"strings"
	"time"
)

// ErrInvalidCredentials is returned by [Basic.Verify] for every refusal,
// whatever the cause: an unknown user, a wrong password, malformed input, a
// throttled or overloaded verifier. It never says which, so that code which
// echoes the error cannot reveal whether a user exists.
var ErrInvalidCredentials = errors.New("auth: invalid credentials")

// ErrThrottled and ErrOverloaded are also matched (besides
// ErrInvalidCredentials) by errors.Is on a refusal that happened before any
// password was checked: too many recent failures for the user or the client
// address, or too many password checks already queued. The password may
// well be right; the caller should ask again later.
var (
	ErrThrottled  = errors.New("auth: too many failed attempts")
	ErrOverloaded = errors.New("auth: too many password checks in progress")
)

// Errors returned when users are loaded ([ParseUsers], [ReadHtpasswd],
// [NewBasic], [Basic.SetUsers]). They are wrapped with the user name and
// the line or entry number; the stored hash itself is never echoed because
// a misconfigured entry may hold a plaintext password.
var (
	// ErrUnsupportedHash: the stored hash is not bcrypt or argon2id (for
	// example apr1-MD5, {SHA}, DES crypt, SHA-crypt or plaintext).
	ErrUnsupportedHash = errors.New("auth: unsupported password hash")
	// ErrMalformedHash: the hash claims to be bcrypt or argon2id but does
	// not parse.
	ErrMalformedHash = errors.New("auth: malformed password hash")
	// ErrHashCost: the hash's cost parameters are below the minimum or
	// above the maximum this package accepts.
	ErrHashCost = errors.New("auth: password hash cost out of bounds")
	// ErrDuplicateUser: a user name appears twice.
	ErrDuplicateUser = errors.New("auth: duplicate user")
	// ErrMalformedUsers: an entry is not user:hash, a user name is empty,
	// too long or holds control characters, or the input is too large.
	ErrMalformedUsers = errors.New("auth: malformed users")
)

// ErrInvalidPassword is returned by [HashPassword] for a password that
// [Basic.Verify] could never accept: empty, too long (more than 72 bytes
// for bcrypt), not UTF-8 or holding control characters.
var ErrInvalidPassword = errors.New("auth: password cannot be hashed")

// refusal is a failure that happened before any password was compared. It
// matches ErrInvalidCredentials and its cause.
type refusal struct {
	cause      error
	retryAfter time.Duration
}

func (r *refusal) Error() string {
	return ErrInvalidCredentials.Error() + ": " + strings.TrimPrefix(r.cause.Error(), "auth: ")
}

func (r *refusal) Unwrap() []error { return []error{ErrInvalidCredentials, r.cause} }

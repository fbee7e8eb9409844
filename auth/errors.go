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
// password was checked: too many recent failures from the client address
// (for this user name, or for all names), or too many password checks
// already queued. The password may well be right; the caller should ask
// again later. A user's failures from other clients never cause
// ErrThrottled (see the package doc).
var (
	ErrThrottled  = errors.New("auth: too many failed attempts")
	ErrOverloaded = errors.New("auth: too many password checks in progress")
)

// ErrInvalidUsers is returned when users are loaded ([ParseUsers],
// [ReadHtpasswd], [NewBasic], [Basic.SetUsers]) and an entry is refused:
// not user:hash, a user name that is empty, too long or holds control
// characters, a duplicate user, too many users or too large an input, a
// hash that is not bcrypt or argon2id (apr1-MD5, {SHA}, DES crypt,
// SHA-crypt, plaintext), one that does not parse, or one whose cost is
// outside the bounds (at load) or below the verifier's minimum. The error
// says which: the entry or line number, the user name, the format found
// and how to re-hash. It never echoes the stored hash, because a
// misconfigured entry may hold a plaintext password.
var ErrInvalidUsers = errors.New("auth: invalid users")

// ErrInvalidOption reports an option that makes no sense: nil where a
// value is needed, a limit that is not positive, a cost outside the bounds,
// or options that contradict each other. The error names the option, as in
// "auth: invalid option: WithLogger: nil logger".
var ErrInvalidOption = errors.New("auth: invalid option")

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

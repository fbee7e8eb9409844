package oidc

import "errors"

// Refusals of [Verifier.Verify]. Each names one reason; the security event
// "sso_refused" carries the same reason as a short string (in brackets).
// None of them echoes the token or a claim value an attacker chose.
var (
	// ErrTooLarge: the token is longer than WithMaxTokenSize allows ("too_large").
	ErrTooLarge = errors.New("oidc: token too large")
	// ErrMalformed: not a compact JWS of three base64url segments with a
	// JSON header and JSON claims of the expected types ("malformed").
	ErrMalformed = errors.New("oidc: malformed token")
	// ErrAlgorithm: the header names a signing algorithm outside the
	// allow-list ("none", any HMAC, or one not configured) ("algorithm").
	ErrAlgorithm = errors.New("oidc: signing algorithm not allowed")
	// ErrUnknownKey: no key of the provider's key set has the token's key
	// ID, even after a refresh of the key set ("unknown_key").
	ErrUnknownKey = errors.New("oidc: unknown signing key")
	// ErrSignature: the signature does not verify with the provider's key
	// (a tampered header or payload, or another signer) ("signature").
	ErrSignature = errors.New("oidc: bad signature")
	// ErrProviderUnavailable: the provider's key set could not be fetched
	// and the cached keys cannot verify the token (too old, or no key with
	// its key ID): the verifier fails closed ("provider_unavailable").
	ErrProviderUnavailable = errors.New("oidc: identity provider unavailable")
	// ErrIssuer: the "iss" claim is not the configured issuer ("issuer").
	ErrIssuer = errors.New("oidc: wrong issuer")
	// ErrAudience: the "aud" claim does not hold the client ID, or "azp"
	// is not the client ID when present or when there are several
	// audiences ("audience").
	ErrAudience = errors.New("oidc: wrong audience")
	// ErrExpired: "exp" is missing or in the past beyond the clock skew ("expired").
	ErrExpired = errors.New("oidc: token expired")
	// ErrNotYetValid: "iat" is missing, or "iat" or "nbf" is in the future
	// beyond the clock skew ("not_yet_valid").
	ErrNotYetValid = errors.New("oidc: token not yet valid")
	// ErrNonce: [Verifier.VerifyNonce] was given a nonce and the token's
	// "nonce" claim is not that value ("nonce").
	ErrNonce = errors.New("oidc: wrong nonce")
	// ErrNoIdentity: the token names no stable user: no subject, a subject
	// that is not 1 to 255 printable ASCII bytes, or, with WithEmailIdentity,
	// no email or an email the provider has not verified ("no_identity").
	ErrNoIdentity = errors.New("oidc: no stable user identity")
	// ErrNotAdmin: the user is authenticated but the admin rule (claim
	// value, subject or email allow-list) does not grant admin rights ("not_admin").
	ErrNotAdmin = errors.New("oidc: not an admin")
)

// ErrInvalidOption reports an option that makes no sense: nil where a
// value is needed, a limit that is not positive, a forbidden algorithm, or
// no admin rule. The error names the option, as in
// "oidc: invalid option: WithLogger: nil logger".
var ErrInvalidOption = errors.New("oidc: invalid option")

// ErrDiscovery is returned by [NewVerifier] when the provider's discovery
// document cannot be fetched or is not acceptable: an issuer or a jwks_uri
// that is not https, or a document whose issuer is not the configured one.
var ErrDiscovery = errors.New("oidc: discovery failed")

// reasons maps each refusal to the reason of its "sso_refused" event.
var reasons = map[error]string{
	ErrTooLarge:            "too_large",
	ErrMalformed:           "malformed",
	ErrAlgorithm:           "algorithm",
	ErrUnknownKey:          "unknown_key",
	ErrSignature:           "signature",
	ErrProviderUnavailable: "provider_unavailable",
	ErrIssuer:              "issuer",
	ErrAudience:            "audience",
	ErrExpired:             "expired",
	ErrNotYetValid:         "not_yet_valid",
	ErrNonce:               "nonce",
	ErrNoIdentity:          "no_identity",
	ErrNotAdmin:            "not_admin",
}

func reason(err error) string {
	for e, r := range reasons {
		if errors.Is(err, e) {
			return r
		}
	}
	return "other"
}

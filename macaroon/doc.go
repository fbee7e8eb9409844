// Package macaroon mints and verifies the macaroons of a live-patch
// service: login macaroons that authenticate an admin for up to 240 hours
// (8 by default) unless logged out or revoked, and resource macaroons that a
// client machine may only use together with a discharge from an external
// entitlement ("contracts") service.
//
// Most servers want NewService, then Service.MintLogin after a successful
// Basic Auth login and Service.VerifyRequest on every later request, with
// one operation per endpoint. A third-party service wants NewDischarger,
// and a client that must fetch discharges wants NewDischargeClient.
// Over HTTP, Service.Require (or a Middleware from NewMiddleware) guards a
// handler with the operations it needs and passes on the Grant
// (GrantFromContext); HTTPStatus is its table of error → status.
// Root keys come from a RootKeyStore: NewMemoryRootKeyStore for a single
// instance, macaroonpg.NewRootKeyStore (package
// github.com/lpsec/lpsec/macaroon/macaroonpg, kept apart so that this
// package links no database driver) for several.
//
// Constructors take what they require positionally and the rest as
// options (WithThirdParty, WithDefaultTTL, WithMaxTTL, WithLogger, ...);
// an option given where it does not apply is ErrInvalidOption.
//
// The package is built on go-macaroon-bakery v3.0.2 and gopkg.in/macaroon.v2
// and keeps their wire formats, so the Go and Python bakeries interoperate
// with it. It differs from using the bakery directly in these ways:
//
//   - Verification needs at least one operation (the bakery lets an empty
//     check pass), keeps no state between requests, and ignores no caveat:
//     it understands time-before and, only as the first caveat of the
//     primary macaroon, "declared username"; any other first-party caveat
//     denies the request (identity logins add "issued-at" first and take
//     the user from their identity discharge, see below). Only a verification id makes a caveat
//     third-party: a first-party caveat given a location (which the JSON
//     form accepts and no signature covers) is refused as malformed, not
//     skipped.
//   - Identity cannot be added or changed by a holder. A holder may append
//     first-party caveats (which can only restrict), but never in front of
//     the minted ones, so the identity is taken from caveat 0 alone, where
//     MintLogin writes it (or, for MintIdentityLogin, from the pinned
//     identity provider's discharge). A declared caveat anywhere else, in the primary
//     or a discharge, even one repeating the same user, makes the macaroon
//     invalid (ErrDenied) rather than ignored, and a resource macaroon (no
//     declared caveat at minting) can never gain a user.
//   - Inputs that make the bakery v3.0.2 panic are rejected before they reach
//     it (short and empty macaroon ids, version 1 caveats without a key,
//     overflowing length fields in caveats, the JSON literal null); the
//     vectors are in testdata/fail_*. A recover converts anything unknown
//     into ErrMalformed as a last containment.
//   - Every size and count an attacker controls is bounded (MaxEncodedBytes,
//     MaxSlices, MaxMacaroonsPerSlice, MaxCaveats, form and response bodies).
//   - Errors match sentinel values with errors.Is; the bakery's errgo errors
//     never escape.
//   - Security events are log/slog records with a stable "event" attribute:
//     macaroon_minted, macaroon_verify_failed (with "reason": missing,
//     malformed, expired, denied, discharge_required, unknown_root_key,
//     revoked, user_refused, unavailable), macaroon_revoked (with "scope":
//     logout, id, user or all), macaroon_identity_declared,
//     discharge_granted and discharge_refused. They never carry
//     a macaroon, a signature or a key.
//
// # Sessions that end
//
// A login macaroon is a bearer credential valid until its time-before
// caveat (DefaultTTL, 8 hours, unless the caller asks for more, never more
// than MaxTTL, 240 hours). Two options end it sooner, both checked on every
// verification of a login macaroon, after its signature:
//
//   - WithRevocations and a RevocationStore: Service.Logout revokes the
//     macaroon a request was verified with (and its attenuations, which
//     share its id), RevokeID one by its Grant.ID, RevokeUser every login
//     of a user issued before a time, RevokeAll everyone's. MintLogin
//     writes the issue time as the second caveat ("issued-at"), a position
//     a holder cannot write (older login macaroons have their time-before
//     there). NewMemoryRevocationStore refuses at once on
//     its one instance; macaroonpg.NewRevocationStore on every instance
//     sharing the database within WithCacheTTL (DefaultRevocationCacheTTL,
//     5 seconds), or at once with WithoutRevocationCache. Refused with
//     ErrRevoked.
//   - WithCheckUser: a callback that says whether the user may still act
//     (still in the admin list, SSO account enabled); refused with
//     ErrUserRefused.
//
// # Identity discharges (single sign-on)
//
// Canonical's SSO (Candid, Ubuntu SSO) logs users in with the bakery: the
// server mints a macaroon with a third-party caveat addressed to an
// identity service, and the identity service's discharge declares who the
// holder is. Pin the service with WithIdentityProvider, mint with
// Service.MintIdentityLogin, and serve the identity side with
// NewIdentityDischarger. Verify accepts a declared user (and "declared
// groups", Grant.Groups) from one place only: the leading declared caveats
// of the discharge of the identity caveat MintIdentityLogin wrote, at a
// position of the primary macaroon no holder can write, encrypted to the
// pinned provider's key, so only that provider could have made a discharge
// that verifies. The provider must close its declarations with another
// caveat (NewIdentityDischarger writes its time-before there); declarations
// after it were appended by the holder. A declared caveat anywhere else (a
// discharge from an entitlement service, a holder's append, a second or
// conflicting declaration) refuses the macaroon with
// ErrUntrustedDeclaration; nothing is ignored. The user then goes through
// WithCheckIdentity (when users come from several sources, to keep each
// provider to its own names), WithCheckUser and revocation like a Basic
// login, and the event macaroon_identity_declared records it.
//
// # Keys
//
// The bakery calls its keys Ed25519, but they are not signing keys: they
// are Curve25519 (X25519) key pairs used with NaCl box (X25519 key
// agreement, then XSalsa20-Poly1305 authenticated encryption) to encrypt
// third-party caveats to the third party. The first party's public key
// travels in the caveat. GenerateKey makes a pair, MarshalKeyPair and
// ParseKeyPair use the bakery's JSON form {"public":"<base64>",
// "private":"<base64>"} and check that the halves match, and
// KeyPairFromEd25519 derives a pair from an Ed25519 private key with
// libsodium's crypto_sign_ed25519_sk_to_curve25519 conversion.
//
// # Wire formats
//
// RequestMacaroons reads httpbakery's Macaroons header and macaroon-*
// cookies and "Authorization: Macaroon <base64>". Macaroons travel as
// base64 of a JSON array (EncodeSlice writes it); base64 of one macaroon
// object, in gopkg.in/macaroon.v2's JSON form or the bakery's (what
// WriteMacaroon writes), is accepted too. A macaroon that still
// needs discharging must be kept in the bakery's JSON form (WriteMacaroon,
// ParseMacaroon): version 3 third-party caveats keep their encrypted
// payload beside the macaroon, and the binary macaroon form drops it.
//
// # Third parties
//
// A resource macaroon's third-party caveat is encrypted to a public key
// pinned with WithThirdParty, never to one fetched at minting time. The
// caveat's location is not covered by any signature, so DischargeClient
// contacts only allow-listed https locations and never follows redirects.
// Discharger always adds a time-before caveat (WithDischargeTTL) to its
// discharges and answers malformed requests with a 400 and an
// httpbakery-style JSON error.
//
// # The httpbakery protocol
//
// A server asks a client for a discharged macaroon with httpbakery's
// discharge-required error: WriteDischargeRequired writes it exactly as
// go-macaroon-bakery's httpbakery does (status 407 to protocol version 0,
// 401 with "WWW-Authenticate: Macaroon" to versions 1 to 3, see
// RequestVersion; JSON {"Code","Message","Info":{"Macaroon","MacaroonPath",
// "CookieNameSuffix"}}), and a Middleware given WithDischargeRequired sends
// it with a freshly minted macaroon, so stock Go and Python bakery clients
// discharge and retry on their own. On the client side,
// ParseDischargeRequired reads such an answer and refuses hostile ones with
// sentinels (ErrNotDischargeRequired, ErrProtocolVersion, ErrMalformed), and
// DischargeClient.DischargeRequired checks every third-party location
// against its allow-list before contacting any.
package macaroon

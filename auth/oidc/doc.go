// Package oidc verifies OpenID Connect ID tokens for the admin logins of
// a live-patch server: single sign-on through an identity provider
// (Keycloak, Okta, Azure AD, Google, Dex, Zitadel...) instead of, or
// beside, the Basic Auth of package auth.
//
// Most users want [NewVerifier] and [Verifier.Verify]:
//
//	httpClient, err := tlsconfig.HTTPClient(...) // TLS 1.2+, CA pool, proxies
//	v, err := oidc.NewVerifier(ctx, "https://idp.example.com", "lpsec-admin",
//		oidc.WithHTTPClient(httpClient), oidc.WithLogger(logger),
//		oidc.WithAdminClaim("groups", "lpsec-admins"))
//	id, err := v.Verify(ctx, bearerToken) // id.User: "https://idp.example.com#<sub>"
//	// mint the login macaroon for id.User
//
// It is a subpackage so that importing auth for Basic Auth links no JOSE
// or OAuth library; like the six lpsec packages it imports none of them
// (the HTTP client comes from the caller, built with tlsconfig).
//
// It is built on github.com/coreos/go-oidc/v3 (discovery, the provider's
// OAuth 2.0 endpoints) and its JOSE library github.com/go-jose/go-jose/v4
// (JWS parsing and signature checks), and refuses more than go-oidc's own
// verifier: the issuer and the key set URL must be https; keys are cached
// and an unknown key ID causes at most one refetch per interval (so forged
// key IDs cannot make the server hammer the provider), and keys older than
// a maximum age are not used when the provider cannot be reached (fail
// closed); only asymmetric algorithms from an allow-list, never "none" or
// HMAC; "aud" must hold the client ID and "azp" must be the client ID when
// present or when there are several audiences; "exp" and "iat" are
// required and checked with a bounded clock skew, as is "nbf"; a nonce can
// be required ([Verifier.VerifyNonce]); tokens, headers and provider
// documents have size bounds. Admin rights come from a configured rule
// (a group or role claim holding a value, an allow-list of subjects, or
// of verified emails), and the user identity is stable: issuer and
// subject, or a verified email with [WithEmailIdentity], never a display
// name.
//
// Every refusal wraps one sentinel (ErrExpired, ErrAudience, ErrNotAdmin...)
// and is logged to the injected [log/slog] logger as an "sso_refused"
// event with a reason; a success is an "sso_login" event. Records never
// hold the token.
package oidc

// Package auth checks HTTP Basic credentials (RFC 7617) against bcrypt and
// argon2id password hashes, for the admin logins of a live-patch server.
//
// Most users want [NewBasic] and [Basic.Middleware]:
//
//	users, err := auth.ParseUsers(os.Getenv("ADMIN_USERS")) // "alice:$2y$10$...,bob:$argon2id$..."
//	basic, err := auth.NewBasic(users, auth.WithLogger(logger), auth.WithThrottle(10, time.Minute))
//	mux.Handle("/v1/macaroon", basic.Middleware(issueMacaroon))
//
// and, inside the handler, [UserFromContext]. [Basic.Verify] checks a user
// and password directly; [HashPassword] makes a hash for the users list;
// [ReadHtpasswd] loads a file written by `htpasswd -B`.
//
// The package refuses well. Only bcrypt ($2a$, $2b$, $2y$) and argon2id
// are accepted, within cost bounds, and other formats (apr1-MD5, {SHA},
// DES crypt, SHA-crypt, plaintext) are refused when loaded with an error
// saying how to re-hash. An unknown user costs the same hashing as a wrong
// password, so timing does not tell which users exist. Hash computations
// are limited in number, with a bounded queue (503 beyond it); failed
// attempts can be throttled per user and per client address (429); a
// success cache spares repeat logins the hash. Every refusal from Verify
// matches [ErrInvalidCredentials], and the HTTP answer never says why;
// the reason goes to the injected [log/slog] logger as a security event.
//
// Configuration mistakes are refused when the verifier is built: an
// option that makes no sense with [ErrInvalidOption], naming the option;
// a users entry that cannot be trusted with [ErrInvalidUsers], naming the
// entry, the user and how to re-hash.
package auth

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
// password, so timing does not tell which users exist. Every refusal from
// Verify matches [ErrInvalidCredentials], and the HTTP answer never says
// why; the reason goes to the injected [log/slog] logger as a security
// event.
//
// # Throttling that cannot be turned against the user
//
// Password guessing is slowed without letting a guesser lock out or
// starve the real user, who may know only that someone is hammering their
// name. [Basic.Middleware] checks each attempt in this order:
//
//   - Per-client limits ([WithThrottle]; a client is an IPv4 address or an
//     IPv6 /64): burst failures per user name from that client, 4 × burst
//     over all names, refill one per interval; over a limit, 429 before
//     anything else is done. Only failures from the same client can empty
//     these buckets.
//   - The success cache ([WithCache]): a correct password seen in the last
//     TTL succeeds at once, without a hash and without waiting, however
//     many clients are failing for that user.
//   - A hash slot ([WithConcurrency]). There is no limit that refuses by
//     user name alone. Instead the queue for hash slots is ordered: first
//     a user logging in from a client it succeeded from in the last 24
//     hours, then clients with no remembered failures, then the rest; a
//     user whose failures from all clients exceed its budget (a name under
//     a distributed attack) goes after others of the same rank. When the
//     queue is full, a better-placed attempt takes the place of the worst
//     one waiting, which gets 503; attempts of equal rank are served in
//     arrival order.
//
// An attempt's tokens come back only if its password was right: attempts
// refused as overloaded, or abandoned while queued, count as failures, so
// overloading the server does not buy more guesses.
//
// The trade-offs. A flood from many addresses is not refused, so it costs
// the server one hash per attempt up to the concurrency limit (that is
// what the limit is for), and a distributed guesser gets as many guesses
// at one name as the server computes hashes: the stored hash's cost is
// what protects a password then. A flood's failing attempts wait rather
// than being refused, so each holds a goroutine while it waits (bounded by
// the queue); a first login from an address never seen before waits behind
// the other never-seen addresses' attempts, so an attacker who brings
// fresh addresses faster than the server hashes can delay it, though not
// a login from a known client or a cached password. People behind one
// NAT address share its per-client limits. While a password is in the
// success cache, a guesser who gives up on each attempt as soon as it is
// not answered at once learns the answer without waiting for a hash; each
// such guess still costs its client a token, so leave [WithThrottle] on
// wherever untrusted clients reach the login. [Basic.Verify] knows no
// client address and is never throttled, only ordered.
//
// Configuration mistakes are refused when the verifier is built: an
// option that makes no sense with [ErrInvalidOption], naming the option;
// a users entry that cannot be trusted with [ErrInvalidUsers], naming the
// entry, the user and how to re-hash.
package auth

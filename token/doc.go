// Package token issues and checks the bearer tokens of a live-patch server:
// registration ("auth") tokens, machine tokens and sync tokens, all random
// (version 4) UUIDs, stored only as digests.
//
// Most servers want the PostgreSQL store, tokenpg.NewStore from
// github.com/lpsec/lpsec/token/tokenpg (call its Migrate at startup), and
// [NewMiddleware] in front of their handlers:
//
//	store, err := tokenpg.NewStore(db, token.WithLogger(logger))
//	if err := store.Migrate(ctx); err != nil { ... }
//	mw, err := token.NewMiddleware(store, token.WithLogger(logger))
//	mux.Handle("GET /v1/patches", mw.Machine(patches))
//
// The PostgreSQL store is a package of its own so that a program that
// imports token only for [MemoryStore] or [Middleware] links no database
// driver.
//
// The three kinds of token:
//
//   - A registration token is issued by an admin ([Store.IssueRegistration])
//     for a tier, with a number of uses (or [Unlimited]) and an optional
//     valid-until. A machine exchanges it once with [Store.Register] for a
//     machine token; each exchange takes one use atomically, and a machine
//     that registers again gets a new token while its previous one is
//     revoked, so each machine has at most one live token.
//   - A machine token authenticates a client's later requests
//     ([Store.AuthenticateMachine], [Middleware.Machine]).
//   - A sync token ([Store.IssueSync]) lets another server fetch this one's
//     patches for a tier ([Middleware.Sync]).
//
// Tokens are accepted only in the canonical 8-4-4-4-12 form ([Parse]).
//
// # Digests, not tokens
//
// A store keeps SHA-256 of the token's 16 bytes, never the token; the value
// is returned once, when it is issued. The digest is also the record's ID
// ([ID]), used to list and revoke. Plain SHA-256 rather than HMAC under a
// server pepper, because a token holds 122 bits from crypto/rand: nobody can
// search that space from a stolen digest, so a pepper would add no
// protection to a dumped database, while it would add a secret that every
// instance must share, rotate and never lose (losing it invalidates every
// token). An attacker who can write to the database is out of scope either
// way: they can already change tiers and un-revoke tokens.
//
// Lookups go by digest through a map or a primary-key index, not by
// comparing tokens, so there is no secret-dependent comparison to time: an
// attacker who can choose a digest's prefix must already be able to find
// SHA-256 preimages.
//
// # Failing closed
//
// Every store error wraps [ErrUnavailable] and never reads as success; the
// middleware answers 503. The PostgreSQL store caches nothing, so several
// instances on one database see each other's tokens and revocations at
// their next query, and it recovers by itself when the database returns.
//
// # Logs
//
// Security events are log/slog records (see [WithLogger]) with a stable
// "event" attribute: token_issued, token_registered,
// token_machine_replaced, token_revoked, token_authn_failed (with a
// "reason": missing, malformed, unknown, revoked, expired, exhausted),
// token_store_unavailable and, at debug level, token_authn_ok. They carry at
// most the first 8 hex digits of a record ID, never a token.
package token

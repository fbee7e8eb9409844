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
//     machine token; each exchange takes one use atomically. A machine name
//     has at most one live machine token (see "Who may register a name"
//     below). A server that admits machines on a credential of its own (an
//     entitlement service's discharged macaroon, say) registers them with
//     [Store.RegisterExternal] instead: same rules, no registration token.
//   - A machine token authenticates a client's later requests
//     ([Store.AuthenticateMachine], [Middleware.Machine]).
//   - A sync token ([Store.IssueSync]) lets another server fetch this one's
//     patches for a tier ([Middleware.Sync]).
//
// Tokens are accepted only in the canonical 8-4-4-4-12 form ([Parse]).
//
// # Who may register a name
//
// The protocol this package serves comes from live-patch services where a
// client runs "enable <token>" and the server answers PUT
// /v1/client/{machine-id} with a machine token, re-registering the machine
// if it was registered before: users of those services expect a second
// "enable" with the fleet token to just work. That expectation is also an
// attack: anyone holding the fleet token (every machine of the fleet) could
// re-register any other machine's name, revoking the victim's token and
// receiving a working one for its identity, and two clones of one VM image
// (one machine ID) silently knocked each other out. So this package departs
// from it: a name that has a live (not revoked, not expired) machine token
// is registered again only
//
//   - by the holder of that token, which presents it ([WithCurrentToken]):
//     a rotation, the previous token revoked in the same step; or
//   - by the retry of the registration that made it ([WithRetryKey]): the
//     client sends a fresh random key with each registration and keeps it
//     until it has its token; if the answer was lost (a timeout, a crash
//     after commit), repeating the same registration with the same key,
//     with the same registration token (or External issuer), within the
//     retry window ([DefaultRetryWindow]) and before the machine token has
//     ever authenticated, returns a new token for the machine, revokes the
//     unseen one, and takes no use, so a one-use token is not lost. Any
//     other key or credential is refused as before; or
//   - after an admin released the name ([Store.ReleaseMachine]) or revoked
//     its token: how a machine that lost its state is recovered.
//
// Anything else fails with [ErrMachineTaken] (logged as
// token_machine_taken) and changes nothing: no use is taken, the holder's
// token keeps working. A server answers it with 409 Conflict and tells the
// operator the likely cause (a cloned machine ID) and the fix (an admin
// release). Credential errors come first: a caller without a valid
// registration token learns ErrUnknown, ErrRevoked, ErrExpired or
// ErrExhausted, never whether a name is taken.
//
// # Bounded state
//
// Each store keeps, per machine name, the live record and at most
// [KeepReplaced] revoked or replaced ones (older ones are deleted when the
// name registers again), so rotations cannot grow a store; revoked records
// are deleted by [Store.PruneMachines] after the retention
// ([DefaultMachineRetention], [WithMachineRetention]), after which an old
// token authenticates as ErrUnknown rather than ErrRevoked. Records thus
// number about issued registration and sync tokens plus (1+KeepReplaced) per
// machine name registered within the retention. [Store.ListMachines] pages
// by cursor (at most [MaxListLimit] records a call); its cost grows with the
// page, not the store, and it never stalls authentication.
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
// token_machine_replaced, token_machine_taken (a registration refused by the
// possession rule), token_machine_released, token_register_retried,
// token_machines_pruned, token_revoked, token_authn_failed (with a
// "reason": missing, malformed, unknown, revoked, expired, exhausted),
// token_store_unavailable and, at debug level, token_authn_ok. They carry at
// most the first 8 hex digits of a record ID, never a token.
package token

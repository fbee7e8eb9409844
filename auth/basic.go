package auth

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"
)

// Basic checks HTTP Basic credentials against a set of [Users]. It is safe
// for concurrent use; [Basic.SetUsers] replaces the users while requests
// are being checked.
type Basic struct {
	realm   string
	logger  *slog.Logger
	proxies []netip.Prefix

	minBcrypt     int
	minArgon2Work uint64 // KiB × passes

	gate     *gate         // hash slots, handed out by priority
	overload time.Duration // Retry-After when overloaded

	cache     *successCache // nil: disabled
	limiter   *limiter      // counts failures; refuses only with WithThrottle
	dummySeed maphash.Seed

	users atomic.Pointer[userSet]

	// Seams for tests: the clock, and a hook called with the work of
	// every hash computation, inside the concurrency slot.
	now    func() time.Time
	onHash func(work string)

	errorWriter ErrorWriter // nil: httperr's JSON body
}

type userSet struct {
	byName map[string]*credential
	// dummies[i] has the work of the i-th user's hash; an unknown name is
	// checked against the one its keyed hash picks.
	dummies []*credential
}

// NewBasic returns a verifier for users. Besides the checks done when the
// users were parsed, it refuses hashes below the minimum cost (see
// [WithMinimumCost]) with [ErrInvalidUsers]: `htpasswd -B` without -C
// writes cost 5, which is refused. An option that makes no sense is
// refused with [ErrInvalidOption] naming it.
func NewBasic(users Users, opts ...Option) (*Basic, error) {
	s, err := build(opts)
	if err != nil {
		return nil, err
	}
	b := &Basic{
		realm:         s.realm,
		logger:        s.logger,
		proxies:       s.proxies,
		minBcrypt:     s.minBcrypt,
		minArgon2Work: s.minArgon2Work,
		gate:          newGate(s.hashes, s.queue),
		overload:      time.Second,
		now:           s.now,
		dummySeed:     maphash.MakeSeed(),
		errorWriter:   s.errorWriter,
	}
	if !s.noCache {
		b.cache = newSuccessCache(s.cacheTTL, s.cacheSize)
	}
	if s.throttleBurst > 0 {
		b.limiter = newLimiter(s.throttleBurst, s.throttleInterval, true)
	} else {
		b.limiter = newLimiter(orderBurst, orderInterval, false)
	}
	if err := b.SetUsers(users); err != nil {
		return nil, err
	}
	return b, nil
}

// SetUsers replaces the users atomically, for a configuration reload:
// checks already running finish against the old users, later ones see the
// new. It applies the minimum cost and empties the success cache; on error
// the old users stay.
func (b *Basic) SetUsers(users Users) error {
	set := &userSet{byName: make(map[string]*credential, len(users.entries))}
	dummyOf := make(map[string]*credential)
	for _, e := range users.entries {
		if err := b.checkCost(e.name, e.cred); err != nil {
			return err
		}
		set.byName[e.name] = e.cred
		w := e.cred.work()
		d, ok := dummyOf[w]
		if !ok {
			d = e.cred.dummy()
			dummyOf[w] = d
		}
		set.dummies = append(set.dummies, d)
	}
	if len(set.dummies) == 0 {
		set.dummies = []*credential{(&credential{alg: algBcrypt, cost: b.minBcrypt}).dummy()}
	}
	b.users.Store(set)
	if b.cache != nil {
		b.cache.clear()
	}
	return nil
}

func (b *Basic) checkCost(user string, c *credential) error {
	switch c.alg {
	case algBcrypt:
		if c.cost < b.minBcrypt {
			return fmt.Errorf("%w: user %q has bcrypt cost %d, below the minimum %d: re-hash with `htpasswd -nbBC %d %s PASSWORD`",
				ErrInvalidUsers, user, c.cost, b.minBcrypt, max(b.minBcrypt, DefaultMinBcryptCost), user)
		}
	case algArgon2id:
		if uint64(c.memory)*uint64(c.time) < b.minArgon2Work {
			return fmt.Errorf("%w: user %q has argon2id m=%d,t=%d, below the minimum memory × passes %d: re-hash with auth.HashPassword",
				ErrInvalidUsers, user, c.memory, c.time, b.minArgon2Work)
		}
	}
	return nil
}

// outcome of one check, for the log and the middleware's status code.
type outcome struct {
	err        error  // nil on success
	reason     string // log reason on failure
	known      bool   // the user exists (the name may be logged)
	retryAfter time.Duration
	limit      string // reason "throttled": which limit
	prio       int    // reason "overloaded": the attempt's priority
}

// Verify checks user and password. It returns nil if they match, and an
// error matching [ErrInvalidCredentials] otherwise: the error also matches
// [ErrOverloaded] when no password was checked, or the context's error
// when ctx ended while waiting for a free slot. An unknown user costs the
// same hashing as a wrong password. Verify does not know the client's
// address, and the throttle refuses only per client, so Verify never
// answers [ErrThrottled]: its failures only lower the priority of the
// user's later checks when hash slots are scarce. Use [Basic.Middleware]
// for throttling.
func (b *Basic) Verify(ctx context.Context, user, password string) error {
	o := b.check(ctx, user, password, netip.Addr{})
	b.log(ctx, user, netip.Addr{}, o)
	return o.err
}

// check runs one attempt, in an order that a flood cannot turn against
// the real user:
//
//  1. The client's own buckets (per client address group, and per user
//     and client): over the limit, 429. Only failures from the same
//     client can empty them.
//  2. The success cache: a correct password seen recently succeeds here,
//     whatever the user's failures from elsewhere.
//  3. A hash slot, by priority (see gate): no refusal for the user's
//     failures from elsewhere, only a later place in the queue.
//
// Tokens are given back only when the password was right: an attempt
// refused as overloaded, or abandoned while queued, has used its token.
func (b *Basic) check(ctx context.Context, user, password string, client netip.Addr) outcome {
	if err := checkCredentials(user, password); err != nil {
		b.penalise(client)
		return outcome{err: ErrInvalidCredentials, reason: "malformed_header"}
	}
	set := b.users.Load()
	// The dummy is picked for every name, known or not, so that both
	// paths do the same work before the hash too.
	dummy := set.dummies[b.pick(user, len(set.dummies))]
	cred, known := set.byName[user]
	if !known {
		cred = dummy
	}

	t, ok, wait, limit := b.limiter.admit(b.now(), user, client)
	if !ok {
		return outcome{err: &refusal{cause: ErrThrottled, retryAfter: wait}, reason: "throttled", known: known, retryAfter: wait, limit: limit}
	}

	// Unknown users look up the cache too, with the dummy hash, so that
	// both paths do the same work up to the hash. The lookup is by an
	// HMAC under a per-process key, so its timing says nothing an
	// attacker can use.
	var ck [32]byte
	if b.cache != nil {
		ck = b.cache.sum(user, password, cred.raw)
		if b.cache.hit(ck, b.now()) && known {
			b.limiter.succeeded(b.now(), t)
			return outcome{known: true}
		}
	}

	prio := b.limiter.priority(b.now(), user, &t)
	if err := b.gate.acquire(ctx, prio); err != nil {
		o := outcome{err: &refusal{cause: err}, reason: "overloaded", known: known, prio: prio}
		if errors.Is(err, ErrOverloaded) {
			o.err = &refusal{cause: ErrOverloaded, retryAfter: b.overload}
			o.retryAfter = b.overload
		}
		return o
	}
	ok = func() bool {
		defer b.gate.release()
		if b.onHash != nil {
			b.onHash(cred.work())
		}
		return cred.matches(password)
	}()

	switch {
	case ok && known:
		b.limiter.succeeded(b.now(), t)
		if b.cache != nil {
			b.cache.add(ck, b.now())
		}
		return outcome{known: true}
	case known:
		return outcome{err: ErrInvalidCredentials, reason: "bad_password", known: true}
	default:
		return outcome{err: ErrInvalidCredentials, reason: "user_not_found"}
	}
}

// pick chooses the dummy hash for an unknown name: the work of a real
// user's hash chosen by a hash of the name under a random per-process
// seed (maphash: fast, and nobody needs to invert it). Unknown names then take
// the times real users take, in the same proportions, and a given name
// always takes the same time.
func (b *Basic) pick(user string, n int) int {
	return int(maphash.String(b.dummySeed, user) % uint64(n))
}

// penalise counts a malformed attempt against the client address.
func (b *Basic) penalise(client netip.Addr) {
	b.limiter.penalise(b.now(), client)
}

func (b *Basic) log(ctx context.Context, user string, client netip.Addr, o outcome) {
	attrs := make([]slog.Attr, 0, 5)
	if o.err == nil {
		attrs = append(attrs, slog.String("event", "basicauth_authn_success"), slog.String("user", user))
	} else {
		// A refusal that checked no password is its own event, so that
		// alerts on floods need not parse reasons.
		event := "basicauth_authn_failed"
		if o.reason == "throttled" || o.reason == "overloaded" {
			event = "auth_throttled"
		}
		attrs = append(attrs, slog.String("event", event), slog.String("reason", o.reason))
		switch o.reason {
		case "throttled":
			attrs = append(attrs, slog.String("limit", o.limit))
		case "overloaded":
			attrs = append(attrs, slog.String("priority", prioNames[o.prio]))
		}
		if o.known {
			attrs = append(attrs, slog.String("user", user))
		}
	}
	if client.IsValid() {
		attrs = append(attrs, slog.String("client", client.String()))
	}
	level, msg := slog.LevelInfo, "basic auth succeeded"
	if o.err != nil {
		level, msg = slog.LevelWarn, "basic auth failed"
	}
	b.logger.LogAttrs(ctx, level, msg, attrs...)
}

// challenge is the WWW-Authenticate value; the realm was checked to need
// no escaping.
func (b *Basic) challenge() string {
	var s strings.Builder
	s.WriteString(`Basic realm="`)
	s.WriteString(b.realm)
	s.WriteString(`", charset="UTF-8"`)
	return s.String()
}

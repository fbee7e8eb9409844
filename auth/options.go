package auth

import (
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"time"
)

// An Option configures [NewBasic]. Options are made only by the With
// functions of this package; a value that makes no sense (nil, zero or
// negative where a positive value is needed, two options that contradict
// each other) makes NewBasic return an error wrapping [ErrInvalidOption]
// that names the option.
type Option struct {
	name  string
	apply func(*settings) error
}

// Defaults of the options. The minimum costs are what `htpasswd -nbBC 10`
// writes and OWASP's argon2id floor (19 MiB, 2 passes), compared as memory
// × passes so that the other OWASP combinations of equal work pass too.
const (
	DefaultCacheTTL             = time.Minute
	DefaultCacheSize            = 1024
	DefaultMinBcryptCost        = 10
	DefaultMinArgon2idMemoryKiB = 19456
	DefaultMinArgon2idPasses    = 2
	DefaultQueuePerHash         = 32
)

type settings struct {
	realm            string
	logger           *slog.Logger
	now              func() time.Time
	minBcrypt        int
	minArgon2Work    uint64 // KiB × passes
	hashes, queue    int
	cacheTTL         time.Duration
	cacheSize        int
	cacheSet         bool // WithCache given
	noCache          bool // WithoutCache given
	throttleBurst    int  // 0: no throttle
	throttleInterval time.Duration
	proxies          []netip.Prefix
	errorWriter      ErrorWriter // nil: httperr's JSON body
}

func build(opts []Option) (*settings, error) {
	procs := runtime.GOMAXPROCS(0)
	s := &settings{
		realm:         "lpsec",
		logger:        slog.New(slog.DiscardHandler),
		now:           time.Now,
		minBcrypt:     DefaultMinBcryptCost,
		minArgon2Work: DefaultMinArgon2idMemoryKiB * DefaultMinArgon2idPasses,
		hashes:        procs,
		queue:         DefaultQueuePerHash * procs,
		cacheTTL:      DefaultCacheTTL,
		cacheSize:     DefaultCacheSize,
	}
	for _, o := range opts {
		if o.apply == nil {
			return nil, fmt.Errorf("%w: zero Option given to NewBasic", ErrInvalidOption)
		}
		if err := o.apply(s); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalidOption, o.name, err)
		}
	}
	if s.cacheSet && s.noCache {
		return nil, fmt.Errorf("%w: WithCache and WithoutCache cannot be combined", ErrInvalidOption)
	}
	return s, nil
}

// WithRealm sets the realm sent in the WWW-Authenticate challenge
// (default "lpsec"). It must be 1 to 128 bytes of printable ASCII without
// quotes or backslashes, so that it needs no escaping.
func WithRealm(realm string) Option {
	return Option{"WithRealm", func(s *settings) error {
		if realm == "" || len(realm) > 128 {
			return fmt.Errorf("realm must be 1 to 128 bytes, is %d", len(realm))
		}
		for i := 0; i < len(realm); i++ {
			if c := realm[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
				return fmt.Errorf("realm must be printable ASCII without quotes or backslashes (byte %d is not)", i)
			}
		}
		s.realm = realm
		return nil
	}}
}

// WithLogger sends security events to logger: records with event
// "basicauth_authn_success" or "basicauth_authn_failed" and, on failure, a
// reason ("user_not_found", "bad_password", "malformed_header"); an
// attempt refused before any password was checked is event
// "auth_throttled" with reason "throttled" or "overloaded". A "throttled" record says which limit
// refused in "limit" ("user_client": this user from this client address
// group; "client": this address group, all users); an "overloaded" one
// gives the attempt's place in the hash queue in "priority"
// ("known_client", "clean_client", "clean_client_hot_user",
// "failing_client", "failing_client_hot_user"). Records carry the user
// name only when the user exists (an unknown name is often a password
// typed in the wrong field) and never a password. Without this option
// events are discarded; a nil logger is an error.
func WithLogger(logger *slog.Logger) Option {
	return Option{"WithLogger", func(s *settings) error {
		if logger == nil {
			return fmt.Errorf("nil logger")
		}
		s.logger = logger
		return nil
	}}
}

// WithClock replaces time.Now for the success cache's expiry and the
// throttle's refill; tests use it. A nil clock is an error.
func WithClock(now func() time.Time) Option {
	return Option{"WithClock", func(s *settings) error {
		if now == nil {
			return fmt.Errorf("nil clock")
		}
		s.now = now
		return nil
	}}
}

// WithMinimumCost sets the minimum cost a stored hash must have: the
// bcrypt cost (4 to 14), and for argon2id a memory in KiB (at least 8)
// and a number of passes (at least 1) whose product the hash's memory ×
// passes must reach. The defaults are DefaultMinBcryptCost,
// DefaultMinArgon2idMemoryKiB and DefaultMinArgon2idPasses. Lower them
// only in tests.
func WithMinimumCost(bcryptCost int, argon2idMemoryKiB, argon2idPasses uint32) Option {
	return Option{"WithMinimumCost", func(s *settings) error {
		if bcryptCost < minBcryptCostHard || bcryptCost > maxBcryptCost {
			return fmt.Errorf("bcrypt cost %d outside [%d, %d]", bcryptCost, minBcryptCostHard, maxBcryptCost)
		}
		if argon2idMemoryKiB < 8 || argon2idMemoryKiB > maxArgon2Memory || argon2idPasses < 1 || argon2idPasses > maxArgon2Time {
			return fmt.Errorf("argon2id m=%d,t=%d outside m in [8, %d], t in [1, %d]",
				argon2idMemoryKiB, argon2idPasses, maxArgon2Memory, maxArgon2Time)
		}
		s.minBcrypt = bcryptCost
		s.minArgon2Work = uint64(argon2idMemoryKiB) * uint64(argon2idPasses)
		return nil
	}}
}

// WithConcurrency allows at most hashes password hashes to be computed at
// once (at least 1; default GOMAXPROCS) and at most queue callers to wait
// for one (0 or more; default DefaultQueuePerHash × hashes, 0 refuses
// whoever finds every slot busy). Waiting callers are served by priority
// (see [WithThrottle]); when the queue is full, a caller of a better
// priority than the worst waiting takes that one's place, and otherwise
// is refused at once with ErrOverloaded (the middleware answers 503 with
// Retry-After) instead of piling up. A waiting caller gives up when its
// context is done. The queue should be larger than the number of
// connections an attacker can keep open: failing attempts that wait cost
// the server a goroutine each, but attempts refused at once come back at
// once, from new addresses.
func WithConcurrency(hashes, queue int) Option {
	return Option{"WithConcurrency", func(s *settings) error {
		if hashes < 1 || queue < 0 {
			return fmt.Errorf("need hashes >= 1 and queue >= 0, have %d and %d", hashes, queue)
		}
		s.hashes, s.queue = hashes, queue
		return nil
	}}
}

// WithCache sets the success cache: a correct user and password are
// remembered for ttl, at most size of them (defaults DefaultCacheTTL and
// DefaultCacheSize); both must be positive. Failures are never cached;
// replacing the users empties the cache. [WithoutCache] turns it off.
func WithCache(ttl time.Duration, size int) Option {
	return Option{"WithCache", func(s *settings) error {
		if ttl <= 0 || size <= 0 {
			return fmt.Errorf("need a positive ttl and size, have %v and %d", ttl, size)
		}
		s.cacheTTL, s.cacheSize, s.cacheSet = ttl, size, true
		return nil
	}}
}

// WithoutCache turns the success cache off: every check computes a hash.
// It cannot be combined with [WithCache].
func WithoutCache() Option {
	return Option{"WithoutCache", func(s *settings) error {
		s.noCache = true
		return nil
	}}
}

// WithThrottle limits failed attempts per client, where a client is an
// IPv4 address or an IPv6 /64: burst failures (at least 1) per user name
// from one client and 4 × burst over all names from one client, then one
// more per interval (positive). An attempt over a limit is refused with
// ErrThrottled before the success cache is looked at or any hash is
// computed (the middleware answers 429 with Retry-After). Only
// [Basic.Middleware] knows the client, so only it refuses.
//
// There is deliberately no limit that refuses by user name alone: anyone
// who knows the name could keep the user locked out. Instead, whether or
// not this option is given, failures are counted per user across all
// clients (burst, or 10 without this option) and the count only orders
// the queue for hash slots (see [WithConcurrency]): first a user logging
// in from a client it succeeded from in the last 24 hours, then clients
// with no failures the throttle remembers (users being guessed at from
// many clients after the others), then the rest. A correct password in
// the success cache is accepted without waiting for anything. Off by
// default: without it nothing is refused with 429.
func WithThrottle(burst int, interval time.Duration) Option {
	return Option{"WithThrottle", func(s *settings) error {
		if burst < 1 || interval <= 0 {
			return fmt.Errorf("need burst >= 1 and a positive interval, have %d and %v", burst, interval)
		}
		s.throttleBurst, s.throttleInterval = burst, interval
		return nil
	}}
}

// WithTrustedProxies makes the middleware believe X-Forwarded-For when the
// request comes from one of these networks: the client address is then
// the right-most hop outside them. From any other peer the header is
// ignored, since anyone can send it. No networks is the same as no
// option (so a list read from configuration can be passed as it is);
// repeating the option adds networks.
func WithTrustedProxies(networks ...netip.Prefix) Option {
	return Option{"WithTrustedProxies", func(s *settings) error {
		for i, p := range networks {
			if !p.IsValid() {
				return fmt.Errorf("network %d is not a valid prefix", i)
			}
			s.proxies = append(s.proxies, p.Masked())
		}
		return nil
	}}
}

// WithErrorWriter replaces the writer of [Basic.Middleware]'s refusals
// (default: the JSON body {"code","error"} every lpsec middleware writes).
// A nil writer is an error.
func WithErrorWriter(ew ErrorWriter) Option {
	return Option{"WithErrorWriter", func(s *settings) error {
		if ew == nil {
			return fmt.Errorf("nil ErrorWriter")
		}
		s.errorWriter = ew
		return nil
	}}
}

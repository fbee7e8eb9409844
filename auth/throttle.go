package auth

import (
	"net/netip"
	"sync"
	"time"
)

// maxBuckets bounds the limiter's memory. Attackers choose user names and,
// with IPv6, many addresses, so the table must not grow without limit.
const maxBuckets = 65536

// maxKnown bounds the memory of recent successes. Only a correct password
// adds an entry, so an attacker cannot fill it.
const maxKnown = 4096

// knownTTL is how long a (user, client) pair that logged in keeps the
// first place in the hash queue.
const knownTTL = 24 * time.Hour

// clientBurstFactor: a client may fail burst times per user name, and
// clientBurstFactor × burst times over all names (several people behind
// one NAT address each mistype; a sprayer trying one password on many
// names is stopped).
const clientBurstFactor = 4

// Without WithThrottle failures are still counted, to order the hash
// queue, with these parameters; nothing is refused.
const (
	orderBurst    = 10
	orderInterval = 6 * time.Second
)

// Priorities of a cache miss waiting for a hash slot, first served first.
// What decides it is what an attacker cannot fake or cannot cheaply
// renew: a recent success of the same user from the same client (needs
// the password), then a client with no failures the limiter still
// remembers, then a user name that is not being guessed at from
// everywhere at once.
const (
	prioKnown          = iota // this user logged in from this client recently
	prioClean                 // the client has no recent failures
	prioCleanHotUser          // same, but the user's failures from all clients are over budget
	prioFailing               // the client failed recently
	prioFailingHotUser        // both
	numPrio
)

var prioNames = [numPrio]string{"known_client", "clean_client", "clean_client_hot_user", "failing_client", "failing_client_hot_user"}

// limiter counts failed attempts in token buckets: per client ("a:" and
// the address group), per user and client ("p:" address group, "|", user)
// and per user alone ("u:" user). An attempt takes a token before any
// hash is computed and gets it back only if the password was right, so
// concurrent guesses cannot overrun a bucket and neither can attempts
// refused as overloaded or abandoned while queued.
//
// Only the client and (user, client) buckets ever refuse, and only when
// refuse is set (WithThrottle): they are keyed by where the attempt comes
// from, so an attacker exhausts only its own. The per-user bucket never
// refuses; an empty one lowers the priority of the user's cache misses.
type limiter struct {
	burst  float64 // per (user, client) and per user
	every  time.Duration
	refuse bool
	max    int

	mu      sync.Mutex
	buckets map[string]*bucket
	known   map[string]time.Time // pair key → end of its first place
}

type bucket struct {
	tokens   float64
	burst    float64
	last     time.Time
	lastFail time.Time // start of the last attempt that has not succeeded
}

func newLimiter(burst int, every time.Duration, refuse bool) *limiter {
	return &limiter{
		burst: float64(burst), every: every, refuse: refuse, max: maxBuckets,
		buckets: make(map[string]*bucket), known: make(map[string]time.Time),
	}
}

// ticket is what one attempt took from the limiter.
type ticket struct {
	client, pair, user string    // keys; "" when not taken
	clean              bool      // the client had no recent failure before this attempt
	prevFail, mark     time.Time // the client's lastFail before and after this attempt began
}

// clientKeys returns the client and pair keys, or "" for an attempt
// without a client address (Basic.Verify).
func clientKeys(user string, client netip.Addr) (string, string) {
	if !client.IsValid() {
		return "", ""
	}
	a := addrKey(client)
	return "a:" + a, "p:" + a + "|" + user
}

// admit takes a token from the client and (user, client) buckets, or
// reports how long until it could and which limit refused. It runs before
// the success cache is looked at: these buckets belong to the client, so
// a refusal here can only be caused by failures from the same client.
func (l *limiter) admit(now time.Time, user string, client netip.Addr) (t ticket, ok bool, wait time.Duration, limit string) {
	ck, pk := clientKeys(user, client)
	if ck == "" {
		return ticket{clean: true}, true, 0, ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	cb := l.refill(ck, now, clientBurstFactor*l.burst)
	pb := l.refill(pk, now, l.burst)
	if l.refuse {
		if pb.tokens < 1 {
			return ticket{}, false, l.waitFor(pb), "user_client"
		}
		if cb.tokens < 1 {
			return ticket{}, false, l.waitFor(cb), "client"
		}
	}
	// "Clean" is judged by time since the last failure, not by a full
	// bucket: a flood slowed down by the queue makes attempts per client
	// more slowly than buckets refill, and must not look clean for it.
	// The attempt counts as a failure until it succeeds, so concurrent
	// attempts from a fresh client are not all clean.
	t = ticket{client: ck, pair: pk, clean: !l.failedRecently(cb, now), prevFail: cb.lastFail, mark: now}
	cb.tokens--
	pb.tokens--
	cb.lastFail = now
	return t, true, 0, ""
}

// priority takes a token from the user's bucket, if it has one, and
// returns the hash-queue priority of a cache miss. It never refuses.
func (l *limiter) priority(now time.Time, user string, t *ticket) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.pair != "" {
		if exp, ok := l.known[t.pair]; ok {
			if now.Before(exp) {
				return prioKnown
			}
			delete(l.known, t.pair)
		}
	}
	uk := "u:" + user
	ub := l.refill(uk, now, l.burst)
	hot := ub.tokens < 1
	if !hot {
		ub.tokens--
		t.user = uk
	}
	p := prioClean
	if !t.clean {
		p = prioFailing
	}
	if hot {
		p++
	}
	return p
}

// succeeded gives back the tokens of an attempt whose password was right
// and remembers the (user, client) pair.
func (l *limiter) succeeded(now time.Time, t ticket) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range []string{t.client, t.pair, t.user} {
		if b, ok := l.buckets[k]; ok && k != "" {
			b.tokens = min(b.tokens+1, b.burst)
		}
	}
	if b, ok := l.buckets[t.client]; ok && t.client != "" && b.lastFail.Equal(t.mark) {
		// No other attempt from the client began since this one: undo
		// the mark this one made.
		b.lastFail = t.prevFail
	}
	if t.pair == "" {
		return
	}
	if _, ok := l.known[t.pair]; !ok && len(l.known) >= maxKnown {
		l.forgetKnown(now)
	}
	l.known[t.pair] = now.Add(knownTTL)
}

// penalise takes a token from the client's bucket for a malformed
// attempt, whatever is left.
func (l *limiter) penalise(now time.Time, client netip.Addr) {
	ck, _ := clientKeys("", client)
	if ck == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refill(ck, now, clientBurstFactor*l.burst)
	b.tokens = max(b.tokens-1, 0)
	b.lastFail = now
}

// failedRecently reports whether b's client has had an attempt fail in
// the time a drained (user, client) bucket takes to refill.
func (l *limiter) failedRecently(b *bucket, now time.Time) bool {
	return !b.lastFail.IsZero() && now.Sub(b.lastFail) < time.Duration(l.burst*float64(l.every))
}

func (l *limiter) waitFor(b *bucket) time.Duration {
	return time.Duration((1 - b.tokens) * float64(l.every))
}

// refill returns the bucket for k, created full or topped up for the time
// since its last use.
func (l *limiter) refill(k string, now time.Time, burst float64) *bucket {
	b, ok := l.buckets[k]
	if !ok {
		if len(l.buckets) >= l.max {
			l.evict(now)
		}
		b = &bucket{tokens: burst, burst: burst, last: now}
		l.buckets[k] = b
		return b
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.burst, b.tokens+float64(d)/float64(l.every))
		b.last = now
	}
	return b
}

// evict drops one bucket, preferring a full one without a recent failure
// (dropping it forgets nothing). Map order is random, so an attacker cannot aim at a victim's
// bucket; looking at a few entries keeps the cost constant.
func (l *limiter) evict(now time.Time) {
	var victim string
	n := 0
	for k, b := range l.buckets {
		if victim == "" {
			victim = k
		}
		if b.tokens+float64(now.Sub(b.last))/float64(l.every) >= b.burst && !l.failedRecently(b, now) {
			victim = k
			break
		}
		if n++; n >= 64 {
			break
		}
	}
	delete(l.buckets, victim)
}

// forgetKnown drops an expired pair, or the one ending first among a few.
func (l *limiter) forgetKnown(now time.Time) {
	var victim string
	var end time.Time
	n := 0
	for k, exp := range l.known {
		if !now.Before(exp) {
			victim = k
			break
		}
		if victim == "" || exp.Before(end) {
			victim, end = k, exp
		}
		if n++; n >= 64 {
			break
		}
	}
	delete(l.known, victim)
}

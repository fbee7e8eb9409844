package auth

import (
	"sync"
	"time"
)

// maxBuckets bounds the limiter's memory. Attackers choose user names and,
// with IPv6, many addresses, so the table must not grow without limit.
const maxBuckets = 65536

// limiter is a token bucket per key ("u:" user name, "a:" client address)
// counting failed attempts: an attempt takes a token before any hash is
// computed and gets it back if it succeeds, so concurrent guesses cannot
// overrun the bucket.
type limiter struct {
	burst float64
	every time.Duration // one token back per interval
	max   int

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(burst int, every time.Duration) *limiter {
	return &limiter{burst: float64(burst), every: every, max: maxBuckets, buckets: make(map[string]*bucket)}
}

// take takes one token from every key, or from none: it reports false and
// how long until a token is back if any key is empty. Keys that are ""
// are skipped.
func (l *limiter) take(now time.Time, keys ...string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		if k == "" {
			continue
		}
		b := l.refill(k, now)
		if b.tokens < 1 {
			if w := time.Duration((1 - b.tokens) * float64(l.every)); w > wait {
				wait = w
			}
		}
	}
	if wait > 0 {
		return false, wait
	}
	for _, k := range keys {
		if k != "" {
			l.buckets[k].tokens--
		}
	}
	return true, 0
}

// give returns the tokens take took (the attempt succeeded or was never
// checked).
func (l *limiter) give(now time.Time, keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if b, ok := l.buckets[k]; ok && k != "" {
			b.tokens = min(b.tokens+1, l.burst)
		}
	}
}

// refill returns the bucket for k, created full or topped up for the time
// since its last use.
func (l *limiter) refill(k string, now time.Time) *bucket {
	b, ok := l.buckets[k]
	if !ok {
		if len(l.buckets) >= l.max {
			l.evict(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[k] = b
		return b
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(l.burst, b.tokens+float64(d)/float64(l.every))
		b.last = now
	}
	return b
}

// evict drops one bucket, preferring a full one (dropping it forgets
// nothing). Map order is random, so an attacker cannot aim at a victim's
// bucket; looking at a few entries keeps the cost constant.
func (l *limiter) evict(now time.Time) {
	var victim string
	n := 0
	for k, b := range l.buckets {
		if victim == "" {
			victim = k
		}
		if b.tokens+float64(now.Sub(b.last))/float64(l.every) >= l.burst {
			victim = k
			break
		}
		if n++; n >= 64 {
			break
		}
	}
	delete(l.buckets, victim)
}

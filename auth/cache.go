package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"
)

// successCache remembers recent successful checks so that a client sending
// the same correct credentials on every request pays one hash, not one per
// request. Entries are keyed by HMAC-SHA-256, under a key that exists only
// in this process, of the user, the password and the stored hash: the
// cache holds no password, a changed hash misses, and a copy of the memory
// cannot be used to test guesses offline without the key.
type successCache struct {
	ttl time.Duration
	max int
	key [32]byte

	mu      sync.Mutex
	entries map[[32]byte]time.Time // expiry
}

func newSuccessCache(ttl time.Duration, size int) *successCache {
	c := &successCache{ttl: ttl, max: size, entries: make(map[[32]byte]time.Time)}
	rand.Read(c.key[:])
	return c
}

func (c *successCache) sum(user, password, stored string) [32]byte {
	m := hmac.New(sha256.New, c.key[:])
	var n [8]byte
	// Length prefixes keep ("ab", "c") and ("a", "bc") apart.
	for _, s := range []string{user, password, stored} {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		m.Write(n[:])
		m.Write([]byte(s))
	}
	var out [32]byte
	m.Sum(out[:0])
	return out
}

func (c *successCache) hit(k [32]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.entries[k]
	if !ok {
		return false
	}
	if !now.Before(exp) {
		delete(c.entries, k)
		return false
	}
	return true
}

func (c *successCache) add(k [32]byte, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[k]; !ok && len(c.entries) >= c.max {
		c.evict(now)
	}
	c.entries[k] = now.Add(c.ttl)
}

// evict drops expired entries, or if none, the one closest to expiry. It
// runs only after a full hash computation, so its O(size) cost is small
// beside the hash.
func (c *successCache) evict(now time.Time) {
	var oldest [32]byte
	var oldestExp time.Time
	first := true
	for k, exp := range c.entries {
		if !now.Before(exp) {
			delete(c.entries, k)
			continue
		}
		if first || exp.Before(oldestExp) {
			oldest, oldestExp, first = k, exp, false
		}
	}
	if len(c.entries) >= c.max {
		delete(c.entries, oldest)
	}
}

func (c *successCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
}

func (c *successCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

package tokenpg

import (
	"sync"
	"time"

	"github.com/lpsec/lpsec/token"
	"github.com/lpsec/lpsec/token/internal/core"
)

// authCache is token.WithAuthCache: machine records that authenticated,
// keyed by the token's digest (never the token), each with the time it was
// read from the database. Only live records enter; size bounds it.
type authCache struct {
	ttl  time.Duration
	size int

	mu  sync.Mutex
	m   map[core.Digest]cached
	gen uint64 // bumped by every eviction: a read that raced one is not stored
}

type cached struct {
	m       token.Machine
	fetched time.Time
	session uint64 // the Follower session it was read in (0: not following)
}

func newAuthCache(ttl time.Duration, size int) *authCache {
	if ttl <= 0 {
		return nil
	}
	return &authCache{ttl: ttl, size: size, m: make(map[core.Digest]cached)}
}

// get returns the record read within ttl of now in session, if any.
func (c *authCache) get(d core.Digest, now time.Time, session uint64) (token.Machine, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[d]
	if !ok {
		return token.Machine{}, false
	}
	if now.Sub(e.fetched) >= c.ttl || now.Before(e.fetched) || e.session != session {
		delete(c.m, d)
		return token.Machine{}, false
	}
	return e.m, true
}

// generation is read before a database query; put stores its answer only
// if no eviction happened since, so a revocation that overtook the query
// is never undone by it.
func (c *authCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func (c *authCache) put(d core.Digest, m token.Machine, fetched time.Time, gen, session uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if _, ok := c.m[d]; !ok && len(c.m) >= c.size {
		for k := range c.m { // map order is unspecified: an arbitrary victim
			delete(c.m, k)
			break
		}
	}
	c.m[d] = cached{m: m, fetched: fetched, session: session}
}

func (c *authCache) evict(d core.Digest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.m, d)
}

// evictMachine forgets the records of one machine name (a release whose
// outcome is unknown); it scans at most size records.
func (c *authCache) evictMachine(machine string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for d, e := range c.m {
		if e.m.Machine == machine {
			delete(c.m, d)
		}
	}
}

// clear forgets every record (the machine table was truncated).
func (c *authCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.m)
}

func (c *authCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

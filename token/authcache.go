package token

import (
	"fmt"
	"time"

	"github.com/lpsec/lpsec/token/internal/core"
)

// MaxAuthCacheTTL is the longest ttl WithAuthCache accepts: a revocation
// must reach every instance within a bound an operator can reason about,
// and LastSeen lags by at most ttl.
const MaxAuthCacheTTL = time.Minute

// WithAuthCache makes a tokenpg.Store remember, for ttl, each machine token
// it authenticated, so that a client's repeated requests cost one database
// round trip per ttl instead of one each. Default: off (every
// authentication queries the database).
//
// The bound: a revocation, release or replacement (re-registration) made
// through this store evicts the record at once; one made through another
// instance sharing the database is refused here within ttl. Expiry is
// checked against the clock on every hit, so a machine token is refused at
// its ValidUntil exactly. Only successful authentications are cached (an
// unknown, revoked or expired token always queries the database), so a
// flood of bad tokens can neither evict good entries nor grow memory. The
// cache is keyed by the token's SHA-256 digest, never the token, and holds
// at most size records; when full, an arbitrary record is evicted. A hit
// does not update LastSeen, so LastSeen may lag by up to ttl beyond its
// usual once-a-minute granularity.
//
// tokenpg.NewStore only; ttl <= 0, ttl > MaxAuthCacheTTL or size <= 0 is
// ErrInvalidOption.
func WithAuthCache(ttl time.Duration, size int) Option {
	return core.NewOption("WithAuthCache", core.ForDatabase, func(s *core.Settings) error {
		if ttl <= 0 || ttl > MaxAuthCacheTTL {
			return fmt.Errorf("ttl %v is not in (0, %v]", ttl, MaxAuthCacheTTL)
		}
		if size <= 0 {
			return fmt.Errorf("size %d is not positive", size)
		}
		s.AuthCacheTTL, s.AuthCacheSize = ttl, size
		return nil
	})
}
